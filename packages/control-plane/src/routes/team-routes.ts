import {
  AddMemberBodySchema,
  ApiKeyCreateBodySchema,
  ApiKeySchema,
  CreatedApiKeySchema,
  CreatedTeamSchema,
  IdParamsSchema,
  listSchema,
  MemberSchema,
  type MemberView,
  TeamNameBodySchema,
  TeamSchema,
} from "@wrenn/api";
import { z } from "zod";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import { apiKeyView, teamView } from "./api-views.js";

export const memberView = (m: {
  user_id: string;
  email: string;
  name: string;
  role: "owner" | "admin" | "member";
  created_at: Date;
}): MemberView => ({
  ...m,
  created_at: m.created_at.toISOString(),
});

/** Teams, their members and API keys. */
export function teamRoutes(services: Services): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "GET",
      path: "/v1/teams",
      summary: "List the caller's teams",
      tag: "Teams",
      auth: "api_key",
      responses: { 200: { description: "Teams", schema: listSchema(TeamSchema) } },
      handler: async (ctx) => ({ items: (await services.teams.list(ctx.principal)).map(teamView) }),
    }),
    defineRoute({
      method: "POST",
      path: "/v1/teams",
      summary: "Create a team with its first API key (admin team only)",
      tag: "Teams",
      auth: "api_key",
      manage: true,
      body: TeamNameBodySchema,
      responses: {
        201: { description: "The team and its first key (shown once)", schema: CreatedTeamSchema },
      },
      handler: async (ctx) => {
        const created = await services.teams.create(ctx.principal, ctx.body.name);
        return {
          team: teamView(created.team),
          api_key: { id: created.apiKey.id, key: created.apiKey.value, prefix: created.apiKey.prefix },
        };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/teams/{id}",
      summary: "Get a team",
      tag: "Teams",
      auth: "api_key",
      params: IdParamsSchema,
      responses: { 200: { description: "The team", schema: TeamSchema } },
      handler: async (ctx) => teamView(await services.teams.get(ctx.principal, ctx.params.id)),
    }),
    defineRoute({
      method: "PATCH",
      path: "/v1/teams/{id}",
      summary: "Rename a team",
      tag: "Teams",
      auth: "api_key",
      manage: true,
      params: IdParamsSchema,
      body: TeamNameBodySchema,
      responses: { 200: { description: "The team", schema: TeamSchema } },
      handler: async (ctx) =>
        teamView(await services.teams.rename(ctx.principal, ctx.params.id, ctx.body.name)),
    }),
    defineRoute({
      method: "GET",
      path: "/v1/teams/{id}/members",
      summary: "List a team's members",
      tag: "Teams",
      auth: "api_key",
      params: IdParamsSchema,
      responses: { 200: { description: "Members", schema: listSchema(MemberSchema) } },
      handler: async (ctx) => ({
        items: (await services.teams.listMembers(ctx.principal, ctx.params.id)).map(memberView),
      }),
    }),
    defineRoute({
      method: "POST",
      path: "/v1/teams/{id}/members",
      summary: "Add a member (by email; the user is created if new)",
      tag: "Teams",
      auth: "api_key",
      manage: true,
      params: IdParamsSchema,
      body: AddMemberBodySchema,
      responses: { 201: { description: "The member", schema: MemberSchema } },
      handler: async (ctx) =>
        memberView(await services.teams.addMember(ctx.principal, ctx.params.id, ctx.body)),
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/teams/{id}/members/{user_id}",
      summary: "Remove a member",
      tag: "Teams",
      auth: "api_key",
      manage: true,
      params: z.object({ id: z.string().min(1), user_id: z.string().min(1) }),
      responses: { 204: { description: "Removed" } },
      handler: async (ctx) => {
        // The team must be the caller's; the members service keeps the last owner.
        await services.teams.get(ctx.principal, ctx.params.id);
        await services.members.remove(ctx.principal, ctx.params.user_id);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/api-keys",
      summary: "List the team's API keys (never the keys themselves)",
      tag: "API keys",
      auth: "api_key",
      manage: true,
      responses: { 200: { description: "Keys", schema: listSchema(ApiKeySchema) } },
      handler: async (ctx) => ({ items: (await services.apiKeys.list(ctx.principal)).map(apiKeyView) }),
    }),
    defineRoute({
      method: "POST",
      path: "/v1/api-keys",
      summary: "Create an API key (the key is in this response only)",
      tag: "API keys",
      auth: "api_key",
      manage: true,
      body: ApiKeyCreateBodySchema,
      responses: { 201: { description: "The key", schema: CreatedApiKeySchema } },
      handler: async (ctx) => {
        const created = await services.apiKeys.create(ctx.principal, ctx.body.name);
        return { ...apiKeyView(created.row), key: created.value };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/api-keys/{id}",
      summary: "Get an API key's record",
      tag: "API keys",
      auth: "api_key",
      manage: true,
      params: IdParamsSchema,
      responses: { 200: { description: "The key's record", schema: ApiKeySchema } },
      handler: async (ctx) => apiKeyView(await services.apiKeys.get(ctx.principal, ctx.params.id)),
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/api-keys/{id}",
      summary: "Revoke an API key",
      tag: "API keys",
      auth: "api_key",
      manage: true,
      params: IdParamsSchema,
      responses: { 204: { description: "Revoked" } },
      handler: async (ctx) => {
        await services.apiKeys.revoke(ctx.principal, ctx.params.id);
      },
    }),
  ];
}
