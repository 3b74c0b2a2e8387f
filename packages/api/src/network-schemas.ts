import { z } from "zod";

/** The /v1 shapes of a sandbox's network policy (egress allow/deny lists, public traffic). */

/** Entries are validated by the control plane's policy normaliser, which names a bad one. */
const EntriesSchema = z.array(z.string().max(512)).max(1000);

/** `PUT /v1/sandboxes/{id}/network`: the whole egress policy (lists left out are empty). */
export const SandboxNetworkBodySchema = z.object({
  allow_out: EntriesSchema.optional().describe(
    "IPv4 addresses, CIDRs and domains (`api.example.com`, `*.example.com`) it may reach; allow wins over deny",
  ),
  deny_out: EntriesSchema.optional().describe("IPv4 addresses and CIDRs it may not reach (0.0.0.0/0: all)"),
  allow_internet_access: z.boolean().optional().describe("false: deny everything not allowed"),
});
export type SandboxNetworkBody = z.input<typeof SandboxNetworkBodySchema>;

/**
 * A Host header value proxied requests may be given: a host name or address with an
 * optional port, where the port may be the literal `${PORT}` (the target port).
 */
export const MASK_REQUEST_HOST_HINT = "a host name or address, optionally with :port or :$" + "{PORT}";
export const MASK_REQUEST_HOST_PATTERN =
  /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::(?:[0-9]{1,5}|\$\{PORT\}))?$/;

/** A create's `network`: the policy (none named: a snapshot's own, else open) and public traffic. */
export const SandboxNetworkCreateSchema = SandboxNetworkBodySchema.extend({
  allow_public_traffic: z
    .boolean()
    .optional()
    .describe("false: proxied requests need the traffic_access_token in the e2b-traffic-access-token header"),
  mask_request_host: z
    .string()
    .regex(MASK_REQUEST_HOST_PATTERN, MASK_REQUEST_HOST_HINT)
    .optional()
    .describe("Host header proxied requests get (the text `$" + "{PORT}` becomes the target port)"),
});
export type SandboxNetworkCreate = z.input<typeof SandboxNetworkCreateSchema>;

export const SandboxNetworkSchema = z.object({
  allow_out: z.array(z.string()),
  deny_out: z.array(z.string()),
  allow_internet_access: z.boolean(),
  allow_public_traffic: z.boolean(),
  mask_request_host: z.string().nullable(),
});
export type SandboxNetworkView = z.infer<typeof SandboxNetworkSchema>;
