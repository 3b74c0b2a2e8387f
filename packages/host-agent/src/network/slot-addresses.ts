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

export function slotAddresses(slot: number): SlotAddresses {
  if (!Number.isInteger(slot) || slot < 1 || slot > MAX_SLOT)
    throw new RangeError(`slot ${slot} out of range`);
  return {
    netnsName: `wrenn-ns-${slot}`,
    vethHostName: `wrenn-vh-${slot}`,
    vethNsName: `wrenn-vn-${slot}`,
    vethHostIp: ipv4(VETH_BASE, 2 * slot),
    vethNsIp: ipv4(VETH_BASE, 2 * slot + 1),
    hostReachableIp: ipv4(HOST_REACH_BASE, slot),
  };
}
