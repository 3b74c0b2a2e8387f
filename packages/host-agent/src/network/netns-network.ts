import { type Logger, WrennError } from "@wrenn/shared";
import { ALWAYS_BLOCKED_CIDRS, type NetworkPolicy, OPEN_POLICY } from "@wrenn/shared/network-policy";
import {
  defaultRouteInterface,
  iptablesRestore,
  iptablesSave,
  ipv4Holders,
  linkMtu,
  listLinks,
  listNetns,
  ss,
  sysctlRead,
  sysctlWrite,
} from "../drivers-system/ip-tools.js";
import { commandFailure } from "../drivers-system/run-command.js";
import { EGRESS_CHAIN, egressPolicyDocument } from "./egress-rules.js";
import {
  anyHostChainSet,
  hostRulesDocument,
  hostTeardownDocument,
  type NfsPorts,
  nfsConnectionKillArgs,
  type RuleNames,
  ruleNames,
  slotRemovalDocument,
  taggedSlots,
} from "./network-rules.js";
import {
  type EgressProxyListener,
  type NetworkManager,
  type SandboxNetwork,
  SlotAddressesTakenError,
  type SlotListener,
} from "./sandbox-network.js";
import { checkNamePrefix, DEFAULT_NAME_PREFIX, type SlotAddresses, slotAddresses } from "./slot-addresses.js";
import { buildSlotNetwork, deleteIgnoringMissing, type SlotBuildDeps } from "./slot-network-build.js";

export { TAP_NAME } from "./sandbox-network.js";

export interface NetnsNetworkOptions {
  /** Interface guest egress leaves through; default: the interface of the host's default route. */
  uplinkInterface?: string | undefined;
  /** Upper bound for the veth/TAP MTU (default 1500); the uplink's MTU lowers it. */
  mtu?: number | undefined;
  /** Destinations no sandbox may reach through the host besides ALWAYS_BLOCKED_CIDRS (default none). */
  blockedEgressCidrs?: readonly string[] | undefined;
  /**
   * Prefix of every name (namespaces `<prefix>-ns-N`, links, chains `<PREFIX>-FWD`, tags
   * `<prefix>-slot-N`); default "wrenn". Tests use another so they can run beside a live agent.
   */
  namePrefix?: string | undefined;
  /**
   * The DNS forwarder guests use through their gateway. Without it no DNS rules are made and
   * the gateway answers no DNS (guests then need `wrenn.dns=` resolvers they can reach).
   */
  dns?: SlotListener | undefined;
  /**
   * The egress proxy: with it, a sandbox whose policy has domain entries has its TCP to ports 80
   * and 443 sent there (per slot, on the host end of its veth); without it domain entries allow
   * nothing beyond their DNS answers.
   */
  proxy?: EgressProxyListener | undefined;
  /**
   * The volume server's host ports. With them, guests' NFS/MOUNT connections to their gateway
   * reach it on the slot's veth host address, and a released slot's server connections are
   * destroyed; without them guests cannot reach it at all.
   */
  nfs?: NfsPorts | undefined;
}

/** What ensureHostRules found and installed. */
export interface HostNetworkState {
  /** Egress interface, or undefined when the host has no default route (no egress then). */
  uplink: string | undefined;
  mtu: number;
  /** True when ensureHostRules switched net.ipv4.ip_forward on (teardownHostRules turns it back off). */
  enabledIpForward: boolean;
}

/**
 * Per-sandbox networking with network namespaces: a veth pair to the host and a TAP for the
 * VM inside each namespace, NAT both ways, and host rules that keep sandboxes away from each
 * other and from the host's own services (the policy is written out in network-rules.ts; the
 * steps that build a slot's network are in slot-network-build.ts).
 *
 * Slot N: namespace wrenn-ns-N; veth wrenn-vh-N (host, 10.12.0.0+2N/31) ↔ wrenn-vn-N (ns, +1);
 * TAP wrenn-tap0 (TAP_MAC, 169.254.0.22/30) for the guest at 169.254.0.21; the host reaches the
 * guest at 10.11.0.0+N through a host route to the ns end of the veth and a DNAT inside. With
 * a DNS listener, the guest's DNS to 169.254.0.22:53 goes to the listener at 10.12.0.0+2N.
 *
 * Host sysctls: net.ipv4.ip_forward is set to 1 (restored by teardownHostRules if it was 0).
 */
export class NetnsNetworkManager implements NetworkManager {
  private readonly options: NetnsNetworkOptions;
  private readonly prefix: string;
  /** Chain and tag names for this prefix. */
  readonly names: RuleNames;
  private host: HostNetworkState | undefined;
  private hostReady: Promise<HostNetworkState> | undefined;
  /** Host-table changes run one at a time (each is a read-modify-write of the ruleset). */
  private hostTables: Promise<unknown> = Promise.resolve();
  private readonly slotLocks = new Map<number, Promise<unknown>>();
  private readonly slotBuild: SlotBuildDeps;
  /** Each live slot's egress policy, read by the egress proxy and the DNS forwarder. */
  private readonly policies = new Map<number, NetworkPolicy>();

  constructor(
    private readonly logger: Logger,
    options: NetnsNetworkOptions = {},
  ) {
    this.options = options;
    this.prefix = checkNamePrefix(options.namePrefix ?? DEFAULT_NAME_PREFIX);
    this.names = ruleNames(this.prefix);
    this.slotBuild = {
      names: this.names,
      dns: options.dns,
      proxy: options.proxy,
      nfs: options.nfs,
      logger,
      withHostTables: (fn) => this.withHostTables(fn),
      removeSlotHostRules: (slot) => this.removeSlotHostRules(slot),
    };
  }

  /**
   * Installs (or refreshes) the host-wide chains, NAT and ip_forward; idempotent, and safe
   * while sandboxes run (their per-slot rules live in WRENN-SLOTS, which is never flushed here).
   */
  ensureHostRules(): Promise<HostNetworkState> {
    const run = this.installHostRules();
    this.hostReady = run;
    run.catch(() => {
      if (this.hostReady === run) this.hostReady = undefined;
    });
    return run;
  }

  private async installHostRules(): Promise<HostNetworkState> {
    const started = performance.now();
    const uplink = this.options.uplinkInterface ?? (await defaultRouteInterface());
    const uplinkMtu = uplink ? await linkMtu(uplink) : undefined;
    if (uplink && uplinkMtu === undefined) {
      throw new WrennError("failed_precondition", `uplink interface ${uplink} does not exist`);
    }
    if (!uplink) this.logger.warn("no IPv4 default route: sandboxes get no egress");
    const mtu = Math.min(this.options.mtu ?? 1500, uplinkMtu ?? 1500);
    const wasForwarding = (await sysctlRead("net.ipv4.ip_forward")) === "1";
    await this.withHostTables(async () => {
      const current = await iptablesSave();
      const doc = hostRulesDocument({
        names: this.names,
        uplink,
        blockedEgressCidrs: [...ALWAYS_BLOCKED_CIDRS, ...(this.options.blockedEgressCidrs ?? [])],
        current,
      });
      await iptablesRestore(doc, { noflush: true });
    }).catch((err: unknown) => {
      throw commandFailure("install host network rules", err);
    });
    if (!wasForwarding) await sysctlWrite(["net.ipv4.ip_forward=1"]);
    const state: HostNetworkState = {
      uplink,
      mtu,
      enabledIpForward: !wasForwarding || (this.host?.enabledIpForward ?? false),
    };
    this.host = state;
    this.logger.info("host network rules installed", {
      uplink,
      mtu,
      ms: Math.round(performance.now() - started),
    });
    return state;
  }

  /**
   * Removes the host-wide chains (and every per-slot host rule); for when no sandbox is left.
   * Turns ip_forward back off if ensureHostRules turned it on and no other chain set is left.
   */
  async teardownHostRules(): Promise<void> {
    const remaining = await this.withHostTables(async () => {
      const doc = hostTeardownDocument(this.names, await iptablesSave());
      if (doc) await iptablesRestore(doc, { noflush: true });
      return iptablesSave({ table: "filter" });
    }).catch((err: unknown) => {
      throw commandFailure("remove host network rules", err);
    });
    if (this.host?.enabledIpForward && !anyHostChainSet(remaining))
      await sysctlWrite(["net.ipv4.ip_forward=0"]);
    this.host = undefined;
    this.hostReady = undefined;
  }

  /**
   * Builds the slot's network. A slot whose addresses another link or route on the host holds
   * fails with SlotAddressesTakenError before anything is made (nothing to undo).
   */
  async create(slot: number, policy: NetworkPolicy = OPEN_POLICY): Promise<SandboxNetwork> {
    const a = this.addresses(slot);
    const host = await (this.hostReady ?? this.ensureHostRules());
    return this.withSlot(slot, async () => {
      const holders = await ipv4Holders(`${a.vethHostIp}/31`, `${a.hostReachableIp}/32`);
      if (holders.length > 0) throw new SlotAddressesTakenError(slot, holders);
      this.policies.set(slot, policy);
      try {
        return await buildSlotNetwork(this.slotBuild, slot, a, host.mtu, policy);
      } catch (err) {
        this.policies.delete(slot);
        throw err;
      }
    });
  }

  /**
   * Replaces a live slot's egress policy: both policy chains are refilled by one restore (each
   * table commits atomically). The guest's open connections meet the new rules on their next
   * packet (the chain checks every packet of a connection the guest opened); the DNS forwarder
   * and the proxy read the policy per query and per connection, and the proxy closes spliced
   * connections the new policy no longer allows. The in-memory policy changes first (rolled
   * back when the restore fails), so no name is judged by the old policy meanwhile.
   */
  async applyPolicy(slot: number, policy: NetworkPolicy): Promise<void> {
    const a = this.addresses(slot);
    await this.withSlot(slot, async () => {
      const saved = await iptablesSave({ table: "filter", netns: a.netnsName }).catch((err: unknown) => {
        throw commandFailure(`read the rules of slot ${slot}`, err);
      });
      if (!saved.includes(`-j ${EGRESS_CHAIN}`)) {
        throw new WrennError(
          "failed_precondition",
          `slot ${slot}'s network predates egress policies; pause and resume the sandbox to rebuild it`,
        );
      }
      const previous = this.policies.get(slot);
      this.policies.set(slot, policy);
      try {
        await iptablesRestore(egressPolicyDocument(policy, a, this.options.proxy?.port), {
          netns: a.netnsName,
          noflush: true,
        });
      } catch (err) {
        if (previous) this.policies.set(slot, previous);
        else this.policies.delete(slot);
        throw commandFailure(`apply the egress policy of slot ${slot}`, err);
      }
      this.options.proxy?.policyChanged(slot);
    });
  }

  /** The egress policy a live slot enforces (open when the slot has no network here). */
  policyOf(slot: number): NetworkPolicy {
    return this.policies.get(slot) ?? OPEN_POLICY;
  }

  async destroy(slot: number): Promise<void> {
    const a = this.addresses(slot);
    await this.withSlot(slot, async () => {
      const started = performance.now();
      try {
        // Deleting the host end takes the ns end (and the host route) with it at once; the
        // namespace (TAP, its rules) goes when its name is removed and no VMM holds it.
        this.policies.delete(slot);
        await Promise.all([
          this.options.dns?.detach(slot),
          this.options.proxy?.detach(slot),
          this.removeSlotHostRules(slot),
          this.killNfsConnections(a),
          deleteIgnoringMissing([
            `link del ${a.vethHostName}`,
            `link del ${a.vethNsName}`,
            `netns del ${a.netnsName}`,
          ]),
        ]);
      } catch (err) {
        throw commandFailure(`destroy network of slot ${slot}`, err);
      }
      this.logger.debug("network destroyed", { slot, ms: Math.round(performance.now() - started) });
    });
  }

  /** Slots that have anything on this host: a namespace, a wrenn-vh/vn link, or tagged host rules. */
  async slotsPresent(): Promise<Set<number>> {
    const [namespaces, links, saved] = await Promise.all([listNetns(), listLinks(), iptablesSave()]);
    const slots = taggedSlots(this.names, saved);
    const nsRe = new RegExp(`^${this.prefix}-ns-(\\d+)$`);
    const linkRe = new RegExp(`^${this.prefix}-v[hn]-(\\d+)$`);
    for (const name of namespaces) {
      const m = nsRe.exec(name);
      if (m) slots.add(Number(m[1]));
    }
    for (const name of links) {
      const m = linkRe.exec(name);
      if (m) slots.add(Number(m[1]));
    }
    return slots;
  }

  /** Removes the networks of slots not in `keep` (leftovers of a crash); returns the slots removed. */
  async sweep(keep: ReadonlySet<number>): Promise<number[]> {
    const removed: number[] = [];
    for (const slot of await this.slotsPresent()) {
      if (keep.has(slot) || slot < 1) continue;
      await this.destroy(slot);
      removed.push(slot);
    }
    removed.sort((x, y) => x - y);
    if (removed.length) this.logger.info("swept leftover sandbox networks", { slots: removed });
    return removed;
  }

  /** Destroys the volume server's TCP connections to this slot's address (see nfsConnectionKillArgs). */
  private async killNfsConnections(a: SlotAddresses): Promise<void> {
    if (this.options.nfs) await ss(nfsConnectionKillArgs(a, this.options.nfs));
  }

  private async removeSlotHostRules(slot: number): Promise<void> {
    await this.withHostTables(async () => {
      const doc = slotRemovalDocument(this.names, await iptablesSave(), slot);
      if (doc) await iptablesRestore(doc, { noflush: true });
    });
  }

  netnsName(slot: number): string {
    return this.addresses(slot).netnsName;
  }

  /**
   * Re-attaches a surviving slot (a sandbox adopted after a restart): its policy chains still
   * live in its namespace and are refilled from the record's policy (the record is the truth),
   * and the DNS and proxy listeners start again on the veth's host address.
   */
  async adopt(slot: number, policy: NetworkPolicy): Promise<void> {
    // Known before anything can fail: the forwarder and proxy judge by it even if this fails.
    this.policies.set(slot, policy);
    await this.applyPolicy(slot, policy);
    const address = this.addresses(slot).vethHostIp;
    await this.withSlot(slot, async () => {
      await this.options.dns?.attach(slot, address);
      await this.options.proxy?.attach(slot, address);
    });
  }

  /** Names and addresses of a slot under this manager's prefix. */
  addresses(slot: number): SlotAddresses {
    try {
      return slotAddresses(slot, this.prefix);
    } catch (err) {
      throw new WrennError("invalid_argument", (err as Error).message, { cause: err });
    }
  }

  private withHostTables<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.hostTables.then(fn, fn);
    this.hostTables = run.catch(() => {});
    return run;
  }

  private async withSlot<T>(slot: number, fn: () => Promise<T>): Promise<T> {
    const previous = this.slotLocks.get(slot) ?? Promise.resolve();
    const run = previous.catch(() => {}).then(fn);
    this.slotLocks.set(slot, run);
    try {
      return await run;
    } finally {
      if (this.slotLocks.get(slot) === run) this.slotLocks.delete(slot);
    }
  }
}
