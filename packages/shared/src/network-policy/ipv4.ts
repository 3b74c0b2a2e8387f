/** IPv4 addresses and CIDRs as numbers: parsing, normalising, membership. Browser-safe. */

export interface Ipv4Cidr {
  /** The network address as an unsigned 32-bit number (host bits cleared). */
  network: number;
  prefix: number;
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** An unsigned 32-bit address from dotted-quad text; undefined when it is not one. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff - (2 ** (32 - prefix) - 1)) >>> 0;
}

/** `a.b.c.d` (a /32) or `a.b.c.d/n`; host bits are cleared. Undefined when malformed. */
export function parseIpv4Cidr(text: string): Ipv4Cidr | undefined {
  const [addr, len, extra] = text.split("/");
  if (addr === undefined || extra !== undefined) return undefined;
  const ip = parseIpv4(addr);
  if (ip === undefined) return undefined;
  let prefix = 32;
  if (len !== undefined) {
    if (!/^(0|[1-9][0-9]?)$/.test(len)) return undefined;
    prefix = Number(len);
    if (prefix > 32) return undefined;
  }
  return { network: (ip & mask(prefix)) >>> 0, prefix };
}

export function formatIpv4Cidr(cidr: Ipv4Cidr): string {
  return `${formatIpv4(cidr.network)}/${cidr.prefix}`;
}

export function ipv4InCidr(ip: number, cidr: Ipv4Cidr): boolean {
  return (ip & mask(cidr.prefix)) >>> 0 === cidr.network;
}

/**
 * Destinations no sandbox reaches whatever its policy says: this network ("0/8"), the
 * private ranges (RFC 1918), shared address space (CGNAT), loopback, link-local (cloud
 * metadata lives there), multicast and the reserved/broadcast block. The host's own
 * addresses are refused separately (its INPUT rules).
 */
export const ALWAYS_BLOCKED_CIDRS: readonly string[] = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "224.0.0.0/4",
  "240.0.0.0/4",
];

const BLOCKED = ALWAYS_BLOCKED_CIDRS.map((c) => parseIpv4Cidr(c) as Ipv4Cidr);

/** True for an address in ALWAYS_BLOCKED_CIDRS (never a sandbox's destination). */
export function isBlockedIpv4(ip: number): boolean {
  return BLOCKED.some((c) => ipv4InCidr(ip, c));
}
