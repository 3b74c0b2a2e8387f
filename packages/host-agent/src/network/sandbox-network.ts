import { WrennError } from "@wrenn/shared";
import type { NetworkPolicy } from "@wrenn/shared/network-policy";

/** The guest's fixed address and MAC, identical in every sandbox (snapshots restore into any slot). */
export const GUEST_IP = "169.254.0.21";
export const GUEST_GATEWAY_IP = "169.254.0.22";
export const GUEST_PREFIX_LENGTH = 30;
export const GUEST_MAC = "02:fc:00:00:00:02";
/** The TAP's own MAC inside every namespace, so a restored guest's ARP entry stays valid. */
export const TAP_MAC = "02:fc:00:00:00:01";
/** The TAP's name; the same in every namespace. */
export const TAP_NAME = "wrenn-tap0";
export const ENVD_PORT = 49983;

/** One sandbox's network: a namespace, a veth pair to the host, a TAP for the VM. */
export interface SandboxNetwork {
  slot: number;
  netnsName: string;
  tapName: string;
  vethHostName: string;
  /** Address on the host through which the host reaches this sandbox's guest (DNAT to GUEST_IP). */
  hostReachableIp: string;
  guestMac: string;
  /** Host end of the veth /31 (the namespace's default gateway). */
  vethHostIp: string;
  /** Namespace end of the veth /31; guest egress leaves the namespace from this address. */
  vethNsIp: string;
  /**
   * MTU of the veth pair and the TAP: the uplink's MTU, at most 1500. The guest NIC should use
   * it too (QEMU virtio-net `host_mtu=`); TCP MSS is clamped in the namespace either way.
   */
  mtu: number;
}

/**
 * Something the agent runs for each slot at the host end of its veth (the DNS forwarder, the
 * egress proxy), as the network sees it. The network DNATs the guest's traffic for it to
 * `<host end of the slot's veth>:port` and opens that port (only that, only from that slot)
 * in the host's rules.
 */
export interface SlotListener {
  readonly port: number;
  /** Listen for `slot` at `address` (the host end of its veth, which exists by then). */
  attach(slot: number, address: string): Promise<void>;
  /** Stop listening for `slot`; idempotent. */
  detach(slot: number): Promise<void>;
}

/** The egress proxy as the network sees it: a slot listener told when a slot's policy changes. */
export interface EgressProxyListener extends SlotListener {
  /** Closes the slot's proxied connections its new policy no longer allows. */
  policyChanged(slot: number): void;
}

export interface NetworkManager {
  /**
   * Builds the namespace, veth, TAP and NAT rules for a slot, enforcing `policy` (default open)
   * before anything runs in it; undoes partial work on failure.
   * SlotAddressesTakenError when the host already uses the slot's addresses.
   */
  create(slot: number, policy?: NetworkPolicy): Promise<SandboxNetwork>;
  /** Replaces the egress policy of a slot whose network exists (a running sandbox's). */
  applyPolicy(slot: number, policy: NetworkPolicy): Promise<void>;
  /** Removes everything create() made for the slot; idempotent, succeeds when nothing is left. */
  destroy(slot: number): Promise<void>;
  /** The namespace a slot's VM runs in (to re-adopt a VMM after an agent restart). */
  netnsName(slot: number): string;
}

/**
 * A slot whose addresses something else on this host already holds: another agent whose
 * slot range overlaps this one, or what a crashed one left. The slot is skipped, not fought over.
 */
export class SlotAddressesTakenError extends WrennError {
  constructor(
    readonly slot: number,
    readonly holders: readonly string[],
  ) {
    super(
      "conflict",
      `network slot ${slot}: its addresses are already in use on this host (${holders.join(", ")}); ` +
        "another agent's slot range overlaps this one (WRENN_FIRST_SLOT), or a crashed one left them",
    );
  }
}
