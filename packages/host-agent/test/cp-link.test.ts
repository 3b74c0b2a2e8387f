import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkControlPlaneUrl } from "../src/config.js";
import { parseAgentArgs, parseTags } from "../src/cp-link/agent-args.js";
import { REFRESH_AT_FRACTION, refreshDueAtMs } from "../src/cp-link/control-plane-link.js";
import { ensureAgentIdentity } from "../src/identity/agent-identity.js";
import { readEnrolment, writeEnrolment } from "../src/identity/enrolment-file.js";

describe("wrenn-agent arguments", () => {
  it("serve is the default command; --register needs --control-plane; tags repeat or comma-separate", () => {
    expect(parseAgentArgs([])).toMatchObject({ command: "serve", tags: {} });
    const args = parseAgentArgs([
      "--register",
      "wrnr_x",
      "--control-plane",
      "https://cp.example",
      "--tag",
      "zone=a",
      "--tag",
      "gpu=h100,disk=ssd",
      "--ca",
      "/etc/ca.pem",
    ]);
    expect(args).toMatchObject({
      command: "serve",
      register: "wrnr_x",
      controlPlaneUrl: "https://cp.example",
      caPath: "/etc/ca.pem",
      tags: { zone: "a", gpu: "h100", disk: "ssd" },
    });
    expect(parseAgentArgs(["serve", "--register", "t", "--control-plane", "http://x"]).register).toBe("t");
    expect(() => parseAgentArgs(["--register", "t"])).toThrow(/--control-plane/);
    // The token from the environment (not visible in ps), the control plane too.
    expect(
      parseAgentArgs([], { WRENN_AGENT_REGISTER_TOKEN: "t2", WRENN_CONTROL_PLANE_URL: "https://cp" })
        .register,
    ).toBe("t2");
    expect(() => parseAgentArgs([], { WRENN_AGENT_REGISTER_TOKEN: "t2" })).toThrow(/--control-plane/);
  });

  it("sends tokens to a control plane over https, or http only to loopback", () => {
    expect(() => checkControlPlaneUrl("https://cp.example")).not.toThrow();
    expect(() => checkControlPlaneUrl("http://127.0.0.1:8080")).not.toThrow();
    expect(() => checkControlPlaneUrl("http://localhost:8080")).not.toThrow();
    expect(() => checkControlPlaneUrl("http://cp.example")).toThrow(/must be https/);
    expect(() => checkControlPlaneUrl("http://10.0.0.5:8080")).toThrow(/must be https/);
    expect(() => parseAgentArgs(["bogus"])).toThrow(/unknown command/);
    expect(() => parseAgentArgs(["--nope"])).toThrow();
    expect(() => parseTags(["novalue"])).toThrow(/key=value/);
    expect(parseTags(["a=b=c"])).toEqual({ a: "b=c" });
  });

  it("refreshes at 80 % of the credential's life", () => {
    expect(REFRESH_AT_FRACTION).toBe(0.8);
    expect(refreshDueAtMs(1000, 11_000)).toBe(9000);
    expect(refreshDueAtMs(5000, 1000)).toBe(5000);
  });
});

describe("agent identity and enrolment file", () => {
  const dir = mkdtempSync(join(tmpdir(), "wrenn-identity-test-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("makes the identity once (mode 0600), and keeps it on the next start", async () => {
    const first = await ensureAgentIdentity(dir, "10.0.0.5");
    expect(first.certPem).toContain("BEGIN CERTIFICATE");
    expect(first.agentToken).toMatch(/^[0-9a-f]{64}$/);
    expect(first.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    for (const f of ["agent.key", "agent.crt", "agent-token"]) {
      expect(statSync(join(dir, "identity", f)).mode & 0o777).toBe(0o600);
    }
    expect(statSync(join(dir, "identity")).mode & 0o777).toBe(0o700);
    const again = await ensureAgentIdentity(dir, "10.0.0.5");
    expect(again).toEqual(first);
    expect(readdirSync(join(dir, "identity")).sort()).toEqual(["agent-token", "agent.crt", "agent.key"]);
  });

  it("writes enrolment.json whole, mode 0600, and reads it back", () => {
    const identityDir = join(dir, "identity");
    expect(readEnrolment(identityDir)).toBeUndefined();
    const enrolment = {
      control_plane_url: "https://cp.example",
      control_plane_ca_path: null,
      host_id: "host_x",
      credential: "wrnh_a",
      expires_at: new Date().toISOString(),
      issued_at: new Date().toISOString(),
      refresh_token: "wrnf_b",
    };
    writeEnrolment(identityDir, enrolment);
    expect(readEnrolment(identityDir)).toEqual(enrolment);
    expect(statSync(join(identityDir, "enrolment.json")).mode & 0o777).toBe(0o600);
    expect(readdirSync(identityDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});
