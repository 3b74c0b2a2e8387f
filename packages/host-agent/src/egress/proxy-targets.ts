import { networkInterfaces } from "node:os";
import { type Ipv4Cidr, ipv4InCidr, parseIpv4, parseIpv4Cidr } from "@wrenn/shared/network-policy";

/**
 * What the egress proxy must refuse to dial besides the always-blocked ranges. It connects
 * from the host itself, where neither the host's forwarding rules (the operator's blocked
 * ranges) nor its input rules (no sandbox reaches the host) apply: so the operator's ranges
 * and every address of the host's own interfaces (read per call: interfaces come and go).
 */
export function proxyTargetRefusal(blockedCidrs: readonly string[] = []): (ip: string) => boolean {
  const blocked = blockedCidrs.map((c) => parseIpv4Cidr(c)).filter((c): c is Ipv4Cidr => c !== undefined);
  return (ip) => {
    const n = parseIpv4(ip);
    if (n === undefined || blocked.some((c) => ipv4InCidr(n, c))) return true;
    return Object.values(networkInterfaces()).some((list) =>
      (list ?? []).some((a) => a.family === "IPv4" && a.address === ip),
    );
  };
}
