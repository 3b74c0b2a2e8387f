import { EGRESS_CHAIN, egressJumps, PROXY_CHAIN, REJECT_CHAIN } from "./egress-rules.js";
import { GUEST_GATEWAY_IP, GUEST_IP, TAP_NAME } from "./sandbox-network.js";
import {
  checkNamePrefix,
  DEFAULT_NAME_PREFIX,
  HOST_REACH_SUBNET,
  type SlotAddresses,
  VETH_SUBNET,
} from "./slot-addresses.js";

/**
 * The firewall and NAT rules, as iptables-restore documents. Pure, so the policy can be
 * read (and unit-tested) in one place; netns-network.ts applies them.
 *
 * Isolation policy. Host side (chains installed once by ensureHostRules):
 * - WRENN-SLOTS (filter): per-slot anti-spoofing, tagged `wrenn-slot-N`: from wrenn-vh-N only the
 *   ns end of the veth or the slot's host-reachable address; entered first from WRENN-FWD and
 *   WRENN-INPUT.
 * - WRENN-INPUT (from INPUT): a sandbox reaches no address of the host itself (the veth gateway,
 *   the host's main IP, any port: agent, control plane, ssh...) except replies to connections
 *   the host opened (the agent talking to envd), and, when the agent runs its DNS forwarder,
 *   the forwarder's port (UDP and TCP) on the host end of its own veth only (a per-slot rule in
 *   WRENN-SLOTS; another slot's veth address stays out of reach).
 * - WRENN-FWD (from FORWARD): nothing new is forwarded into a sandbox (neither from another
 *   sandbox nor from outside the host), only replies; from a sandbox, nothing to 10.11.0.0/16,
 *   10.12.0.0/16 or the blocked ranges (ALWAYS_BLOCKED_CIDRS and configured extras), and the rest
 *   only out of the uplink interface (the outside world). Everything else from a sandbox drops.
 * - WRENN-POSTROUTING (nat): MASQUERADE of 10.12.0.0/16 out of the uplink.
 * Namespace side (per sandbox, in its own tables): the guest may only send as GUEST_IP and only
 * out of the veth (egress SNAT to the veth's ns address); the namespace itself accepts nothing
 * from the guest but ICMP and replies; the host-reachable address DNATs (all ports) to GUEST_IP;
 * DNS from the guest to any address (port 53, UDP and TCP) DNATs to the forwarder on the host end
 * of the veth, so every guest's resolver is its gateway (the same address in every sandbox and in
 * every snapshot) whatever resolver it names; the guest's forwarded traffic passes its egress
 * policy chains (egress-rules.ts; open until a policy is applied); with NFS ports, the guest's TCP to its gateway on 2049 and 20048 DNATs to the
 * volume server on the host end of the veth the same way (which volumes a slot may mount is the
 * server's export list, keyed by the slot's veth ns address); TCP MSS is clamped to the path MTU.
 */

/** The port guests send DNS to (on their gateway). */
export const GUEST_DNS_PORT = 53;

/** The ports guests mount volumes on (on their gateway): NFSv3 and MOUNT v3, TCP only. */
export const GUEST_NFS_PORT = 2049;
export const GUEST_MOUNT_PORT = 20048;

/** Where the host's volume server listens, on every slot's veth host address. */
export interface NfsPorts {
  nfsPort: number;
  mountPort: number;
}

/** The guest port → host port pairs of the volume server. */
function nfsPortPairs(nfs: NfsPorts): Array<[number, number]> {
  return [
    [GUEST_NFS_PORT, nfs.nfsPort],
    [GUEST_MOUNT_PORT, nfs.mountPort],
  ];
}

/** Chain, wildcard and comment names for one name prefix ("wrenn" in production). */
export interface RuleNames {
  /** filter, from FORWARD. */
  forward: string;
  /** filter, from INPUT. */
  input: string;
  /** filter, per-slot rules; entered from `forward` and `input`. */
  slots: string;
  /** nat, from POSTROUTING. */
  nat: string;
  /** iptables wildcard matching every host-side veth. */
  vethHostWildcard: string;
  /** Comment tagging a slot's rules, `wrenn-slot-N`. */
  slotTag(slot: number): string;
  /** Matches a slot tag in iptables-save output; group 1 is the slot. */
  slotTagPattern: RegExp;
}

export function ruleNames(prefix: string = DEFAULT_NAME_PREFIX): RuleNames {
  const upper = checkNamePrefix(prefix).toUpperCase();
  return {
    forward: `${upper}-FWD`,
    input: `${upper}-INPUT`,
    slots: `${upper}-SLOTS`,
    nat: `${upper}-POSTROUTING`,
    vethHostWildcard: `${prefix}-vh+`,
    slotTag: (slot) => `${prefix}-slot-${slot}`,
    slotTagPattern: new RegExp(`--comment "?${prefix}-slot-(\\d+)"?(?=\\s|$)`, "gm"),
  };
}

export interface HostRulesInput {
  names: RuleNames;
  /** Interface egress may leave through (the default route's); undefined: no egress at all. */
  uplink: string | undefined;
  /** Destinations no sandbox may reach through the host (besides the Wrenn subnets). */
  blockedEgressCidrs: readonly string[];
  /** What the host's tables hold now (`iptables-save` of filter and nat). */
  current: string;
}

function hasRule(saved: string, rule: string): boolean {
  return saved.split("\n").some((l) => l.trim() === rule);
}

function hasChain(saved: string, table: string, chain: string): boolean {
  const section = saved.split(/^\*/m).find((s) => s.startsWith(`${table}\n`)) ?? "";
  return section.split("\n").some((l) => l.startsWith(`:${chain} `));
}

/**
 * The host chain set as one `iptables-restore --noflush` document: refills the forward, input
 * and nat chains, creates the slots chain only when missing (it holds the live slots' rules),
 * and adds each parent jump only when missing. Idempotent.
 */
export function hostRulesDocument(input: HostRulesInput): string {
  const { names: n, uplink, blockedEgressCidrs, current } = input;
  const vh = n.vethHostWildcard;
  const filter = [
    "*filter",
    `:${n.forward} - [0:0]`,
    `:${n.input} - [0:0]`,
    ...(hasChain(current, "filter", n.slots) ? [] : [`:${n.slots} - [0:0]`]),
    `-A ${n.forward} -i ${vh} -j ${n.slots}`,
    `-A ${n.forward} -o ${vh} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A ${n.forward} -o ${vh} -j DROP`,
    ...[HOST_REACH_SUBNET, VETH_SUBNET, ...blockedEgressCidrs].map(
      (cidr) => `-A ${n.forward} -i ${vh} -d ${cidr} -j DROP`,
    ),
    ...(uplink ? [`-A ${n.forward} -i ${vh} -o ${uplink} -j ACCEPT`] : []),
    `-A ${n.forward} -i ${vh} -j DROP`,
    `-A ${n.input} -i ${vh} -j ${n.slots}`,
    `-A ${n.input} -i ${vh} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A ${n.input} -i ${vh} -j DROP`,
    ...(hasRule(current, `-A FORWARD -j ${n.forward}`) ? [] : [`-I FORWARD 1 -j ${n.forward}`]),
    ...(hasRule(current, `-A INPUT -j ${n.input}`) ? [] : [`-I INPUT 1 -j ${n.input}`]),
    "COMMIT",
  ];
  const nat = [
    "*nat",
    `:${n.nat} - [0:0]`,
    ...(uplink ? [`-A ${n.nat} -s ${VETH_SUBNET} -o ${uplink} -j MASQUERADE`] : []),
    ...(hasRule(current, `-A POSTROUTING -j ${n.nat}`) ? [] : [`-I POSTROUTING 1 -j ${n.nat}`]),
    "COMMIT",
  ];
  return `${[...filter, ...nat].join("\n")}\n`;
}

/** Removes the jumps and the chains that exist; undefined when there is nothing to remove. */
export function hostTeardownDocument(names: RuleNames, current: string): string | undefined {
  const filter: string[] = [];
  const nat: string[] = [];
  for (const [parent, chain, out] of [
    ["FORWARD", names.forward, filter],
    ["INPUT", names.input, filter],
    ["POSTROUTING", names.nat, nat],
  ] as const) {
    const jump = `-A ${parent} -j ${chain}`;
    for (const l of current.split("\n")) if (l.trim() === jump) out.push(`-D ${parent} -j ${chain}`);
  }
  const filterChains = [names.forward, names.input, names.slots].filter((c) =>
    hasChain(current, "filter", c),
  );
  filter.push(...filterChains.map((c) => `-F ${c}`), ...filterChains.map((c) => `-X ${c}`));
  if (hasChain(current, "nat", names.nat)) nat.push(`-F ${names.nat}`, `-X ${names.nat}`);
  if (filter.length === 0 && nat.length === 0) return undefined;
  const doc = [
    ...(filter.length ? ["*filter", ...filter, "COMMIT"] : []),
    ...(nat.length ? ["*nat", ...nat, "COMMIT"] : []),
  ];
  return `${doc.join("\n")}\n`;
}

/** True when the host has any chain set jumped to from FORWARD that ends in -FWD (any prefix). */
export function anyHostChainSet(current: string): boolean {
  return /^-A FORWARD -j \S+-FWD$/m.test(current);
}

/**
 * The host-side rules of one slot (appended to the slots chain): anti-spoofing. Packets from the
 * slot's veth may only come from the namespace's veth address (guest egress, SNATed) or from its
 * host-reachable address (replies to the host's connections, un-DNATed).
 */
export function slotHostRulesDocument(
  names: RuleNames,
  slot: number,
  a: SlotAddresses,
  dnsPort?: number | undefined,
  nfs?: NfsPorts | undefined,
  proxyPort?: number | undefined,
): string {
  const tag = `-m comment --comment ${names.slotTag(slot)}`;
  // Only the slot's own forwarder address and port; the chain is also entered from FORWARD,
  // where a packet to a local address never passes, so the ACCEPT means "to the host" only.
  const dns = (proto: string) =>
    `-A ${names.slots} -s ${a.vethNsIp}/32 -d ${a.vethHostIp}/32 -i ${a.vethHostName} -p ${proto} -m ${proto} --dport ${dnsPort} ${tag} -j ACCEPT`;
  return [
    "*filter",
    `-A ${names.slots} -s ${a.hostReachableIp}/32 -i ${a.vethHostName} ${tag} -j RETURN`,
    `-A ${names.slots} ! -s ${a.vethNsIp}/32 -i ${a.vethHostName} ${tag} -j DROP`,
    ...(dnsPort === undefined ? [] : [dns("udp"), dns("tcp")]),
    ...(nfs === undefined
      ? []
      : nfsPortPairs(nfs).map(
          ([, port]) =>
            `-A ${names.slots} -s ${a.vethNsIp}/32 -d ${a.vethHostIp}/32 -i ${a.vethHostName} -p tcp -m tcp --dport ${port} ${tag} -j ACCEPT`,
        )),
    ...(proxyPort === undefined
      ? []
      : [
          `-A ${names.slots} -s ${a.vethNsIp}/32 -d ${a.vethHostIp}/32 -i ${a.vethHostName} -p tcp -m tcp --dport ${proxyPort} ${tag} -j ACCEPT`,
        ]),
    "COMMIT",
    "",
  ].join("\n");
}

/** Slots that have rules tagged `<prefix>-slot-N` in an iptables-save text. */
export function taggedSlots(names: RuleNames, saved: string): Set<number> {
  const slots = new Set<number>();
  for (const m of saved.matchAll(names.slotTagPattern)) slots.add(Number(m[1]));
  return slots;
}

/** `-D` lines (per table) removing every rule tagged for the slot; undefined when there are none. */
export function slotRemovalDocument(names: RuleNames, saved: string, slot: number): string | undefined {
  const out: string[] = [];
  let table = "";
  let lines: string[] = [];
  const flush = () => {
    if (table && lines.length) out.push(`*${table}`, ...lines, "COMMIT");
    lines = [];
  };
  for (const l of saved.split("\n")) {
    if (l.startsWith("*")) {
      flush();
      table = l.slice(1).trim();
      continue;
    }
    if (!l.startsWith("-A ")) continue;
    for (const m of l.matchAll(names.slotTagPattern)) {
      if (Number(m[1]) === slot) {
        lines.push(`-D ${l.slice(3)}`);
        break;
      }
    }
  }
  flush();
  return out.length ? `${out.join("\n")}\n` : undefined;
}

/**
 * The namespace's own tables, applied with a plain iptables-restore into the fresh namespace.
 * With `dnsPort`, the guest's DNS to its gateway goes to the forwarder at `vethHostIp:dnsPort`;
 * with `nfs`, its NFS and MOUNT connections to the gateway go to the volume server on `vethHostIp`.
 */
export function namespaceRulesDocument(
  names: RuleNames,
  slot: number,
  a: SlotAddresses,
  dnsPort?: number | undefined,
  nfs?: NfsPorts | undefined,
): string {
  const tag = `-m comment --comment ${names.slotTag(slot)}`;
  const vn = a.vethNsName;
  // DNS to any address, not only the gateway: a guest that names another resolver (8.8.8.8,
  // an edited /etc/resolv.conf) still gets the agent's forwarder, where domain policies apply.
  const dns = (proto: string) =>
    `-A PREROUTING -i ${TAP_NAME} -p ${proto} -m ${proto} --dport ${GUEST_DNS_PORT} ${tag} -j DNAT --to-destination ${a.vethHostIp}:${dnsPort}`;
  const jumps = egressJumps(tag, vn);
  return [
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD DROP [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    `:${EGRESS_CHAIN} - [0:0]`,
    `:${REJECT_CHAIN} - [0:0]`,
    `-A ${EGRESS_CHAIN} -j ACCEPT`,
    `-A INPUT -i ${TAP_NAME} -m conntrack --ctstate RELATED,ESTABLISHED ${tag} -j ACCEPT`,
    `-A INPUT -i ${TAP_NAME} -p icmp ${tag} -j ACCEPT`,
    `-A INPUT -i ${TAP_NAME} ${tag} -j DROP`,
    ...jumps.filter,
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
    `:${PROXY_CHAIN} - [0:0]`,
    `-A PREROUTING -i ${vn} -d ${a.hostReachableIp}/32 ${tag} -j DNAT --to-destination ${GUEST_IP}`,
    ...(dnsPort === undefined ? [] : [dns("udp"), dns("tcp")]),
    ...jumps.nat,
    ...(nfs === undefined
      ? []
      : nfsPortPairs(nfs).map(
          ([guestPort, port]) =>
            `-A PREROUTING -i ${TAP_NAME} -d ${GUEST_GATEWAY_IP}/32 -p tcp -m tcp --dport ${guestPort} ${tag} -j DNAT --to-destination ${a.vethHostIp}:${port}`,
        )),
    `-A POSTROUTING -o ${vn} -s ${GUEST_IP}/32 ${tag} -j SNAT --to-source ${a.vethNsIp}`,
    "COMMIT",
    "",
  ].join("\n");
}

/**
 * `ss` arguments that destroy the volume server's connections to a slot (its TCP sockets whose
 * peer is the slot's veth ns address). Run when a slot is released: otherwise the server keeps a
 * dead guest's connection established, and a different memory image landing in that slot with
 * the same guest port would stall on mismatched sequence numbers until TCP_USER_TIMEOUT.
 */
export function nfsConnectionKillArgs(a: SlotAddresses, nfs: NfsPorts): string[] {
  return [
    "-K",
    "-t",
    "-n",
    "dst",
    a.vethNsIp,
    "(",
    "sport",
    "=",
    `:${nfs.nfsPort}`,
    "or",
    "sport",
    "=",
    `:${nfs.mountPort}`,
    ")",
  ];
}
