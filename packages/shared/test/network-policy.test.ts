import { describe, expect, it } from "vitest";
import {
  domainMatches,
  isBlockedIpv4,
  MAX_POLICY_ENTRIES,
  NetworkPolicyError,
  normalizeNetworkPolicy,
  parseIpv4,
  policyAllowsDomain,
} from "../src/network-policy/index.js";

function problemOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof NetworkPolicyError) return err.problem;
    throw err;
  }
  return undefined;
}

describe("network policy: normalising what callers send", () => {
  it("normalises addresses to CIDRs, clears host bits, lower-cases domains and drops repeats", () => {
    expect(
      normalizeNetworkPolicy({
        allowOut: ["8.8.8.8", "11.1.2.3/8", "API.Example.com.", "api.example.com", "*.Example.org"],
        denyOut: ["0.0.0.0/0"],
      }),
    ).toEqual({
      allowOut: ["8.8.8.8/32", "11.0.0.0/8", "api.example.com", "*.example.org"],
      denyOut: ["0.0.0.0/0"],
    });
  });

  it("makes allow_internet_access false a deny-all base", () => {
    expect(normalizeNetworkPolicy({ allowInternetAccess: false })).toEqual({
      allowOut: [],
      denyOut: ["0.0.0.0/0"],
    });
    expect(normalizeNetworkPolicy({ allowInternetAccess: true })).toEqual({ allowOut: [], denyOut: [] });
  });

  it("refuses malformed entries with a stable reason", () => {
    expect(problemOf(() => normalizeNetworkPolicy({ denyOut: ["1.2.3.256"] }))).toBe("bad_cidr");
    expect(problemOf(() => normalizeNetworkPolicy({ denyOut: ["1.2.3.0/33"] }))).toBe("bad_cidr");
    expect(problemOf(() => normalizeNetworkPolicy({ denyOut: ["1.2.3"] }))).toBe("bad_cidr");
    expect(problemOf(() => normalizeNetworkPolicy({ denyOut: ["01.2.3.4"] }))).toBe("bad_cidr");
    expect(problemOf(() => normalizeNetworkPolicy({ denyOut: ["not-a-cidr/8"] }))).toBe("bad_cidr");
    expect(problemOf(() => normalizeNetworkPolicy({ allowOut: ["a.*.com"], denyOut: ["0.0.0.0/0"] }))).toBe(
      "bad_wildcard",
    );
    expect(problemOf(() => normalizeNetworkPolicy({ allowOut: ["*"], denyOut: ["0.0.0.0/0"] }))).toBe(
      "bad_wildcard",
    );
    expect(problemOf(() => normalizeNetworkPolicy({ allowOut: ["*.com"], denyOut: ["0.0.0.0/0"] }))).toBe(
      "bad_wildcard",
    );
    expect(
      problemOf(() => normalizeNetworkPolicy({ allowOut: ["exa mple.com"], denyOut: ["0.0.0.0/0"] })),
    ).toBe("bad_domain");
    expect(problemOf(() => normalizeNetworkPolicy({ allowOut: ["::1"] }))).toBe("ipv6_unsupported");
    expect(problemOf(() => normalizeNetworkPolicy({ allowOut: ["169.254.169.254"] }))).toBe("blocked_range");
    expect(problemOf(() => normalizeNetworkPolicy({ allowOut: ["10.1.0.0/16"] }))).toBe("blocked_range");
    // Wider than a blocked range: allowed (the blocked part stays blocked by the rules).
    expect(normalizeNetworkPolicy({ allowOut: ["0.0.0.0/0"] }).allowOut).toEqual(["0.0.0.0/0"]);
    expect(problemOf(() => normalizeNetworkPolicy({ denyOut: ["example.com"] }))).toBe("domain_in_deny");
    expect(problemOf(() => normalizeNetworkPolicy({ allowOut: ["example.com"] }))).toBe(
      "domain_needs_deny_all",
    );
    const many = Array.from({ length: MAX_POLICY_ENTRIES + 1 }, (_, i) => `1.2.${i >> 8}.${i & 255}`);
    expect(problemOf(() => normalizeNetworkPolicy({ allowOut: many }))).toBe("too_many_entries");
  });
});

describe("network policy: matching", () => {
  it("matches exact names and subdomains of a wildcard, never the wildcard's apex", () => {
    expect(domainMatches("example.com", "EXAMPLE.com.")).toBe(true);
    expect(domainMatches("example.com", "a.example.com")).toBe(false);
    expect(domainMatches("*.example.com", "a.example.com")).toBe(true);
    expect(domainMatches("*.example.com", "a.b.example.com")).toBe(true);
    expect(domainMatches("*.example.com", "example.com")).toBe(false);
    expect(domainMatches("*.example.com", "badexample.com")).toBe(false);
    const policy = normalizeNetworkPolicy({ allowOut: ["1.1.1.1", "allowed.test"], denyOut: ["0.0.0.0/0"] });
    expect(policyAllowsDomain(policy, "allowed.test")).toBe(true);
    expect(policyAllowsDomain(policy, "other.test")).toBe(false);
  });

  it("blocks private, link-local, loopback and reserved addresses whatever a policy says", () => {
    for (const ip of [
      "10.0.0.1",
      "172.31.255.1",
      "192.168.1.1",
      "169.254.169.254",
      "127.0.0.1",
      "100.64.0.1",
      "0.1.2.3",
    ])
      expect(isBlockedIpv4(parseIpv4(ip) as number)).toBe(true);
    for (const ip of ["8.8.8.8", "203.0.113.10", "198.51.100.1", "172.32.0.1"])
      expect(isBlockedIpv4(parseIpv4(ip) as number)).toBe(false);
  });
});
