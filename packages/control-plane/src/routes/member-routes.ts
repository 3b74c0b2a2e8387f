import {
  CreatedInvitationSchema,
  IdParamsSchema,
  InvitationCreateBodySchema,
  InvitationSchema,
  listSchema,
  MemberRoleBodySchema,
  MemberSchema,
  UserIdParamsSchema,
} from "@wrenn/api";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import { invitationView, requestOrigin } from "./auth-views.js";
import { memberView } from "./team-routes.js";

/** The caller's team (API key's or session's current team): members, roles, invitations. */
export function memberRoutes(services: Services): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "GET",
      path: "/v1/team/members",
      summary: "List the team's members and their roles",
      tag: "Team",
      auth: "api_key",
      responses: { 200: { description: "Members", schema: listSchema(MemberSchema) } },
      handler: async (ctx) => ({ items: (await services.members.list(ctx.principal)).map(memberView) }),
    }),
    defineRoute({
      method: "PATCH",
      path: "/v1/team/members/{userId}",
      summary:
        "Change a member's role (owner/admin; only owners touch the owner role; a team keeps an owner)",
      tag: "Team",
      auth: "api_key",
      manage: true,
      params: UserIdParamsSchema,
      body: MemberRoleBodySchema,
      responses: { 200: { description: "The member", schema: MemberSchema } },
      handler: async (ctx) =>
        memberView(await services.members.setRole(ctx.principal, ctx.params.userId, ctx.body.role)),
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/team/members/{userId}",
      summary: "Remove a member (owner/admin, or oneself; the last owner stays)",
      tag: "Team",
      auth: "api_key",
      params: UserIdParamsSchema,
      responses: { 204: { description: "Removed" } },
      handler: async (ctx) => {
        await services.members.remove(ctx.principal, ctx.params.userId);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/v1/team/invitations",
      summary: "Invite an email into the team (the accept token is in this response only)",
      tag: "Team",
      auth: "api_key",
      manage: true,
      body: InvitationCreateBodySchema,
      responses: { 201: { description: "The invitation and its token", schema: CreatedInvitationSchema } },
      handler: async (ctx) => {
        const made = await services.invitations.create(ctx.principal, ctx.body);
        return {
          ...invitationView(made.row),
          token: made.token,
          accept_url: `${requestOrigin(ctx.request)}/#/invite?token=${made.token}`,
        };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/team/invitations",
      summary: "List the team's open invitations",
      tag: "Team",
      auth: "api_key",
      manage: true,
      responses: { 200: { description: "Invitations", schema: listSchema(InvitationSchema) } },
      handler: async (ctx) => ({
        items: (await services.invitations.list(ctx.principal)).map(invitationView),
      }),
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/team/invitations/{id}",
      summary: "Revoke an open invitation",
      tag: "Team",
      auth: "api_key",
      manage: true,
      params: IdParamsSchema,
      responses: { 204: { description: "Revoked" } },
      handler: async (ctx) => {
        await services.invitations.revoke(ctx.principal, ctx.params.id);
      },
    }),
  ];
}
