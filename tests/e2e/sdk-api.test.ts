import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkApi } from "@wrenn/cli";
import { ApiClient, ApiKeys, Sandbox, Snapshot, WrennApiError, type WrennConnectionError } from "@wrenn/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runWrenn } from "./cli-runner.js";
import { type Stack, startStack } from "./stack-fixture.js";

async function caught(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
}

/**
 * The SDK and CLI against a real control plane (PGlite, no hosts): what works without VMs,
 * and how each failure reaches the caller.
 */
describe("SDK and CLI against a control plane without hosts", () => {
  let stack: Stack;
  let client: ApiClient;
  const wrennDir = mkdtempSync(join(tmpdir(), "wrenn-sdk-api-"));
  const emptyDir = mkdtempSync(join(tmpdir(), "wrenn-sdk-api-empty-"));
  let env: Record<string, string>;

  beforeAll(async () => {
    stack = await startStack();
    client = new ApiClient({ apiUrl: stack.url, apiKey: stack.apiKey, timeoutMs: 10_000 });
    env = { WRENN_API_URL: stack.url, WRENN_API_KEY: stack.apiKey, WRENN_DIR: emptyDir };
  });

  afterAll(async () => {
    await stack?.close();
    rmSync(wrennDir, { recursive: true, force: true });
    rmSync(emptyDir, { recursive: true, force: true });
  });

  it("maps no hosts to no_capacity (503)", async () => {
    const err = await caught(Sandbox.create({ client, memoryMiB: 512 }));
    expect(err).toBeInstanceOf(WrennApiError);
    expect(err).toMatchObject({ code: "no_capacity", status: 503, method: "POST", path: "/v1/sandboxes" });
  });

  it("maps bad input to invalid_argument (400) naming the field", async () => {
    const err = await caught(Sandbox.create({ client, memoryMiB: 1 }));
    expect(err).toMatchObject({ code: "invalid_argument", status: 400 });
    expect((err as Error).message).toMatch(/memory_mb/);
    const badEnv = await caught(Sandbox.create({ client, envs: { "1BAD": "x" } }));
    expect(badEnv).toMatchObject({ code: "invalid_argument", status: 400 });
  });

  it("maps a wrong key to unauthenticated (401) and an unknown id to not_found (404)", async () => {
    const wrong = await caught(Sandbox.list({ apiUrl: stack.url, apiKey: `wrn_${"0".repeat(40)}` }));
    expect(wrong).toMatchObject({ code: "unauthenticated", status: 401 });
    expect(await caught(Sandbox.connect("inope", { client }))).toMatchObject({
      code: "not_found",
      status: 404,
    });
    expect(await caught(Snapshot.delete("nope", { client }))).toMatchObject({ code: "not_found" });
    expect(await caught(Snapshot.create("inope", "snap", { client }))).toMatchObject({ code: "not_found" });
  });

  it("reports an API that does not answer as a WrennConnectionError, not an API error", async () => {
    const closed = new ApiClient({ apiUrl: "http://127.0.0.1:9", apiKey: "k", timeoutMs: 5000 });
    const err = (await caught(Sandbox.list({ client: closed }))) as WrennConnectionError;
    expect(err.name).toBe("WrennConnectionError");
    expect(err).not.toBeInstanceOf(WrennApiError);
    expect(err.timedOut).toBe(false);
  });

  it("lists (empty), and creates, lists and revokes API keys", async () => {
    expect(await Sandbox.list({ client, state: ["running"], metadata: { a: "b" } })).toEqual([]);
    expect(await Snapshot.list({ client })).toEqual([]);
    const created = await ApiKeys.create("ci", { client });
    expect(created.key).toMatch(/^wrn_/);
    const keys = await ApiKeys.list({ client });
    expect(keys.map((k) => k.name)).toEqual(expect.arrayContaining(["bootstrap", "ci"]));
    expect(await Sandbox.list({ apiUrl: stack.url, apiKey: created.key })).toEqual([]);
    await ApiKeys.revoke(created.id, { client });
    expect(await caught(Sandbox.list({ apiUrl: stack.url, apiKey: created.key }))).toMatchObject({
      code: "unauthenticated",
    });
  });

  it("wrenn keys create|ls|revoke with --json, and reads the credentials file when env is unset", async () => {
    const created = await runWrenn(["keys", "create", "cli-key", "--json"], env);
    expect(created.code, created.stderr).toBe(0);
    const key = JSON.parse(created.stdout) as { id: string; key: string; name: string };
    expect(key).toMatchObject({ name: "cli-key", key: expect.stringMatching(/^wrn_/) });

    writeFileSync(
      join(wrennDir, "credentials.env"),
      `WRENN_API_URL=${stack.url}\nWRENN_API_KEY=${key.key}\n`,
    );
    const listed = await runWrenn(["keys", "ls", "--json"], { WRENN_DIR: wrennDir });
    expect(listed.code, listed.stderr).toBe(0);
    const items = JSON.parse(listed.stdout) as { id: string; name: string }[];
    expect(items.map((k) => k.name)).toContain("cli-key");

    const table = await runWrenn(["keys", "ls"], { WRENN_DIR: wrennDir });
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+NAME\s+PREFIX\s+CREATED\s+LAST USED\s+REVOKED$/);

    const revoked = await runWrenn(["keys", "revoke", key.id, "--json"], env);
    expect(JSON.parse(revoked.stdout)).toEqual([{ id: key.id, revoked: true }]);
    const after = await runWrenn(["sandbox", "ls"], { WRENN_DIR: wrennDir });
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/^error \[unauthenticated\]: .+ \(hint: check WRENN_API_KEY/);
  });

  it("prints each failure in one line with its code and a hint", async () => {
    const noCap = await runWrenn(["sandbox", "create", "--memory", "512"], env);
    expect(noCap.code).toBe(1);
    expect(noCap.stdout).toBe("");
    expect(noCap.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(noCap.stderr).toMatch(/^error \[no_capacity\]: .+ \(hint: no host has room/);

    const usage = await runWrenn(["sandbox", "create", "--memory", "lots"], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^error \[usage\]: --memory "lots": expected a whole number/);

    const missing = await runWrenn(["snapshot", "rm", "ghost"], env);
    expect(missing.stderr).toMatch(/^error \[not_found\]: snapshot ghost not found/);

    const noConfig = await runWrenn(["sandbox", "ls"], { WRENN_DIR: emptyDir });
    expect(noConfig.stderr).toMatch(/^error \[config\]: no API URL/);

    const down = await runWrenn(["sandbox", "ls"], { ...env, WRENN_API_URL: "http://127.0.0.1:9" });
    expect(down.stderr).toMatch(
      /^error \[connection\]: cannot reach the Wrenn API at http:\/\/127\.0\.0\.1:9/,
    );

    const shell = await runWrenn(["sandbox", "shell", "iabc"], env);
    expect(shell.code).toBe(1);
    expect(shell.stderr).toMatch(/^error \[not_found\]: sandbox iabc not found/);

    const ls = await runWrenn(["sandbox", "ls", "--json"], env);
    expect(JSON.parse(ls.stdout)).toEqual([]);
  });

  it("doctor's API check: reachable, key accepted, no hosts up yet", async () => {
    expect(await checkApi(env)).toMatchObject({
      name: "api",
      status: "warn",
      detail: expect.stringMatching(/key accepted, 0\/0 hosts up$/),
    });
    expect(await checkApi({ WRENN_DIR: emptyDir })).toMatchObject({
      status: "warn",
      detail: /not configured/,
    });
    expect(await checkApi({ ...env, WRENN_API_KEY: "wrn_bad" })).toMatchObject({
      status: "fail",
      detail: expect.stringContaining("[unauthenticated]"),
    });
  });

  it("refuses a malformed network policy with invalid_argument naming the entry (SDK and CLI)", async () => {
    const err = await caught(Sandbox.create({ client, network: { denyOut: ["300.1.1.1"] } }));
    expect(err).toMatchObject({ code: "invalid_argument", status: 400 });
    expect((err as Error).message).toMatch(/bad_cidr: '300\.1\.1\.1'/);
    const domain = await runWrenn(["sandbox", "create", "--allow-out", "api.example.com"], env);
    expect(domain.code).toBe(1);
    expect(domain.stderr).toMatch(/invalid_argument.*domain_needs_deny_all/);
    // The policy is checked before the sandbox is looked up.
    const update = await runWrenn(["sandbox", "network", "inope", "--deny-out", "1.2.3.4/99"], env);
    expect(update.stderr).toMatch(/invalid_argument.*bad_cidr/);
    const missing = await runWrenn(["sandbox", "network", "inope", "--deny-out", "1.2.3.4/24"], env);
    expect(missing.stderr).toMatch(/not_found/);
    const usage = await runWrenn(["sandbox", "network", "inope", "--open", "--deny-out", "1.2.3.4"], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--open clears the policy/);
    expect((await runWrenn(["sandbox", "info", "inope"], env)).stderr).toMatch(/not_found/);
  });
});
