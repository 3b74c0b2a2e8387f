/** Addresses and names derived from a slot number; pure, so every component agrees. */

function ipv4(base: number, offset: number): string {
  const n = (base + offset) >>> 0;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

const VETH_BASE = (10 << 24) | (12 << 16); // 10.12.0.0/16: one /31 per slot
const HOST_REACH_BASE = (10 << 24) | (11 << 16); // 10.11.0.0/16: one address per slot

export const VETH_SUBNET = "10.12.0.0/16";
export const HOST_REACH_SUBNET = "10.11.0.0/16";
/** 10.12.0.0/16 holds 32768 /31s; slot 0 is never used. */
export const MAX_SLOT = 32_767;

export interface SlotAddresses {
  netnsName: string;
  vethHostName: string;
  vethNsName: string;
  vethHostIp: string;
  vethNsIp: string;
  hostReachableIp: string;
}

/** Default prefix of namespace, link, chain and comment names. */
export const DEFAULT_NAME_PREFIX = "wrenn";
/** Short enough that `<prefix>-vh-32767` fits Linux's 15-character interface names. */
const NAME_PREFIX_RE = /^[a-z][a-z0-9]{0,5}$/;

export function checkNamePrefix(prefix: string): string {
  if (!NAME_PREFIX_RE.test(prefix)) {
    throw new RangeError(`name prefix ${JSON.stringify(prefix)} must match ${NAME_PREFIX_RE}`);
  }
  return prefix;
}

/** Names and addresses of a slot; `prefix` differs from "wrenn" only in tests run beside a live agent. */
export function slotAddresses(slot: number, prefix: string = DEFAULT_NAME_PREFIX): SlotAddresses {
  if (!Number.isInteger(slot) || slot < 1 || slot > MAX_SLOT) {
    throw new RangeError(`slot ${slot} out of range 1..${MAX_SLOT}`);
  }
  checkNamePrefix(prefix);
  return {
    netnsName: `${prefix}-ns-${slot}`,
    vethHostName: `${prefix}-vh-${slot}`,
    vethNsName: `${prefix}-vn-${slot}`,
    vethHostIp: ipv4(VETH_BASE, 2 * slot),
    vethNsIp: ipv4(VETH_BASE, 2 * slot + 1),
    hostReachableIp: ipv4(HOST_REACH_BASE, slot),
  };
}
