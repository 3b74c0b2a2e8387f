import { e2bFormOfApiKey } from "@wrenn/control-plane";
import { Sandbox, Volume } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";
import { type Stack, startStack } from "./stack-fixture.js";

/**
 * Volumes through the stock `e2b` SDK against a real control plane and agent: created with
 * `Volume.create`, mounted at create by two sandboxes (write in one, read in the other),
 * still there after both are gone, used by a sandbox from a snapshot of one of them, isolated
 * per team, deleted with `Volume.destroy`.
 */
const PREFIX = "wvols";
const E2B_ENV = ["E2B_API_URL", "E2B_SANDBOX_URL", "E2B_API_KEY", "E2B_DOMAIN"] as const;

describe("e2b SDK: volumes", () => {
  let stack: Stack;
  const savedEnv: Record<string, string | undefined> = {};

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
    for (const name of E2B_ENV) savedEnv[name] = process.env[name];
    process.env.E2B_API_URL = stack.url;
    process.env.E2B_SANDBOX_URL = stack.url;
    process.env.E2B_API_KEY = e2bFormOfApiKey(stack.apiKey);
    process.env.E2B_DOMAIN = "wrenn.test";
  }, 300_000);

  afterAll(async () => {
    for (const name of E2B_ENV) {
      if (savedEnv[name] === undefined) delete process.env[name];
      else process.env[name] = savedEnv[name];
    }
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
});
