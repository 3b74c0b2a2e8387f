import { MASK_REQUEST_HOST_HINT, MASK_REQUEST_HOST_PATTERN } from "@wrenn/api";
import { WrennError } from "@wrenn/shared";
import { parseNetworkPolicy } from "@wrenn/shared/network-policy";
import { z } from "zod";
import type { Services } from "../create-services.js";
import type { SandboxRow } from "../db/schema.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import { deniesInternet, type SandboxNetworkInput } from "../services/sandbox-network.js";
import type { E2bService } from "./e2b-service.js";

/**
 * The e2b API's network options: `network` and `allow_internet_access` at create, `PUT
 * /sandboxes/{id}/network`, and the `network` a sandbox's details show.
 */

/** Entries are checked by the policy normaliser (which names the bad one); this only bounds the body. */
const EntriesSchema = z.array(z.string().max(512)).max(1000);

export const E2bNetworkSchema = z.object({
  allowOut: EntriesSchema.optional(),
  denyOut: EntriesSchema.optional(),
  allowPublicTraffic: z.boolean().optional(),
  maskRequestHost: z.string().regex(MASK_REQUEST_HOST_PATTERN, MASK_REQUEST_HOST_HINT).optional(),
  egressProxy: z.unknown().optional(),
  rules: z.unknown().optional(),
  httpsPorts: z.unknown().optional(),
});
type E2bNetwork = z.infer<typeof E2bNetworkSchema>;

/** What this server does not offer is refused, never silently ignored. */
function refuseUnsupported(network: Pick<E2bNetwork, "egressProxy" | "rules" | "httpsPorts">): void {
  const unsupported: string[] = [];
  if (network.egressProxy !== undefined && network.egressProxy !== null) unsupported.push("egressProxy");
  const rules = network.rules;
  if (
    rules !== undefined &&
    rules !== null &&
    !(typeof rules === "object" && Object.keys(rules).length === 0)
  )
    unsupported.push("rules");
  if (Array.isArray(network.httpsPorts) ? network.httpsPorts.length > 0 : network.httpsPorts != null)
    unsupported.push("httpsPorts");
  if (unsupported.length > 0) {
    throw new WrennError(
      "invalid_argument",
      `network: ${unsupported.join(", ")} ${unsupported.length > 1 ? "are" : "is"} not supported by this server`,
    );
  }
}

/**
 * A create's network settings. The egress policy is set when the request names allowOut or
 * denyOut or turns internet access off; otherwise it is unset (a sandbox from a snapshot keeps
 * its template's policy, others are open).
 */
export function e2bCreateNetwork(
  network: E2bNetwork | undefined,
  allowInternetAccess: boolean | undefined,
): SandboxNetworkInput {
  if (network) refuseUnsupported(network);
  const egressSet =
    network?.allowOut !== undefined || network?.denyOut !== undefined || allowInternetAccess === false;
  return {
    ...(egressSet
      ? {
          policy: parseNetworkPolicy({
            allowOut: network?.allowOut,
            denyOut: network?.denyOut,
            allowInternetAccess,
          }),
        }
      : {}),
    allowPublicTraffic: network?.allowPublicTraffic,
    maskRequestHost: network?.maskRequestHost,
  };
}

export const E2bNetworkViewSchema = z.object({
  allowOut: z.array(z.string()),
  denyOut: z.array(z.string()),
  allowPublicTraffic: z.boolean(),
  maskRequestHost: z.string().optional(),
});

/** The detail fields the SDK's getInfo reads: the policy in force and public traffic. */
export function e2bNetworkView(row: SandboxRow): {
  allowInternetAccess: boolean;
  network: z.infer<typeof E2bNetworkViewSchema>;
} {
  return {
    allowInternetAccess: !deniesInternet(row.network_policy),
    network: {
      allowOut: row.network_policy.allowOut,
      denyOut: row.network_policy.denyOut,
      allowPublicTraffic: row.traffic_access_token === null,
      ...(row.mask_request_host ? { maskRequestHost: row.mask_request_host } : {}),
    },
  };
}

/** `PUT /sandboxes/{id}/network`: the whole egress policy of a running or paused sandbox. */
export function e2bNetworkRoute(services: Services, e2b: E2bService, tag: string): AnyRouteSpec {
  return defineRoute({
    method: "PUT",
    path: "/sandboxes/{sandboxID}/network",
    summary: "Replace a sandbox's egress policy (fields left out are cleared)",
    tag,
    auth: "api_key",
    params: z.object({ sandboxID: z.string().min(1).max(128) }),
    body: z.object({
      allowOut: EntriesSchema.optional(),
      denyOut: EntriesSchema.optional(),
      allow_internet_access: z.boolean().optional(),
      egressProxy: z.unknown().optional(),
      rules: z.unknown().optional(),
    }),
    responses: { 204: { description: "Updated" } },
    handler: async (ctx) => {
      refuseUnsupported(ctx.body);
      const policy = parseNetworkPolicy({
        allowOut: ctx.body.allowOut,
        denyOut: ctx.body.denyOut,
        allowInternetAccess: ctx.body.allow_internet_access,
      });
      await e2b.live(ctx.principal, ctx.params.sandboxID);
      await services.sandboxes.updateNetwork(ctx.principal, ctx.params.sandboxID, policy);
    },
  });
}
