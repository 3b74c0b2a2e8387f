import {
  IdParamsSchema,
  SandboxNetworkBodySchema,
  type SandboxNetworkCreate,
  SandboxSchema,
} from "@wrenn/api";
import { parseNetworkPolicy } from "@wrenn/shared/network-policy";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import type { SandboxNetworkInput } from "../services/sandbox-network.js";
import { sandboxView } from "./api-views.js";

/**
 * A /v1 create's network settings. The egress policy is set when the body names a list or
 * turns internet access off; otherwise a sandbox from a snapshot keeps its snapshot's policy.
 */
export function v1CreateNetwork(network: SandboxNetworkCreate | undefined): SandboxNetworkInput | undefined {
  if (!network) return undefined;
  const egressSet =
    network.allow_out !== undefined ||
    network.deny_out !== undefined ||
    network.allow_internet_access === false;
  return {
    ...(egressSet
      ? {
          policy: parseNetworkPolicy({
            allowOut: network.allow_out,
            denyOut: network.deny_out,
            allowInternetAccess: network.allow_internet_access,
          }),
        }
      : {}),
    allowPublicTraffic: network.allow_public_traffic,
    maskRequestHost: network.mask_request_host,
  };
}

/** `PUT /v1/sandboxes/{id}/network`: replaces the egress policy of a running or paused sandbox. */
export function sandboxNetworkRoute(services: Services): AnyRouteSpec {
  return defineRoute({
    method: "PUT",
    path: "/v1/sandboxes/{id}/network",
    summary: "Replace a sandbox's egress policy (running or paused; lists left out are empty)",
    tag: "Sandboxes",
    auth: "api_key",
    params: IdParamsSchema,
    body: SandboxNetworkBodySchema,
    responses: { 200: { description: "The sandbox with its new policy", schema: SandboxSchema } },
    handler: async (ctx) => {
      const policy = parseNetworkPolicy({
        allowOut: ctx.body.allow_out,
        denyOut: ctx.body.deny_out,
        allowInternetAccess: ctx.body.allow_internet_access,
      });
      return sandboxView(await services.sandboxes.updateNetwork(ctx.principal, ctx.params.id, policy));
    },
  });
}
