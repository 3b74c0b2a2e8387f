import {
  CreatedHostSchema,
  HeartbeatBodySchema,
  HeartbeatSchema,
  HostCreateBodySchema,
  HostCredentialsSchema,
  HostEnrolBodySchema,
  HostPatchBodySchema,
  HostRefreshBodySchema,
  HostRegisterBodySchema,
  HostSchema,
  IdParamsSchema,
  listSchema,
  RegisteredHostSchema,
} from "@wrenn/api";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import type { IssuedHostCredentials } from "../services/host-enrolment.js";
import { certMismatch, hostView } from "./api-views.js";

function credentialsView(issued: IssuedHostCredentials) {
  return {
    host_id: issued.hostId,
    credential: issued.credential,
    expires_at: issued.expiresAt.toISOString(),
    refresh_token: issued.refreshToken,
  };
}

/** Hosts and agent registration. */
export function hostRoutes(services: Services): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "POST",
      path: "/v1/hosts",
      summary: "Create a host and its one-time registration token",
      tag: "Hosts",
      auth: "api_key",
      manage: true,
      body: HostCreateBodySchema,
      responses: {
        201: { description: "The host and its registration token (shown once)", schema: CreatedHostSchema },
      },
      handler: async (ctx) => {
        const created = await services.hosts.create(ctx.principal, ctx.body);
        return {
          host: hostView(created.host),
          registration_token: created.registrationToken,
          expires_at: created.expiresAt.toISOString(),
        };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/hosts",
      summary: "List hosts",
      tag: "Hosts",
      auth: "api_key",
      responses: { 200: { description: "Hosts", schema: listSchema(HostSchema) } },
      handler: async (ctx) => ({ items: (await services.hosts.list(ctx.principal)).map(hostView) }),
    }),
    defineRoute({
      method: "GET",
      path: "/v1/hosts/{id}",
      summary: "Get a host",
      tag: "Hosts",
      auth: "api_key",
      params: IdParamsSchema,
      responses: { 200: { description: "The host", schema: HostSchema } },
      handler: async (ctx) => hostView(await services.hosts.get(ctx.principal, ctx.params.id)),
    }),
    defineRoute({
      method: "PATCH",
      path: "/v1/hosts/{id}",
      summary: "Set a host's tags (placement labels) or drain it (no new placements; its sandboxes stay)",
      tag: "Hosts",
      auth: "api_key",
      manage: true,
      params: IdParamsSchema,
      body: HostPatchBodySchema,
      responses: { 200: { description: "The host", schema: HostSchema } },
      handler: async (ctx) => hostView(await services.hosts.patch(ctx.principal, ctx.params.id, ctx.body)),
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/hosts/{id}",
      summary: "Delete a host (it must hold no live sandboxes)",
      tag: "Hosts",
      auth: "api_key",
      manage: true,
      params: IdParamsSchema,
      responses: { 204: { description: "Deleted" } },
      handler: async (ctx) => {
        await services.hosts.delete(ctx.principal, ctx.params.id);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/v1/hosts/register",
      summary: "Register an agent: trade a registration token for the host credential",
      tag: "Hosts",
      auth: "none",
      body: HostRegisterBodySchema,
      responses: {
        200: {
          description: "The host and its long-lived credential (shown once)",
          schema: RegisteredHostSchema,
        },
      },
      handler: async (ctx) => {
        const registered = await services.hosts.register({
          token: ctx.body.token,
          url: ctx.body.url,
          agentToken: ctx.body.agent_token,
        });
        return { host: hostView(registered.host), credential: registered.credential };
      },
    }),
    defineRoute({
      method: "POST",
      path: "/v1/hosts/enrol",
      summary:
        "An agent enrols itself: trade a registration token for a short-lived credential and a rotating refresh token; its certificate is pinned",
      tag: "Hosts",
      auth: "none",
      body: HostEnrolBodySchema,
      responses: {
        200: { description: "The host's first credentials (shown once)", schema: HostCredentialsSchema },
      },
      handler: async (ctx) => {
        const enrolled = await services.hosts.enrol({
          token: ctx.body.token,
          url: ctx.body.url,
          agentToken: ctx.body.agent_token,
          certPem: ctx.body.cert_pem,
          tags: ctx.body.tags,
        });
        return credentialsView(enrolled.issued);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/v1/hosts/token",
      summary:
        "Trade an enrolled agent's refresh token for the next credential pair (a reused token revokes the host)",
      tag: "Hosts",
      auth: "none",
      body: HostRefreshBodySchema,
      responses: {
        200: { description: "The next credentials (shown once)", schema: HostCredentialsSchema },
      },
      handler: async (ctx) => credentialsView(await services.hosts.refresh(ctx.body.refresh_token)),
    }),
    defineRoute({
      method: "POST",
      path: "/v1/hosts/heartbeat",
      summary: "Heartbeat from an agent (host credential)",
      tag: "Hosts",
      auth: "host",
      body: HeartbeatBodySchema,
      responses: {
        200: { description: "Recorded", schema: HeartbeatSchema },
      },
      handler: async (ctx) => {
        const host = await services.hosts.heartbeat(ctx.hostId, ctx.body.cert_fingerprint);
        return {
          host_id: host.id,
          last_seen_at: (host.agent_seen_at ?? new Date()).toISOString(),
          draining: host.draining,
          cert_pinned: !certMismatch(host),
        };
      },
    }),
  ];
}
