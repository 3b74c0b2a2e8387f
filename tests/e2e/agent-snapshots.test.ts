import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxState } from "@wrenn/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, exec, startAgent } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

/** Real VMs paused to disk and brought back, templates and forks, through the host agent's RPCs. */
describe("snapshots: pause/resume, templates, fork", () => {
  let fx: AgentFixture;
  let id = "";

  beforeAll(async () => {
    fx = await startAgent({ netNamePrefix: "wsn", firstSlot: 700, maxSlots: 20 });
    const { sandbox } = await fx.client.createSandbox({
      image: "base",
      timeoutSec: 900,
      envVars: { WRENN_TEST_ENV: "kept" },
    });
    id = sandbox?.sandboxId ?? "";
    const start = await exec(
      fx,
      id,
      [
        "echo before-any-pause > /home/user/f0.txt",
        // A counter that runs across pauses; a localhost-only server reached through envd's forwarder.
        "nohup sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/c.tmp; mv /tmp/c.tmp /tmp/counter; sleep 0.2; done' >/dev/null 2>&1 &",
        "echo served > /tmp/index.html",
        "(cd /tmp && exec python3 -m http.server 8081 --bind 127.0.0.1) >/dev/null 2>&1 &",
      ].join("\n"),
    );
    expect(start.exitCode).toBe(0);
  }, 180_000);

  afterAll(async () => {
    const dir = fx?.dataDir ?? "";
    await fx?.close();
    expect(findHostLeftovers(dir, "wsn")).toEqual(NO_LEFTOVERS);
  }, 120_000);

  async function counter(sandboxId: string): Promise<number> {
    return Number((await exec(fx, sandboxId, "cat /tmp/counter")).stdout.trim());
  }

  async function httpGet(hostIp: string, port: number): Promise<string> {
    for (let i = 0; ; i++) {
      try {
        const res = await fetch(`http://${hostIp}:${port}/index.html`, { signal: AbortSignal.timeout(3000) });
        return await res.text();
      } catch (err) {
        if (i > 40) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  it("keeps processes, files, env and the forwarded server across three pause/resume cycles", async () => {
    const before = await fx.client.getSandbox({ sandboxId: id });
    expect(await httpGet(before.sandbox?.hostIp ?? "", 8081)).toContain("served");
    let last = await counter(id);
    for (let cycle = 1; cycle <= 3; cycle++) {
      expect((await exec(fx, id, `echo cycle-${cycle} > /home/user/f${cycle}.txt`)).exitCode).toBe(0);
      const paused = await fx.client.pauseSandbox({ sandboxId: id });
      expect(paused.sandbox?.state).toBe(SandboxState.PAUSED);
      // Generation 0 is the image snapshot the sandbox was restored from.
      expect(paused.generation).toBe(cycle);
      // Paused means no VM: no slot and no VMM process.
      expect(paused.sandbox?.vmmPid).toBe(0);
      expect(paused.sandbox?.slot).toBe(0);
      await expect(fx.client.pauseSandbox({ sandboxId: id })).rejects.toThrow(/already paused/);
      const pauseMs = cycle === 2 ? 10_000 : 200;
      await new Promise((r) => setTimeout(r, pauseMs));
      const resumed = await fx.client.resumeSandbox({ sandboxId: id });
      expect(resumed.sandbox?.state).toBe(SandboxState.RUNNING);
      const sentAt = Date.now();
      const files = await exec(fx, id, "cat /home/user/f*.txt; echo $WRENN_TEST_ENV; date +%s.%N");
      const answeredAt = Date.now();
      const lines = files.stdout.trim().split("\n");
      expect(lines.slice(0, cycle + 1)).toEqual([
        "before-any-pause",
        ...Array.from({ length: cycle }, (_, i) => `cycle-${i + 1}`),
      ]);
      expect(lines[cycle + 1]).toBe("kept");
      // The guest clock was frozen while paused; /init set it from the host.
      // The guest read its clock while the exec ran: within 1 s of the host's clock then.
      const guestMs = Number(lines[cycle + 2]) * 1000;
      expect(guestMs).toBeGreaterThan(sentAt - 1000);
      expect(guestMs).toBeLessThan(answeredAt + 1000);
      const now = await counter(id);
      expect(now).toBeGreaterThanOrEqual(last);
      await new Promise((r) => setTimeout(r, 600));
      expect(await counter(id)).toBeGreaterThan(now);
      last = await counter(id);
      expect(await httpGet(resumed.sandbox?.hostIp ?? "", 8081)).toContain("served");
    }
  }, 240_000);

  it("fails a stream that was open across the pause with a clean error", async () => {
    const stream = (await fx.guest(id)).start({ command: "sleep 600" });
    const consumed = (async () => {
      for await (const _ of stream) {
        // Output is not expected; the stream must end in an error once the VM is paused.
      }
      return "ended without an error";
    })().catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 1000));
    await fx.client.pauseSandbox({ sandboxId: id });
    expect(await consumed).toBeInstanceOf(Error);
    expect(String(await consumed)).toMatch(/paused/);
    await fx.client.resumeSandbox({ sandboxId: id });
    expect((await exec(fx, id, "echo alive")).stdout.trim()).toBe("alive");
  }, 120_000);

  it("creates a template; sandboxes from it share its state, diverge, and get their own entropy", async () => {
    await exec(fx, id, "echo template-file > /home/user/t.txt");
    const created = await fx.client.createSnapshot({ sandboxId: id, name: "tpl-one" });
    expect(created.snapshot?.name).toBe("tpl-one");
    expect(created.sandbox?.state).toBe(SandboxState.RUNNING);
    await expect(fx.client.createSnapshot({ sandboxId: id, name: "tpl-one" })).rejects.toThrow(
      /already exists/,
    );

    await expect(
      fx.client.createSandbox({ snapshot: "tpl-one", resources: { memoryMib: 1024 } }),
    ).rejects.toThrow(/memory/);
    const clones: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { sandbox } = await fx.client.createSandbox({
        snapshot: "tpl-one",
        envVars: { CLONE: String(i) },
        metadata: { clone: String(i) },
      });
      clones.push(sandbox?.sandboxId ?? "");
    }
    const seen = await Promise.all(
      clones.map((c) =>
        exec(
          fx,
          c,
          "cat /home/user/t.txt; echo $CLONE; cat /proc/sys/kernel/random/uuid; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'",
        ),
      ),
    );
    for (const [i, r] of seen.entries()) {
      const [file, env] = r.stdout.trim().split("\n");
      expect(file).toBe("template-file");
      expect(env).toBe(String(i));
    }
    const uuids = seen.map((r) => r.stdout.trim().split("\n")[2]);
    const random = seen.map((r) => r.stdout.trim().split("\n")[3]);
    expect(new Set(uuids).size).toBe(3);
    expect(new Set(random).size).toBe(3);
    // The template's processes came along and keep running in each clone.
    for (const c of clones) {
      const a = await counter(c);
      await new Promise((r) => setTimeout(r, 600));
      expect(await counter(c)).toBeGreaterThan(a);
    }
    // They share the template's clean memory pages (the base file's page cache): most of each
    // clone's resident memory is shared, and together they cost far less than 3 x 512 MiB.
    let totalPssMiB = 0;
    for (const c of clones) {
      const pid = (await fx.client.getSandbox({ sandboxId: c })).sandbox?.vmmPid ?? 0;
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
      const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1] ?? 0);
      expect(kib("Shared_Clean") / 1024).toBeGreaterThan(50);
      totalPssMiB += kib("Pss") / 1024;
    }
    expect(totalPssMiB).toBeLessThan(3 * 512 * 0.6);
    // They diverge: a write in one is not seen by the others or the source.
    await exec(fx, clones[0] ?? "", "echo only-zero > /home/user/t.txt");
    expect((await exec(fx, clones[1] ?? "", "cat /home/user/t.txt")).stdout.trim()).toBe("template-file");
    expect((await exec(fx, id, "cat /home/user/t.txt")).stdout.trim()).toBe("template-file");

    const list = await fx.client.listSnapshots({});
    const tpl = list.snapshots.find((s) => s.name === "tpl-one");
    expect(tpl?.dependents).toEqual(expect.arrayContaining(clones));
    await expect(fx.client.deleteSnapshot({ name: "tpl-one" })).rejects.toThrow(/in use/);
    for (const c of clones) await fx.client.destroySandbox({ sandboxId: c });
  }, 300_000);

  it("forks a running sandbox three times; the source keeps running", async () => {
    await exec(fx, id, "echo fork-point > /home/user/fork.txt");
    const { sandboxes } = await fx.client.forkSandbox({
      sandboxId: id,
      count: 3,
      metadata: { forked: "yes" },
    });
    expect(sandboxes).toHaveLength(3);
    for (const f of sandboxes) {
      expect(f.state).toBe(SandboxState.RUNNING);
      expect(f.metadata.forked).toBe("yes");
      expect((await exec(fx, f.sandboxId, "cat /home/user/fork.txt")).stdout.trim()).toBe("fork-point");
    }
    expect((await fx.client.getSandbox({ sandboxId: id })).sandbox?.state).toBe(SandboxState.RUNNING);
    await expect(fx.client.forkSandbox({ sandboxId: id, count: 101 })).rejects.toThrow(/1\.\.100/);
    // Fork templates are internal: not listed.
    expect((await fx.client.listSnapshots({})).snapshots.map((s) => s.name)).toEqual(["tpl-one"]);
    for (const f of sandboxes) await fx.client.destroySandbox({ sandboxId: f.sandboxId });
  }, 300_000);

  it("resumes a paused sandbox after the host agent restarts", async () => {
    await fx.client.pauseSandbox({ sandboxId: id });
    const { dataDir, token } = fx;
    await fx.agent.close({ destroySandboxes: false });
    fx = await startAgent({ netNamePrefix: "wsn", firstSlot: 700, maxSlots: 20 }, { dataDir, token });
    expect((await fx.client.getSandbox({ sandboxId: id })).sandbox?.state).toBe(SandboxState.PAUSED);
    await fx.client.resumeSandbox({ sandboxId: id });
    const files = await exec(fx, id, "cat /home/user/f0.txt /home/user/fork.txt");
    expect(files.stdout.trim().split("\n")).toEqual(["before-any-pause", "fork-point"]);
    // Deleting the source and then the template leaves no snapshot files behind but the
    // image snapshot's (kept for the next create from the image).
    await fx.client.destroySandbox({ sandboxId: id });
    await fx.client.deleteSnapshot({ name: "tpl-one" });
    expect((await fx.client.listSnapshots({})).snapshots).toEqual([]);
    const templatesDir = join(fx.dataDir, "templates");
    const kept = readdirSync(templatesDir).map(
      (t) =>
        JSON.parse(readFileSync(join(templatesDir, t, "template.json"), "utf8")) as {
          imageKey?: string;
          memorySnapshot: string;
        },
    );
    expect(kept).toEqual([expect.objectContaining({ imageKey: expect.any(String) })]);
    expect(readdirSync(join(fx.dataDir, "memory")).filter((f) => f.endsWith(".hdr"))).toEqual([
      `${kept[0]?.memorySnapshot}.hdr`,
    ]);
  }, 240_000);
});

describe("snapshots: failure paths", () => {
  let fx: AgentFixture;

  afterAll(async () => {
    expect(findHostLeftovers(fx?.dataDir ?? "", "wsf")).toEqual(NO_LEFTOVERS);
  }, 120_000);

  it("marks a sandbox error when its snapshot lost a file; others are unharmed", async () => {
    fx = await startAgent({ netNamePrefix: "wsf", firstSlot: 800, maxSlots: 5 });
    const a = (await fx.client.createSandbox({ image: "base", timeoutSec: 600 })).sandbox?.sandboxId ?? "";
    await exec(fx, a, "echo a > /home/user/a.txt");
    await fx.client.pauseSandbox({ sandboxId: a });
    // A second generation, then lose it: the newest diff is gone, the base is still there.
    await fx.client.resumeSandbox({ sandboxId: a });
    await exec(fx, a, "head -c 4000000 /dev/urandom > /tmp/noise");
    await fx.client.pauseSandbox({ sandboxId: a });
    const memDir = join(fx.dataDir, "memory");
    const generations = readdirSync(memDir).filter((f) => f.endsWith(".hdr"));
    expect(generations.length).toBeGreaterThanOrEqual(2);
    // Corrupt the newest diff (the one data file that is not the flat base).
    const diffs = readdirSync(memDir).filter((f) => f.endsWith(".mem"));
    const sizes = diffs.map((f) => ({ f, size: statSync(join(memDir, f)).size }));
    const smallest = sizes.sort((x, y) => x.size - y.size)[0]?.f ?? "";
    unlinkSync(join(memDir, smallest));
    await expect(fx.client.resumeSandbox({ sandboxId: a })).rejects.toThrow(/snapshot/);
    const info = await fx.client.getSandbox({ sandboxId: a });
    expect(info.sandbox?.state).toBe(SandboxState.ERROR);
    expect(info.sandbox?.error).toMatch(/missing|checksum|truncated/);
    await fx.client.destroySandbox({ sandboxId: a });
    await fx.close();
  }, 240_000);

  it("keeps a sandbox running when the disk fills during its pause, and leaves no partial snapshot", async () => {
    const mountPoint = mkdtempSync(join(tmpdir(), "wrenn-small-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=96m", "tmpfs", mountPoint]);
    try {
      fx = await startAgent(
        // A cold-booted sandbox: the image snapshot itself would not fit in this data dir.
        { netNamePrefix: "wsf", firstSlot: 800, maxSlots: 5, imageSnapshots: false },
        {
          dataDir: mountPoint,
          token: "disk-full-test-token-0123456789",
        },
      );
      const a = (await fx.client.createSandbox({ image: "base", timeoutSec: 600 })).sandbox?.sandboxId ?? "";
      // Make sure the guest holds more non-zero memory than the 96 MiB data dir can take.
      await exec(fx, a, "head -c 120000000 /dev/urandom > /dev/shm/fill && echo ok");
      await expect(fx.client.pauseSandbox({ sandboxId: a })).rejects.toThrow(/no space/);
      const info = await fx.client.getSandbox({ sandboxId: a });
      expect(info.sandbox?.state).toBe(SandboxState.RUNNING);
      expect((await exec(fx, a, "echo still-here")).stdout.trim()).toBe("still-here");
      expect(readdirSync(join(mountPoint, "memory"))).toEqual([]);
      await fx.client.destroySandbox({ sandboxId: a });
      await fx.agent.close({ destroySandboxes: true });
    } finally {
      execFileSync("umount", ["-l", mountPoint]);
      rmSync(mountPoint, { recursive: true, force: true });
    }
  }, 240_000);
});
