import { WrennError } from "../errors/wrenn-error.js";
import { ALWAYS_BLOCKED_CIDRS, formatIpv4Cidr, type Ipv4Cidr, ipv4InCidr, parseIpv4Cidr } from "./ipv4.js";

/**
 * A sandbox's egress policy as Wrenn stores and enforces it: normalised entries only
 * (CIDRs as `a.b.c.d/n`, domains lower-case). An empty policy (both lists empty) is an open
 * sandbox: it reaches what the host lets any sandbox reach.
 */
export interface NetworkPolicy {
  /** CIDRs and domain patterns allowed; an allow wins over a deny. */
  allowOut: string[];
  /** CIDRs denied; `0.0.0.0/0` denies everything not allowed. */
  denyOut: string[];
}

/** What a caller sends (E2B's `network` plus `allow_internet_access`). */
export interface NetworkPolicyInput {
  allowOut?: readonly string[] | undefined;
  denyOut?: readonly string[] | undefined;
  /** false: deny everything not in allowOut (as `denyOut: ["0.0.0.0/0"]`). */
  allowInternetAccess?: boolean | undefined;
}

export const ALL_IPV4 = "0.0.0.0/0";
/** The open policy: nothing restricted beyond what the host blocks for every sandbox. */
export const OPEN_POLICY: Readonly<NetworkPolicy> = Object.freeze({ allowOut: [], denyOut: [] });
const BLOCKED_RANGES = ALWAYS_BLOCKED_CIDRS.map((c) => ({ text: c, cidr: parseIpv4Cidr(c) as Ipv4Cidr }));
/** Entries per list; policies are matched per connection and applied as one rule each. */
export const MAX_POLICY_ENTRIES = 100;
const MAX_DOMAIN_LENGTH = 253;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why an entry or a policy was refused; stable, machine-readable. */
export type NetworkPolicyProblem =
  | "bad_cidr"
  | "bad_domain"
  | "bad_wildcard"
  | "blocked_range"
  | "ipv6_unsupported"
  | "domain_in_deny"
  | "domain_needs_deny_all"
  | "too_many_entries";

/** A refused policy: `problem` says why, `entry` which entry (when one did). */
export class NetworkPolicyError extends Error {
  override readonly name = "NetworkPolicyError";
  constructor(
    readonly problem: NetworkPolicyProblem,
    message: string,
    readonly entry?: string,
  ) {
    super(message);
  }
}

export type EgressEntry =
  | { kind: "cidr"; cidr: Ipv4Cidr; text: string }
  | { kind: "domain"; pattern: string };

/** Digits and dots, or anything with a prefix length: meant as an address or CIDR, never a name. */
function looksNumeric(text: string): boolean {
  return /^[0-9./]+$/.test(text) || text.includes("/");
}

function parseDomain(raw: string, text: string): EgressEntry {
  const wildcard = text.startsWith("*.");
  const name = wildcard ? text.slice(2) : text;
  if (name.includes("*")) {
    throw new NetworkPolicyError(
      "bad_wildcard",
      `'${raw}': a wildcard may only be a leading '*.' label (as in '*.example.com')`,
      raw,
    );
  }
  const labels = name.split(".");
  if (name.length === 0 || name.length > MAX_DOMAIN_LENGTH || !labels.every((l) => LABEL.test(l))) {
    throw new NetworkPolicyError("bad_domain", `'${raw}' is not an IPv4 address, CIDR or domain name`, raw);
  }
  if (wildcard && labels.length < 2) {
    throw new NetworkPolicyError(
      "bad_wildcard",
      `'${raw}': a wildcard needs a domain of two labels or more`,
      raw,
    );
  }
  return { kind: "domain", pattern: wildcard ? `*.${name}` : name };
}

/** One entry: an IPv4 address or CIDR, or a domain (`api.example.com`, `*.example.com`). */
export function parseEgressEntry(raw: string): EgressEntry {
  const text = raw.trim().toLowerCase().replace(/\.$/, "");
  if (text.includes(":")) {
    throw new NetworkPolicyError(
      "ipv6_unsupported",
      `'${raw}': IPv6 is not supported (sandboxes have IPv4 egress only)`,
      raw,
    );
  }
  if (looksNumeric(text)) {
    const cidr = parseIpv4Cidr(text);
    if (!cidr) throw new NetworkPolicyError("bad_cidr", `'${raw}' is not a valid IPv4 address or CIDR`, raw);
    return { kind: "cidr", cidr, text: formatIpv4Cidr(cidr) };
  }
  return parseDomain(raw, text);
}

function entryText(e: EgressEntry): string {
  return e.kind === "cidr" ? e.text : e.pattern;
}

function parseList(list: readonly string[], which: string): EgressEntry[] {
  if (list.length > MAX_POLICY_ENTRIES) {
    throw new NetworkPolicyError(
      "too_many_entries",
      `${which} has ${list.length} entries; at most ${MAX_POLICY_ENTRIES} are allowed`,
    );
  }
  const seen = new Set<string>();
  const out: EgressEntry[] = [];
  for (const raw of list) {
    if (typeof raw !== "string")
      throw new NetworkPolicyError("bad_domain", `${which} entries must be strings`);
    const entry = parseEgressEntry(raw);
    const key = entryText(entry);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(entry);
    }
  }
  return out;
}

/**
 * Validates and normalises a policy. Domains are allowed only in allowOut and only on a
 * deny-all base (a domain cannot be enforced while every address is reachable anyway), as
 * E2B requires; `allowInternetAccess: false` is that base.
 */
export function normalizeNetworkPolicy(input: NetworkPolicyInput): NetworkPolicy {
  const allow = parseList(input.allowOut ?? [], "allowOut");
  const deny = parseList(input.denyOut ?? [], "denyOut");
  for (const e of allow) {
    if (e.kind !== "cidr") continue;
    const range = BLOCKED_RANGES.find(
      (b) => b.cidr.prefix <= e.cidr.prefix && ipv4InCidr(e.cidr.network, b.cidr),
    );
    if (range) {
      throw new NetworkPolicyError(
        "blocked_range",
        `allowOut '${e.text}' is inside ${range.text}, which no sandbox reaches whatever its policy says`,
        e.text,
      );
    }
  }
  const domainInDeny = deny.find((e) => e.kind === "domain");
  if (domainInDeny) {
    throw new NetworkPolicyError(
      "domain_in_deny",
      `denyOut takes IPv4 addresses and CIDRs only, not '${entryText(domainInDeny)}'`,
      entryText(domainInDeny),
    );
  }
  const denyOut = deny.map(entryText);
  if (input.allowInternetAccess === false && !denyOut.includes(ALL_IPV4)) denyOut.push(ALL_IPV4);
  const domain = allow.find((e) => e.kind === "domain");
  if (domain && !denyOut.includes(ALL_IPV4)) {
    throw new NetworkPolicyError(
      "domain_needs_deny_all",
      `allowOut has the domain '${entryText(domain)}': domain entries need denyOut to contain ${ALL_IPV4} (or allow_internet_access false)`,
      entryText(domain),
    );
  }
  return { allowOut: allow.map(entryText), denyOut };
}

/** True when the policy restricts nothing (both lists empty). */
export function isOpenPolicy(policy: NetworkPolicy): boolean {
  return policy.allowOut.length === 0 && policy.denyOut.length === 0;
}

/** The policy's entries, parsed (for enforcement). The policy must be normalised. */
export function policyEntries(policy: NetworkPolicy): { allow: EgressEntry[]; deny: EgressEntry[] } {
  return { allow: policy.allowOut.map(parseEgressEntry), deny: policy.denyOut.map(parseEgressEntry) };
}

/**
 * Whether `host` (a name the connection asked for: TLS SNI or HTTP Host, without port) is
 * allowed by a domain pattern: `example.com` matches itself only; `*.example.com` matches
 * every name below it (`a.example.com`, `a.b.example.com`), not `example.com` itself.
 */
export function domainMatches(pattern: string, host: string): boolean {
  const name = host.trim().toLowerCase().replace(/\.$/, "");
  if (pattern.startsWith("*.")) return name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1;
  return name === pattern;
}

/** Whether the policy allows a connection that asked for `host` by name. */
export function policyAllowsDomain(policy: NetworkPolicy, host: string): boolean {
  return policy.allowOut.some((e) => !looksNumeric(e) && domainMatches(e, host));
}

/** True when the policy has domain entries (its TCP to ports 80 and 443 goes through the egress proxy). */
export function policyHasDomains(policy: NetworkPolicy): boolean {
  return policy.allowOut.some((e) => !looksNumeric(e));
}

/**
 * normalizeNetworkPolicy for boundaries: a refused policy is `invalid_argument` whose message
 * starts with `network policy: <problem>:` (the stable reason) and names the entry.
 */
export function parseNetworkPolicy(input: NetworkPolicyInput): NetworkPolicy {
  try {
    return normalizeNetworkPolicy(input);
  } catch (err) {
    if (err instanceof NetworkPolicyError) {
      throw new WrennError("invalid_argument", `network policy: ${err.problem}: ${err.message}`, {
        cause: err,
      });
    }
    throw err;
  }
}
