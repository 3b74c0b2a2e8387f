import { networkInterfaces } from "node:os";

/** The machine's first non-loopback IPv4 address (the guest's external address in a VM). */
export function findDefaultForwardHost(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.family === "IPv4" && !a.internal) return a.address;
    }
  }
  return undefined;
}
