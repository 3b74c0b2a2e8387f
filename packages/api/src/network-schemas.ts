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

/** A create's `network`: the policy (none named: a snapshot's own, else open) and public traffic. */
export const SandboxNetworkCreateSchema = SandboxNetworkBodySchema.extend({
  allow_public_traffic: z
    .boolean()
    .optional()
    .describe("false: proxied requests need the traffic_access_token in the e2b-traffic-access-token header"),
  mask_request_host: z
    .string()
    .min(1)
    .max(255)
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
