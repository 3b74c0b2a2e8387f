import { GUEST_IP, TAP_NAME } from "./sandbox-network.js";
import { HOST_REACH_SUBNET, type SlotAddresses, VETH_SUBNET } from "./slot-addresses.js";

/**
 * The firewall and NAT rules, as iptables-restore documents. Pure, so the policy can be
 * read (and unit-tested) in one place; netns-network.ts applies them.
 *
 * Isolation policy. Host side (chains installed once by ensureHostRules):
 * - WRENN-SLOTS (filter): per-slot anti-spoofing, `-i wrenn-vh-N ! -s <ns end of the veth> DROP`,
 *   tagged `wrenn-slot-N`; entered first from WRENN-FWD and WRENN-INPUT.
 * - WRENN-INPUT (from INPUT): a sandbox reaches no address of the host itself (the veth gateway,
 *   the host's main IP, any port: agent, control plane, ssh...) except replies to connections
 *   the host opened (the agent talking to envd).
 * - WRENN-FWD (from FORWARD): nothing new is forwarded into a sandbox (neither from another
 *   sandbox nor from outside the host), only replies; from a sandbox, nothing to 10.11.0.0/16,
 *   10.12.0.0/16 or the blocked ranges (default 169.254.0.0/16, cloud metadata), and the rest
 *   only out of the uplink interface (the outside world). Everything else from a sandbox drops.
 * - WRENN-POSTROUTING (nat): MASQUERADE of 10.12.0.0/16 out of the uplink.
 * Namespace side (per sandbox, in its own tables): the guest may only send as GUEST_IP and only
 * out of the veth (egress SNAT to the veth's ns address); the namespace itself accepts nothing
 * from the guest but ICMP and replies; the host-reachable address DNATs (all ports) to GUEST_IP;
 * TCP MSS is clamped to the path MTU.
 */

export const CHAIN_FORWARD = "WRENN-FWD";
export const CHAIN_INPUT = "WRENN-INPUT";
export const CHAIN_SLOTS = "WRENN-SLOTS";
export const CHAIN_NAT = "WRENN-POSTROUTING";
/** Matches every host-side veth (iptables interface wildcard). */
export const VETH_HOST_WILDCARD = "wrenn-vh+";

export interface HostRulesInput {
  /** Interface egress may leave through (the default route's); undefined: no egress at all. */
  uplink: string | undefined;
  /** Destinations no sandbox may reach through the host (besides the Wrenn subnets). */
  blockedEgressCidrs: readonly string[];
  /** What the host's tables hold now (`iptables-save` of filter and nat). */
  current: string;
}

export function slotComment(slot: number): string {
  return `wrenn-slot-${slot}`;
}

function hasRule(saved: string, rule: string): boolean {
  return saved.split("\n").some((l) => l.trim() === rule);
}

function hasChain(saved: string, table: string, chain: string): boolean {
  const section = saved.split(/^\*/m).find((s) => s.startsWith(`${table}\n`)) ?? "";
  return section.split("\n").some((l) => l.startsWith(`:${chain} `));
}

/**
 * The host chain set as one `iptables-restore --noflush` document: refills WRENN-FWD,
 * WRENN-INPUT and WRENN-POSTROUTING, creates WRENN-SLOTS only when missing (it holds the live
 * slots' rules), and adds each parent jump only when missing. Idempotent.
 */
export function hostRulesDocument(input: HostRulesInput): string {
  const { uplink, blockedEgressCidrs, current } = input;
  const vh = VETH_HOST_WILDCARD;
  const filter = [
    "*filter",
    `:${CHAIN_FORWARD} - [0:0]`,
    `:${CHAIN_INPUT} - [0:0]`,
    ...(hasChain(current, "filter", CHAIN_SLOTS) ? [] : [`:${CHAIN_SLOTS} - [0:0]`]),
    `-A ${CHAIN_FORWARD} -i ${vh} -j ${CHAIN_SLOTS}`,
    `-A ${CHAIN_FORWARD} -o ${vh} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A ${CHAIN_FORWARD} -o ${vh} -j DROP`,
    ...[HOST_REACH_SUBNET, VETH_SUBNET, ...blockedEgressCidrs].map(
      (cidr) => `-A ${CHAIN_FORWARD} -i ${vh} -d ${cidr} -j DROP`,
    ),
    ...(uplink ? [`-A ${CHAIN_FORWARD} -i ${vh} -o ${uplink} -j ACCEPT`] : []),
    `-A ${CHAIN_FORWARD} -i ${vh} -j DROP`,
    `-A ${CHAIN_INPUT} -i ${vh} -j ${CHAIN_SLOTS}`,
    `-A ${CHAIN_INPUT} -i ${vh} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A ${CHAIN_INPUT} -i ${vh} -j DROP`,
    ...(hasRule(current, `-A FORWARD -j ${CHAIN_FORWARD}`) ? [] : [`-I FORWARD 1 -j ${CHAIN_FORWARD}`]),
    ...(hasRule(current, `-A INPUT -j ${CHAIN_INPUT}`) ? [] : [`-I INPUT 1 -j ${CHAIN_INPUT}`]),
    "COMMIT",
  ];
  const nat = [
    "*nat",
    `:${CHAIN_NAT} - [0:0]`,
    ...(uplink ? [`-A ${CHAIN_NAT} -s ${VETH_SUBNET} -o ${uplink} -j MASQUERADE`] : []),
    ...(hasRule(current, `-A POSTROUTING -j ${CHAIN_NAT}`) ? [] : [`-I POSTROUTING 1 -j ${CHAIN_NAT}`]),
    "COMMIT",
  ];
  return `${[...filter, ...nat].join("\n")}\n`;
}

/** Removes the jumps and the chains that exist; undefined when there is nothing to remove. */
export function hostTeardownDocument(current: string): string | undefined {
  const filter: string[] = [];
  const nat: string[] = [];
  for (const [parent, chain, out] of [
    ["FORWARD", CHAIN_FORWARD, filter],
    ["INPUT", CHAIN_INPUT, filter],
    ["POSTROUTING", CHAIN_NAT, nat],
  ] as const) {
    const jump = `-A ${parent} -j ${chain}`;
    for (const l of current.split("\n")) if (l.trim() === jump) out.push(`-D ${parent} -j ${chain}`);
  }
  for (const chain of [CHAIN_FORWARD, CHAIN_INPUT, CHAIN_SLOTS]) {
    if (hasChain(current, "filter", chain)) filter.push(`-F ${chain}`);
  }
  for (const chain of [CHAIN_FORWARD, CHAIN_INPUT, CHAIN_SLOTS]) {
    if (hasChain(current, "filter", chain)) filter.push(`-X ${chain}`);
  }
  if (hasChain(current, "nat", CHAIN_NAT)) nat.push(`-F ${CHAIN_NAT}`, `-X ${CHAIN_NAT}`);
  if (filter.length === 0 && nat.length === 0) return undefined;
  const doc = [
    ...(filter.length ? ["*filter", ...filter, "COMMIT"] : []),
    ...(nat.length ? ["*nat", ...nat, "COMMIT"] : []),
  ];
  return `${doc.join("\n")}\n`;
}

/** The host-side rules of one slot (appended to WRENN-SLOTS). */
export function slotHostRulesDocument(slot: number, a: SlotAddresses): string {
  return [
    "*filter",
    `-A ${CHAIN_SLOTS} ! -s ${a.vethNsIp}/32 -i ${a.vethHostName} -m comment --comment ${slotComment(slot)} -j DROP`,
    "COMMIT",
    "",
  ].join("\n");
}

/** Slots that have rules tagged `wrenn-slot-N` in an iptables-save text. */
export function taggedSlots(saved: string): Set<number> {
  const slots = new Set<number>();
  for (const m of saved.matchAll(/--comment "?wrenn-slot-(\d+)"?(?=\s|$)/gm)) slots.add(Number(m[1]));
  return slots;
}

/** `-D` lines (per table) removing every rule tagged for the slot; undefined when none. */
export function slotRemovalDocument(saved: string, slot: number): string | undefined {
  const out: string[] = [];
  let table = "";
  let lines: string[] = [];
  const tag = new RegExp(`--comment "?${slotComment(slot)}"?(?=\\s|$)`);
  const flush = () => {
    if (table && lines.length) out.push(`*${table}`, ...lines, "COMMIT");
    lines = [];
  };
  for (const l of saved.split("\n")) {
    if (l.startsWith("*")) {
      flush();
      table = l.slice(1).trim();
    } else if (l.startsWith("-A ") && tag.test(l)) {
      lines.push(`-D ${l.slice(3)}`);
    }
  }
  flush();
  return out.length ? `${out.join("\n")}\n` : undefined;
}

/** The namespace's own tables, applied with a plain iptables-restore into the fresh namespace. */
export function namespaceRulesDocument(slot: number, a: SlotAddresses): string {
  const tag = `-m comment --comment ${slotComment(slot)}`;
  const vn = a.vethNsName;
  return [
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD DROP [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    `-A INPUT -i ${TAP_NAME} -m conntrack --ctstate RELATED,ESTABLISHED ${tag} -j ACCEPT`,
    `-A INPUT -i ${TAP_NAME} -p icmp ${tag} -j ACCEPT`,
    `-A INPUT -i ${TAP_NAME} ${tag} -j DROP`,
    `-A FORWARD -i ${TAP_NAME} -o ${vn} -s ${GUEST_IP}/32 ${tag} -j ACCEPT`,
    `-A FORWARD -i ${vn} -o ${TAP_NAME} -d ${GUEST_IP}/32 ${tag} -j ACCEPT`,
    "COMMIT",
    "*mangle",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    `-A FORWARD -p tcp --tcp-flags SYN,RST SYN ${tag} -j TCPMSS --clamp-mss-to-pmtu`,
    "COMMIT",
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    `-A PREROUTING -i ${vn} -d ${a.hostReachableIp}/32 ${tag} -j DNAT --to-destination ${GUEST_IP}`,
    `-A POSTROUTING -o ${vn} -s ${GUEST_IP}/32 ${tag} -j SNAT --to-source ${a.vethNsIp}`,
    "COMMIT",
    "",
  ].join("\n");
}
