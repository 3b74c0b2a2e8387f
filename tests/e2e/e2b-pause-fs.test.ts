import { e2bFormOfApiKey } from "@wrenn/control-plane";
import { Sandbox } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pointE2bSdkAt } from "./e2b-env.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";
import { type Stack, startStack } from "./stack-fixture.js";

const PREFIX = "wfp";

/** What tells a reboot from a restore: the kernel's boot id, its uptime, a marker process. */
async function guestState(sbx: Sandbox): Promise<{ bootId: string; uptimeSec: number; sleepers: number }> {
  const out = await sbx.commands.run(
    "cat /proc/sys/kernel/random/boot_id; cut -d' ' -f1 /proc/uptime; pgrep -fc 'sleep 360[0]' || true",
  );
  const [bootId = "", uptime = "", sleepers = ""] = out.stdout.trim().split("\n");
  return { bootId, uptimeSec: Number(uptime), sleepers: Number(sleepers) };
}

/**
 * The stock `e2b` SDK's filesystem-only pause (`pause({ keepMemory: false })`, the timeout's
 * `keepMemory: false`, connect's `onResume: "reboot"`) and connect's timeout that never
 * shortens a running sandbox, against the full stack with real VMs.
 */
describe("stock e2b SDK: filesystem-only pause and connect timeouts", () => {
  let stack: Stack;
  let dataDir = "";
  let restoreE2bEnv = () => {};

  beforeAll(async () => {
    stack = await startStack({ agents: [{ netNamePrefix: PREFIX, firstSlot: 3500, maxSlots: 4 }] });
    dataDir = stack.agents[0]?.dataDir ?? "";
    restoreE2bEnv = pointE2bSdkAt(stack.url, e2bFormOfApiKey(stack.apiKey));
  }, 120_000);

  afterAll(async () => {
    restoreE2bEnv();
    await stack?.close();
    expect(findHostLeftovers(dataDir, PREFIX)).toEqual(NO_LEFTOVERS);
  }, 120_000);

  it("pause({ keepMemory: false }) keeps the files; connect cold-boots: processes gone, uptime reset", async () => {
    const sbx = await Sandbox.create({ timeoutMs: 600_000 });
    try {
      await sbx.files.write("/home/user/kept.txt", "written before the pause");
      // Written just before the pause: only the guest's sync puts it on the disk.
      await sbx.commands.run("echo last-moment > /home/user/late.txt");
      await sbx.commands.run("sleep 3600", { background: true });
      const before = await guestState(sbx);
      expect(before.sleepers).toBe(1);

      expect(await sbx.pause({ keepMemory: false })).toBe(true);
      expect((await Sandbox.getInfo(sbx.sandboxId)).state).toBe("paused");
      expect(await Sandbox.pause(sbx.sandboxId)).toBe(false);

      const connectStarted = Date.now();
      const back = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 600_000 });
      const connectSec = (Date.now() - connectStarted) / 1000;
      expect(await back.files.read("/home/user/kept.txt")).toBe("written before the pause");
      expect(await back.files.read("/home/user/late.txt")).toBe("last-moment\n");
      const after = await guestState(back);
      expect(after.bootId).not.toBe(before.bootId);
      expect(after.sleepers).toBe(0);
      // A guest booted during the connect has run no longer than the connect took.
      expect(after.uptimeSec).toBeLessThanOrEqual(connectSec + 2);
      expect((await back.commands.run("whoami")).stdout).toBe("user\n");
      expect((await Sandbox.getInfo(sbx.sandboxId)).state).toBe("running");

      // Paused with memory again, the next pause and resume restore it (the same boot).
      expect(await back.pause()).toBe(true);
      const restored = await Sandbox.connect(sbx.sandboxId);
      expect((await guestState(restored)).bootId).toBe(after.bootId);
    } finally {
      await Sandbox.kill(sbx.sandboxId);
    }
  }, 420_000);

  it("connect with onResume 'reboot' cold-boots a sandbox whose pause kept memory", async () => {
    const sbx = await Sandbox.create({ timeoutMs: 600_000 });
    try {
      await sbx.files.write("/home/user/r.txt", "kept");
      await sbx.commands.run("sleep 3600", { background: true });
      const before = await guestState(sbx);
      expect(await sbx.pause()).toBe(true);
      const back = await Sandbox.connect(sbx.sandboxId, { onResume: "reboot" });
      const after = await guestState(back);
      expect(after.bootId).not.toBe(before.bootId);
      expect(after.sleepers).toBe(0);
      expect(await back.files.read("/home/user/r.txt")).toBe("kept");
      // On a running sandbox it changes nothing.
      await Sandbox.connect(sbx.sandboxId, { onResume: "reboot" });
      expect((await guestState(back)).bootId).toBe(after.bootId);
    } finally {
      await Sandbox.kill(sbx.sandboxId);
    }
  }, 420_000);

  it("the timeout's pause with keepMemory false keeps the disk; connect resumes it; autoResume is refused with it", async () => {
    const sbx = await Sandbox.create({
      timeoutMs: 8_000,
      lifecycle: { onTimeout: { action: "pause", keepMemory: false } },
    });
    try {
      expect((await sbx.getInfo()).lifecycle).toEqual({ onTimeout: "pause", autoResume: false });
      await sbx.files.write("/home/user/t.txt", "before the timeout");
      const deadline = Date.now() + 120_000;
      while ((await Sandbox.getInfo(sbx.sandboxId)).state !== "paused") {
        if (Date.now() > deadline) throw new Error("the sandbox never paused on its timeout");
        await new Promise((r) => setTimeout(r, 1000));
      }
      const back = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 300_000 });
      expect(await back.files.read("/home/user/t.txt")).toBe("before the timeout");
    } finally {
      await Sandbox.kill(sbx.sandboxId);
    }
    // The SDK refuses the combination itself; the server does too.
    const res = await fetch(`${stack.url}/sandboxes`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": e2bFormOfApiKey(stack.apiKey) },
      body: JSON.stringify({
        templateID: "base",
        autoPause: true,
        autoPauseMemory: false,
        autoResume: { enabled: true },
      }),
    });
    expect(res.status).toBe(400);
  }, 420_000);

  it("/v1: pause with keep_memory false and resume report it; resume with reboot cold-boots", async () => {
    const v1 = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${stack.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${stack.apiKey}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return res.status === 204 ? {} : ((await res.json()) as Record<string, unknown>);
    };
    const created = await v1("POST", "/v1/sandboxes", { timeout_sec: 600 });
    const id = String(created.id);
    expect(created).toMatchObject({ on_timeout_keep_memory: true, paused_without_memory: false });
    try {
      expect(await v1("POST", `/v1/sandboxes/${id}/pause`, { keep_memory: false })).toMatchObject({
        state: "paused",
        paused_without_memory: true,
      });
      expect(await v1("POST", `/v1/sandboxes/${id}/resume`, {})).toMatchObject({
        state: "running",
        paused_without_memory: false,
      });
      expect(await v1("POST", `/v1/sandboxes/${id}/pause`)).toMatchObject({ paused_without_memory: false });
      expect(await v1("POST", `/v1/sandboxes/${id}/resume`, { reboot: true })).toMatchObject({
        state: "running",
      });
    } finally {
      await v1("DELETE", `/v1/sandboxes/${id}`);
    }
  }, 420_000);

  it("connect never shortens a running sandbox's end; a longer timeout moves it later", async () => {
    const sbx = await Sandbox.create({ timeoutMs: 900_000 });
    try {
      const end = (await sbx.getInfo()).endAt.getTime();
      await Sandbox.connect(sbx.sandboxId, { timeoutMs: 60_000 });
      expect((await sbx.getInfo()).endAt.getTime()).toBe(end);
      const asked = Date.now();
      await Sandbox.connect(sbx.sandboxId, { timeoutMs: 1_200_000 });
      const later = (await sbx.getInfo()).endAt.getTime();
      expect(later).toBeGreaterThan(end);
      expect(later).toBeGreaterThanOrEqual(asked + 1_200_000 - 1000);
      // Short again: the later end stays.
      await Sandbox.connect(sbx.sandboxId, { timeoutMs: 30_000 });
      expect((await sbx.getInfo()).endAt.getTime()).toBe(later);
    } finally {
      await Sandbox.kill(sbx.sandboxId);
    }
  }, 240_000);
});
