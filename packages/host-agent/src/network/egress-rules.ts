import {
  ALWAYS_BLOCKED_CIDRS,
  type NetworkPolicy,
  policyEntries,
  policyHasDomains,
} from "@wrenn/shared/network-policy";
import { GUEST_IP, TAP_NAME } from "./sandbox-network.js";
import type { SlotAddresses } from "./slot-addresses.js";

/**
 * A sandbox's egress policy as rules in its own namespace (pure; netns-network.ts applies them).
 *
 * filter: the guest's forwarded traffic (TAP → veth) enters EGRESS_CHAIN: the guest's replies to
 * connections made to it (the agent's, the proxy's) and related ICMP accept; what
 * the namespace DNATed to the agent on the host end of the veth (DNS forwarder, volume server,
 * egress proxy) accepts; ALWAYS_BLOCKED_CIDRS reject whatever the lists say; allowOut CIDRs
 * accept; denyOut CIDRs reject; the rest accepts. Connections the guest opened are checked
 * on every packet, not only the first, so a policy that tightens cuts them at once. REJECT
 * answers (TCP reset, ICMP admin-prohibited) so callers in the guest fail at once instead of
 * timing out.
 * nat: with domain entries, PROXY_CHAIN sends the guest's new TCP to ports 80 and 443 that no
 * allowOut CIDR covers to the egress proxy on the host end of the veth, which decides by the
 * name the connection asks for (TLS SNI, HTTP Host).
 *
 * Both chains are refilled by one `iptables-restore --noflush` document (declaring a chain
 * flushes it; each table commits atomically), so a running sandbox's policy changes without a
 * window where neither the old nor the new rules hold.
 */
export const EGRESS_CHAIN = "SANDBOX-EGRESS";
export const REJECT_CHAIN = "SANDBOX-REJECT";
export const PROXY_CHAIN = "SANDBOX-PROXY";

/** The guest ports whose TCP goes through the egress proxy when a policy has domain entries. */
export const PROXIED_PORTS = [80, 443] as const;

function cidrs(policy: NetworkPolicy, list: "allow" | "deny"): string[] {
  const entries = policyEntries(policy)[list];
  const out: string[] = [];
  for (const e of entries) if (e.kind === "cidr") out.push(e.text);
  return out;
}

/** The filter and nat chains of one policy, as a `--noflush` document for the namespace. */
export function egressPolicyDocument(
  policy: NetworkPolicy,
  a: SlotAddresses,
  proxyPort: number | undefined,
): string {
  const allow = cidrs(policy, "allow");
  const deny = cidrs(policy, "deny");
  const proxied = proxyPort !== undefined && policyHasDomains(policy);
  const filter = [
    "*filter",
    `:${EGRESS_CHAIN} - [0:0]`,
    `:${REJECT_CHAIN} - [0:0]`,
    `-A ${REJECT_CHAIN} -p tcp -j REJECT --reject-with tcp-reset`,
    `-A ${REJECT_CHAIN} -j REJECT --reject-with icmp-admin-prohibited`,
    `-A ${EGRESS_CHAIN} -m conntrack --ctstate RELATED -j ACCEPT`,
    `-A ${EGRESS_CHAIN} -m conntrack --ctdir REPLY -j ACCEPT`,
    `-A ${EGRESS_CHAIN} -d ${a.vethHostIp}/32 -m conntrack --ctstate DNAT -j ACCEPT`,
    ...ALWAYS_BLOCKED_CIDRS.map((c) => `-A ${EGRESS_CHAIN} -d ${c} -j ${REJECT_CHAIN}`),
    ...allow.map((c) => `-A ${EGRESS_CHAIN} -d ${c} -j ACCEPT`),
    ...deny.map((c) => `-A ${EGRESS_CHAIN} -d ${c} -j ${REJECT_CHAIN}`),
    `-A ${EGRESS_CHAIN} -j ACCEPT`,
    "COMMIT",
  ];
  const nat = [
    "*nat",
    `:${PROXY_CHAIN} - [0:0]`,
    ...(proxied
      ? [
          ...allow.map((c) => `-A ${PROXY_CHAIN} -d ${c} -j RETURN`),
          ...PROXIED_PORTS.map(
            (port) =>
              `-A ${PROXY_CHAIN} -p tcp -m tcp --dport ${port} -j DNAT --to-destination ${a.vethHostIp}:${proxyPort}`,
          ),
        ]
      : []),
    "COMMIT",
  ];
  return `${[...filter, ...nat].join("\n")}\n`;
}

/**
 * The namespace's fixed jumps into the policy chains (part of its first restore): the guest's
 * forwarded traffic into EGRESS_CHAIN, its new TCP into PROXY_CHAIN (before any other DNAT of
 * the TAP's traffic except DNS and the gateway's services, which match the gateway address).
 */
export function egressJumps(tag: string, vethNsName: string): { filter: string[]; nat: string[] } {
  return {
    filter: [`-A FORWARD -i ${TAP_NAME} -o ${vethNsName} -s ${GUEST_IP}/32 ${tag} -j ${EGRESS_CHAIN}`],
    nat: [`-A PREROUTING -i ${TAP_NAME} -p tcp -m tcp ${tag} -j ${PROXY_CHAIN}`],
  };
}
