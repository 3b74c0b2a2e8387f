import { ALWAYS_BLOCKED_CIDRS, normalizeNetworkPolicy } from "@wrenn/shared/network-policy";
import { describe, expect, it } from "vitest";
import {
  EGRESS_CHAIN,
  egressPolicyDocument,
  PROXY_CHAIN,
  REJECT_CHAIN,
} from "../src/network/egress-rules.js";
import { namespaceRulesDocument, ruleNames, slotHostRulesDocument } from "../src/network/network-rules.js";
import { slotAddresses } from "../src/network/slot-addresses.js";

const a = slotAddresses(5);

function chain(doc: string, name: string): string[] {
  return doc.split("\n").filter((l) => l.startsWith(`-A ${name} `));
}

describe("egress policy rules", () => {
  it("an open policy: replies, the agent's DNAT targets, the blocked ranges rejected, the rest accepted", () => {
    const doc = egressPolicyDocument({ allowOut: [], denyOut: [] }, a, 15080);
    expect(doc).toContain(`:${EGRESS_CHAIN} - [0:0]`);
    expect(chain(doc, EGRESS_CHAIN)).toEqual([
      `-A ${EGRESS_CHAIN} -m conntrack --ctstate RELATED -j ACCEPT`,
      `-A ${EGRESS_CHAIN} -m conntrack --ctdir REPLY -j ACCEPT`,
      `-A ${EGRESS_CHAIN} -d 10.12.0.10/32 -m conntrack --ctstate DNAT -j ACCEPT`,
      ...ALWAYS_BLOCKED_CIDRS.map((c) => `-A ${EGRESS_CHAIN} -d ${c} -j ${REJECT_CHAIN}`),
      `-A ${EGRESS_CHAIN} -j ACCEPT`,
    ]);
    expect(chain(doc, REJECT_CHAIN)).toEqual([
      `-A ${REJECT_CHAIN} -p tcp -j REJECT --reject-with tcp-reset`,
      `-A ${REJECT_CHAIN} -j REJECT --reject-with icmp-admin-prohibited`,
    ]);
    // No domains: nothing goes to the proxy, but the chain is declared (so it is emptied on update).
    expect(doc).toContain(`:${PROXY_CHAIN} - [0:0]`);
    expect(chain(doc, PROXY_CHAIN)).toEqual([]);
  });

  it("allow before deny, the blocked ranges before both (an allow cannot reopen them)", () => {
    // Not normalised: normalising refuses an allow inside a blocked range; the rules hold anyway.
    const policy = { allowOut: ["198.51.100.7/32", "192.168.1.0/24"], denyOut: ["198.51.100.0/24"] };
    const rules = chain(egressPolicyDocument(policy, a, undefined), EGRESS_CHAIN);
    const at = (rule: string) => rules.indexOf(`-A ${EGRESS_CHAIN} ${rule}`);
    expect(at(`-d 192.168.0.0/16 -j ${REJECT_CHAIN}`)).toBeGreaterThan(0);
    expect(at(`-d 192.168.0.0/16 -j ${REJECT_CHAIN}`)).toBeLessThan(at("-d 192.168.1.0/24 -j ACCEPT"));
    expect(at("-d 198.51.100.7/32 -j ACCEPT")).toBeLessThan(at(`-d 198.51.100.0/24 -j ${REJECT_CHAIN}`));
    expect(rules.at(-1)).toBe(`-A ${EGRESS_CHAIN} -j ACCEPT`);
  });

  it("domain entries send TCP 80 and 443 outside allowed CIDRs to the proxy on the veth's host end", () => {
    const policy = normalizeNetworkPolicy({
      allowOut: ["allowed.test", "*.example.com", "198.51.100.9"],
      allowInternetAccess: false,
    });
    const doc = egressPolicyDocument(policy, a, 15080);
    expect(chain(doc, PROXY_CHAIN)).toEqual([
      `-A ${PROXY_CHAIN} -d 198.51.100.9/32 -j RETURN`,
      `-A ${PROXY_CHAIN} -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.12.0.10:15080`,
      `-A ${PROXY_CHAIN} -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.12.0.10:15080`,
    ]);
    // Domains never become filter rules; the deny-all base rejects what the proxy does not take.
    expect(chain(doc, EGRESS_CHAIN)).toContain(`-A ${EGRESS_CHAIN} -d 0.0.0.0/0 -j ${REJECT_CHAIN}`);
    expect(doc).not.toContain("allowed.test");
    // Without a proxy, domain entries send nothing anywhere.
    expect(chain(egressPolicyDocument(policy, a, undefined), PROXY_CHAIN)).toEqual([]);
  });

  it("the namespace sends all the guest's DNS to the forwarder and its traffic through the policy chains", () => {
    const names = ruleNames();
    const ns = namespaceRulesDocument(names, 5, a, 10053);
    const tag = "-m comment --comment wrenn-slot-5";
    for (const proto of ["udp", "tcp"]) {
      // Any destination: a guest naming 8.8.8.8 still reaches the forwarder.
      expect(ns).toContain(
        `-A PREROUTING -i wrenn-tap0 -p ${proto} -m ${proto} --dport 53 ${tag} -j DNAT --to-destination 10.12.0.10:10053`,
      );
    }
    expect(ns).toContain(
      `-A FORWARD -i wrenn-tap0 -o wrenn-vn-5 -s 169.254.0.21/32 ${tag} -j ${EGRESS_CHAIN}`,
    );
    expect(ns).toContain(`-A PREROUTING -i wrenn-tap0 -p tcp -m tcp ${tag} -j ${PROXY_CHAIN}`);
    expect(ns).not.toMatch(/-A FORWARD -i wrenn-tap0 .* -j ACCEPT/);
    const host = slotHostRulesDocument(names, 5, a, 10053, undefined, 15080);
    expect(host).toContain(
      `-A WRENN-SLOTS -s 10.12.0.11/32 -d 10.12.0.10/32 -i wrenn-vh-5 -p tcp -m tcp --dport 15080 ${tag} -j ACCEPT`,
    );
  });
});
