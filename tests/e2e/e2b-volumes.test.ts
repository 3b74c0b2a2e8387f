import { randomBytes } from "node:crypto";
import { e2bFormOfApiKey } from "@wrenn/control-plane";
import { Sandbox, Volume } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pointE2bSdkAt } from "./e2b-env.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";
import { type Stack, startStack } from "./stack-fixture.js";

/**
 * Volumes through the stock `e2b` SDK against a real control plane and agent: created with
 * `Volume.create`, mounted at create by two sandboxes (write in one, read in the other),
 * still there after both are gone, used by a sandbox from a snapshot of one of them, isolated
 * per team, deleted with `Volume.destroy`; its files read and written over the content API
 * with the volume's token.
 */
const PREFIX = "wvols";

describe("e2b SDK: volumes", () => {
  let stack: Stack;
  let restoreE2bEnv = () => {};

  beforeAll(async () => {
    stack = await startStack({
      agents: [
        {
          netNamePrefix: PREFIX,
          firstSlot: 2700,
          maxSlots: 4,
          volumes: true,
          nfsPort: 32249,
          nfsMountPort: 32248,
        },
      ],
    });
    restoreE2bEnv = pointE2bSdkAt(stack.url, e2bFormOfApiKey(stack.apiKey), {
      domain: "wrenn.test",
      volumes: true,
    });
  }, 300_000);

  afterAll(async () => {
    restoreE2bEnv();
    const dir = stack?.agents[0]?.dataDir ?? "";
    await stack?.close();
    expect(findHostLeftovers(dir, PREFIX)).toEqual(NO_LEFTOVERS);
  }, 120_000);

  it("shares a volume between two sandboxes and keeps it after both are gone", async () => {
    const vol = await Volume.create("shared-data");
    expect(vol.volumeId).toMatch(/^vol-/);
    expect((await Volume.list()).map((v) => v.name)).toEqual(["shared-data"]);

    const a = await Sandbox.create({ volumeMounts: { "/mnt/data": vol }, timeoutMs: 600_000 });
    const b = await Sandbox.create({ volumeMounts: { "/mnt/data": "shared-data" }, timeoutMs: 600_000 });
    await a.commands.run("echo written-by-a > /mnt/data/note.txt");
    expect((await b.commands.run("cat /mnt/data/note.txt")).stdout).toBe("written-by-a\n");

    await a.betaPause();
    const a2 = await Sandbox.connect(a.sandboxId);
    expect((await a2.commands.run("cat /mnt/data/note.txt")).stdout).toBe("written-by-a\n");

    // A sandbox from a snapshot of `a` has the volume mounted (frozen in its memory) and may use it.
    const snap = await a2.createSnapshot({ name: "vol-snap" });
    const clone = await Sandbox.create(snap.snapshotId, { timeoutMs: 600_000 });
    expect(
      (await clone.commands.run("cat /mnt/data/note.txt && echo by-clone > /mnt/data/clone.txt")).stdout,
    ).toBe("written-by-a\n");
    expect((await b.commands.run("cat /mnt/data/clone.txt")).stdout).toBe("by-clone\n");

    await expect(Volume.destroy(vol.volumeId)).rejects.toThrow();
    await a2.kill();
    await clone.kill();
    expect(await Sandbox.deleteSnapshot(snap.snapshotId)).toBe(true);
    await b.kill();
    const c = await Sandbox.create({ volumeMounts: { "/data": "shared-data" } });
    expect((await c.commands.run("cat /data/note.txt")).stdout).toBe("written-by-a\n");
    await c.kill();

    expect(await Volume.destroy(vol.volumeId)).toBe(true);
    expect(await Volume.list()).toEqual([]);
  }, 900_000);

  it("keeps each team's volumes to itself", async () => {
    await expect(Sandbox.create({ volumeMounts: { "/x": "no-such-volume" } })).rejects.toThrow(/not found/i);
    const mine = await Volume.create("team-a-only");
    const res = await fetch(`${stack.url}/v1/teams`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${stack.apiKey}` },
      body: JSON.stringify({ name: "team-b" }),
    });
    expect(res.status).toBe(201);
    const other = {
      apiKey: e2bFormOfApiKey(((await res.json()) as { api_key: { key: string } }).api_key.key),
    };
    expect(await Volume.list(other)).toEqual([]);
    await expect(Volume.getInfo(mine.volumeId, other)).rejects.toThrow(/not found/i);
    expect(await Volume.destroy(mine.volumeId, other)).toBe(false);
    await expect(Sandbox.create({ ...other, volumeMounts: { "/x": "team-a-only" } })).rejects.toThrow(
      /not found/i,
    );
    // The same name is free in the other team.
    const theirs = await Volume.create("team-a-only", other);
    expect(theirs.volumeId).not.toBe(mine.volumeId);
    expect(await Volume.destroy(theirs.volumeId, other)).toBe(true);
    expect(await Volume.destroy(mine.volumeId)).toBe(true);
  }, 120_000);

  it("serves a volume's files over the content API to its token, never through a guest's links", async () => {
    const vol = await Volume.create("content-api");
    expect(vol.token).toMatch(/^wvt_/);
    expect((await Volume.getInfo(vol.volumeId)).token).toBe(vol.token);

    expect(await vol.writeFile("/hello.txt", "from the api")).toMatchObject({
      path: "/hello.txt",
      type: "file",
      size: 12,
      uid: 1000,
    });
    await expect(vol.writeFile("/hello.txt", "no force")).rejects.toThrow(/already exists/);
    await vol.writeFile("/hello.txt", "from the api, again", { force: true });
    await expect(vol.makeDir("/deep/er")).rejects.toThrow(/not found/);
    expect(await vol.makeDir("/deep/er", { force: true })).toMatchObject({
      type: "directory",
      path: "/deep/er",
    });
    const blob = randomBytes(3 * 1024 * 1024);
    await vol.writeFile("/deep/er/blob.bin", new Blob([blob]));
    expect(Buffer.from(await vol.readFile("/deep/er/blob.bin", { format: "bytes" })).equals(blob)).toBe(true);
    expect((await vol.list("/")).map((e) => e.name)).toEqual(["deep", "hello.txt"]);
    expect((await vol.list("/", { depth: 3 })).map((e) => e.path)).toEqual([
      "/deep",
      "/deep/er",
      "/deep/er/blob.bin",
      "/hello.txt",
    ]);
    expect((await vol.updateMetadata("/hello.txt", { mode: 0o640 })).mode).toBe(0o640);

    // A sandbox sees what the API wrote; the API reads what the sandbox wrote, and refuses its links.
    const sbx = await Sandbox.create({ volumeMounts: { "/mnt/v": vol } });
    expect((await sbx.commands.run("cat /mnt/v/hello.txt; stat -c %a /mnt/v/hello.txt")).stdout).toBe(
      "from the api, again640\n",
    );
    await sbx.commands.run("echo from-guest > /mnt/v/guest.txt && ln -s / /mnt/v/rootlink");
    expect(await vol.readFile("/guest.txt")).toBe("from-guest\n");
    expect(await vol.getInfo("/rootlink")).toMatchObject({ type: "symlink", target: "/" });
    await expect(vol.readFile("/rootlink/etc/hostname")).rejects.toThrow(/symbolic link/);
    await vol.remove("/deep");
    expect(await vol.exists("/deep")).toBe(false);
    await sbx.kill();

    // Only the volume's own token opens it.
    const url = `${stack.url}/volumecontent/${vol.volumeId}/file?path=/hello.txt`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: "Bearer wvt_forged" } })).status).toBe(404);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${vol.token}` } });
    expect(await ok.text()).toBe("from the api, again");
    expect(await Volume.destroy(vol.volumeId)).toBe(true);
  }, 600_000);
});
