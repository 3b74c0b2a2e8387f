import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code, type ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Filesystem } from "@wrenn/proto";
import { AuthenticationError, InvalidArgumentError } from "e2b";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";
import { connectSdkWithToken } from "./files-helpers.js";

const TOKEN = "0123456789abcdef0123456789abcdef";

describe("envd access token, /init, /envs, /metrics, /snapshot/prepare", () => {
  let fx: EnvdFixture;
  let clock = Date.now();
  /** Strictly increasing /init timestamps, so each test's /init is the newest. */
  const nextTimestamp = () => {
    clock += 1000;
    return new Date(clock).toISOString();
  };
  const init = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    fetch(`${fx.url}/init`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    fx = await startEnvd();
  });
  afterAll(() => fx.close());
  beforeEach(() => {
    fx.envd.ctx.state.accessToken = undefined;
  });

  it("sets the token with /init; then every route but /health needs it", async () => {
    expect((await init({ accessToken: TOKEN, timestamp: nextTimestamp() })).status).toBe(204);
    expect(fx.envd.ctx.state.accessToken).toBe(TOKEN);
    writeFileSync(join(fx.workDir, "secret.txt"), "s3cret");

    const envs = await fetch(`${fx.url}/envs`);
    expect(envs.status).toBe(401);
    expect(await envs.json()).toMatchObject({ code: 401 });
    expect((await fetch(`${fx.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${fx.url}/snapshot/prepare`, { method: "POST" })).status).toBe(401);
    const download = await fetch(`${fx.url}/files?path=${join(fx.workDir, "secret.txt")}`);
    expect(download.status).toBe(401);
    expect(await download.json()).toEqual({ code: 401, message: "missing signature query parameter" });
    const wrongHeader = await fetch(`${fx.url}/files?path=${join(fx.workDir, "secret.txt")}`, {
      headers: { "x-access-token": "wrong" },
    });
    expect(await wrongHeader.json()).toEqual({
      code: 401,
      message: "access token present in header but does not match",
    });
    expect((await fetch(`${fx.url}/health`)).status).toBe(204);

    const noToken = createClient(Filesystem, createConnectTransport({ baseUrl: fx.url, httpVersion: "1.1" }));
    const denied = await noToken.stat({ path: fx.workDir }).catch((e: unknown) => e);
    expect((denied as ConnectError).code).toBe(Code.Unauthenticated);

    const withToken = createClient(
      Filesystem,
      createConnectTransport({
        baseUrl: fx.url,
        httpVersion: "1.1",
        interceptors: [
          (next) => (req) => {
            req.header.set("X-Access-Token", TOKEN);
            return next(req);
          },
        ],
      }),
    );
    expect((await withToken.stat({ path: fx.workDir })).entry?.path).toBe(fx.workDir);
    expect((await fetch(`${fx.url}/envs`, { headers: { "x-access-token": TOKEN } })).status).toBe(200);

    // The stock SDK of a secure sandbox sends the token everywhere.
    const sdk = connectSdkWithToken(fx.url, TOKEN);
    expect(await sdk.files.read(join(fx.workDir, "secret.txt"))).toBe("s3cret");
    await sdk.files.write(join(fx.workDir, "by-sdk.txt"), "ok");
    expect(await sdk.files.exists(join(fx.workDir, "by-sdk.txt"))).toBe(true);

    const stranger = connectSdkWithToken(fx.url, "not-the-token");
    await expect(stranger.files.read(join(fx.workDir, "secret.txt"))).rejects.toBeInstanceOf(
      AuthenticationError,
    );
    await expect(stranger.files.list(fx.workDir)).rejects.toBeInstanceOf(AuthenticationError);
  });

  it("accepts SDK-signed download and upload URLs, and refuses bad or expired ones", async () => {
    expect((await init({ accessToken: TOKEN, timestamp: nextTimestamp() })).status).toBe(204);
    const sdk = connectSdkWithToken(fx.url, TOKEN);
    const path = join(fx.workDir, "signed.txt");
    writeFileSync(path, "signed content");

    const url = await sdk.downloadUrl(path, { user: "root" });
    expect(url).toContain("signature=v1_");
    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("signed content");

    const expiring = await sdk.downloadUrl(path, { useSignatureExpiration: 60 });
    expect((await fetch(expiring)).status).toBe(200);
    const expired = await sdk.downloadUrl(path, { useSignatureExpiration: -10 });
    const expiredRes = await fetch(expired);
    expect(expiredRes.status).toBe(401);
    expect(await expiredRes.json()).toEqual({ code: 401, message: "signature is already expired" });

    // The signature binds path, operation and user: changing any of them breaks it.
    const otherPath = new URL(url);
    otherPath.searchParams.set("path", join(fx.workDir, "other.txt"));
    expect((await fetch(otherPath)).status).toBe(401);
    const otherUser = new URL(url);
    otherUser.searchParams.set("username", "user");
    expect(await (await fetch(otherUser)).json()).toEqual({ code: 401, message: "invalid signature" });
    const asUpload = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: "x",
    });
    expect(asUpload.status).toBe(401);
    expect(readFileSync(path, "utf8")).toBe("signed content");

    const uploadUrl = await sdk.uploadUrl(join(fx.workDir, "uploaded.txt"), { useSignatureExpiration: 60 });
    const form = new FormData();
    form.append("file", new Blob(["via signed url"]), "ignored-name.txt");
    const uploaded = await fetch(uploadUrl, { method: "POST", body: form });
    expect(uploaded.status).toBe(200);
    expect(readFileSync(join(fx.workDir, "uploaded.txt"), "utf8")).toBe("via signed url");
  });

  it("applies /init only when newer than the last one applied", async () => {
    const newer = nextTimestamp();
    const older = new Date(Date.parse(newer) - 500).toISOString();
    expect((await init({ envVars: { A: "new" }, defaultWorkdir: "/tmp", timestamp: newer })).status).toBe(
      204,
    );
    expect((await init({ envVars: { A: "old" }, defaultWorkdir: "/old", timestamp: older })).status).toBe(
      204,
    );
    expect((await init({ envVars: { A: "same" }, timestamp: newer })).status).toBe(204);
    expect(fx.envd.ctx.state.envVars).toEqual({ A: "new" });
    expect(fx.envd.ctx.state.defaultWorkdir).toBe("/tmp");
    expect(await (await fetch(`${fx.url}/envs`)).json()).toEqual({ A: "new" });

    expect(
      (await init({ envVars: { A: "newest", B: "2" }, defaultUser: "root", timestamp: nextTimestamp() }))
        .status,
    ).toBe(204);
    expect(await (await fetch(`${fx.url}/envs`)).json()).toEqual({ A: "newest", B: "2" });
    fx.envd.ctx.state.defaultWorkdir = fx.workDir;
  });

  it("guards /init itself once a token is set", async () => {
    expect((await init({ accessToken: TOKEN, timestamp: nextTimestamp() })).status).toBe(204);
    expect((await init({ accessToken: "attacker", timestamp: nextTimestamp() })).status).toBe(401);
    expect((await init({ timestamp: nextTimestamp() })).status).toBe(401);
    expect(fx.envd.ctx.state.accessToken).toBe(TOKEN);
    // Knowing the token (body or header) allows rotating it.
    expect((await init({ accessToken: TOKEN, envVars: { R: "1" }, timestamp: nextTimestamp() })).status).toBe(
      204,
    );
    expect(
      (await init({ accessToken: "rotated", timestamp: nextTimestamp() }, { "x-access-token": TOKEN }))
        .status,
    ).toBe(204);
    expect(fx.envd.ctx.state.accessToken).toBe("rotated");
  });

  it("refuses malformed /init bodies with 400 and never changes the clock in no-VM mode", async () => {
    const bad = await fetch(`${fx.url}/init`, { method: "POST", body: "{not json" });
    expect(bad.status).toBe(400);
    expect((await init({ envVars: "nope" })).status).toBe(400);
    expect((await init({ timestamp: "yesterday" })).status).toBe(400);
    // A timestamp an hour off would set the clock inside a VM; here it must not.
    const before = Date.now();
    expect((await init({ timestamp: new Date(clock + 3_600_000).toISOString() })).status).toBe(204);
    clock += 3_600_000;
    expect(Math.abs(Date.now() - before)).toBeLessThan(60_000);
  });

  it("reports metrics with E2B's field names", async () => {
    const res = await fetch(`${fx.url}/metrics`);
    expect(res.status).toBe(200);
    const m = (await res.json()) as Record<string, number>;
    for (const key of [
      "ts",
      "cpu_count",
      "cpu_used_pct",
      "mem_total",
      "mem_used",
      "mem_cache",
      "disk_total",
      "disk_used",
    ]) {
      expect(typeof m[key], key).toBe("number");
    }
    expect(m.cpu_count).toBeGreaterThan(0);
    expect(m.mem_total).toBeGreaterThan(m.mem_used ?? Number.POSITIVE_INFINITY);
    expect(m.disk_total).toBeGreaterThan(0);
    expect(m.mem_total_mib).toBe(Math.floor((m.mem_total ?? 0) / 1024 / 1024));
  });

  it("prepares for a snapshot: ports stopped, data flushed, 204", async () => {
    const res = await fetch(`${fx.url}/snapshot/prepare`, { method: "POST" });
    expect(res.status).toBe(204);
    expect(fx.envd.ctx.ports.running).toBe(false);
  });

  it("refuses the SDK's bad requests without crashing", async () => {
    const sdk = connectSdkWithToken(fx.url, "");
    await expect(sdk.files.list(fx.workDir, { depth: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    const malformed = await fetch(`${fx.url}/filesystem.Filesystem/ListDir`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"path": 12',
    });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ code: "invalid_argument" });
    const wrongType = await fetch(`${fx.url}/filesystem.Filesystem/Stat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"path": {"x": 1}}',
    });
    expect(wrongType.status).toBe(400);
    const nul = await fetch(`${fx.url}/filesystem.Filesystem/Stat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ path: "/tmp/a\u0000b" }),
    });
    expect(nul.status).toBe(400);
    expect((await fetch(`${fx.url}/health`)).status).toBe(204);
  });
});
