import { appendFileSync, chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { EventType, Filesystem } from "@wrenn/proto";
import {
  FileNotFoundError,
  type FilesystemEvent,
  FilesystemEventType,
  InvalidArgumentError,
  type Sandbox,
} from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";
import { inotifyWatchCount } from "./files-helpers.js";

/** Collects SDK watch events and lets a test wait for one matching a predicate. */
function collector() {
  const events: FilesystemEvent[] = [];
  const waiters: { match: (e: FilesystemEvent) => boolean; resolve: () => void }[] = [];
  return {
    events,
    onEvent(e: FilesystemEvent) {
      events.push(e);
      for (const w of waiters.filter((w) => w.match(e))) w.resolve();
    },
    waitFor(type: FilesystemEventType, name: string, timeoutMs = 5000): Promise<void> {
      if (events.some((e) => e.type === type && e.name === name)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(`no ${type} ${name}; got ${JSON.stringify(events.map((e) => [e.type, e.name]))}`),
            ),
          timeoutMs,
        );
        waiters.push({
          match: (e) => e.type === type && e.name === name,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
  };
}

const settle = (ms = 150) => new Promise((r) => setTimeout(r, ms));

describe("envd WatchDir through the stock e2b SDK", () => {
  let fx: EnvdFixture;
  let sbx: Sandbox;
  /** inotify watches before any test watched anything; every test must return to it. */
  let baseline: number;
  const dir = (...parts: string[]) => join(fx.workDir, ...parts);

  beforeAll(async () => {
    baseline = inotifyWatchCount();
    fx = await startEnvd({ keepaliveIntervalMs: 100 });
    sbx = await fx.connectSdk();
  });
  afterAll(() => fx.close());

  it("reports create, write, chmod, rename and remove with E2B's types", async () => {
    mkdirSync(dir("w1"));
    writeFileSync(dir("w1", "existing.txt"), "old");
    const c = collector();
    const handle = await sbx.files.watchDir(dir("w1"), (e) => c.onEvent(e));
    try {
      await sbx.files.write(dir("w1", "existing.txt"), "changed");
      await c.waitFor(FilesystemEventType.WRITE, "existing.txt");

      writeFileSync(dir("w1", "new.txt"), "n");
      await c.waitFor(FilesystemEventType.CREATE, "new.txt");
      await settle();
      chmodSync(dir("w1", "new.txt"), 0o600);
      await c.waitFor(FilesystemEventType.CHMOD, "new.txt");

      renameSync(dir("w1", "new.txt"), dir("w1", "renamed.txt"));
      await c.waitFor(FilesystemEventType.RENAME, "new.txt");
      await c.waitFor(FilesystemEventType.CREATE, "renamed.txt");

      rmSync(dir("w1", "renamed.txt"));
      await c.waitFor(FilesystemEventType.REMOVE, "renamed.txt");

      mkdirSync(dir("w1", "sub"));
      await c.waitFor(FilesystemEventType.CREATE, "sub");
      // Not recursive: nothing from inside the subdirectory.
      writeFileSync(dir("w1", "sub", "inner.txt"), "x");
      await settle(300);
      expect(c.events.some((e) => e.name.includes("inner"))).toBe(false);
      // A removed file is REMOVE, not RENAME, even among other events.
      expect(c.events.filter((e) => e.type === FilesystemEventType.RENAME).map((e) => e.name)).toEqual([
        "new.txt",
      ]);
    } finally {
      await handle.stop();
    }
  });

  it("watches recursively, including directories created after it started", async () => {
    mkdirSync(dir("w2", "nested"), { recursive: true });
    const c = collector();
    const handle = await sbx.files.watchDir(dir("w2"), (e) => c.onEvent(e), { recursive: true });
    try {
      await sbx.files.write(dir("w2", "nested", "f.txt"), "x");
      await c.waitFor(FilesystemEventType.WRITE, "nested/f.txt");

      await sbx.files.makeDir(dir("w2", "later"));
      await c.waitFor(FilesystemEventType.CREATE, "later");
      await sbx.files.write(dir("w2", "later", "g.txt"), "y");
      await c.waitFor(FilesystemEventType.WRITE, "later/g.txt");

      // A directory appearing with contents reports them too.
      mkdirSync(dir("outside", "p", "q"), { recursive: true });
      writeFileSync(dir("outside", "p", "q", "r.txt"), "r");
      renameSync(dir("outside", "p"), dir("w2", "p"));
      await c.waitFor(FilesystemEventType.CREATE, "p");
      await c.waitFor(FilesystemEventType.CREATE, "p/q/r.txt");

      await sbx.files.remove(dir("w2", "nested"));
      await c.waitFor(FilesystemEventType.REMOVE, "nested/f.txt");
      await c.waitFor(FilesystemEventType.REMOVE, "nested");

      await sbx.files.rename(dir("w2", "later", "g.txt"), dir("w2", "p", "moved.txt"));
      await c.waitFor(FilesystemEventType.RENAME, "later/g.txt");
      await c.waitFor(FilesystemEventType.CREATE, "p/moved.txt");
    } finally {
      await handle.stop();
    }
  });

  it("includes entry info when asked, only for events whose entry still exists", async () => {
    mkdirSync(dir("w3"));
    const c = collector();
    const handle = await sbx.files.watchDir(dir("w3"), (e) => c.onEvent(e), { includeEntry: true });
    try {
      await sbx.files.write(dir("w3", "e.txt"), "12345");
      await c.waitFor(FilesystemEventType.WRITE, "e.txt");
      await sbx.files.remove(dir("w3", "e.txt"));
      await c.waitFor(FilesystemEventType.REMOVE, "e.txt");
      const write = c.events.filter((e) => e.type === FilesystemEventType.WRITE).at(-1);
      expect(write?.entry).toMatchObject({ name: "e.txt", path: dir("w3", "e.txt") });
      expect(c.events.find((e) => e.type === FilesystemEventType.REMOVE)?.entry).toBeUndefined();
    } finally {
      await handle.stop();
    }
  });

  it("rejects missing paths and files", async () => {
    writeFileSync(dir("not-a-dir"), "");
    await expect(sbx.files.watchDir(dir("absent"), () => {})).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(sbx.files.watchDir(dir("not-a-dir"), () => {})).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("closes its inotify watches when the client stops or disconnects", async () => {
    mkdirSync(dir("w4", "a", "b"), { recursive: true });
    await expect.poll(() => inotifyWatchCount(), { timeout: 5000 }).toBe(baseline);
    const before = baseline;
    const handle = await sbx.files.watchDir(dir("w4"), () => {}, { recursive: true });
    expect(inotifyWatchCount()).toBe(before + 3);
    await handle.stop();
    await expect.poll(() => inotifyWatchCount(), { timeout: 5000 }).toBe(before);

    // A raw client that aborts mid-stream, as a dropped connection would.
    const client = createClient(Filesystem, createConnectTransport({ baseUrl: fx.url, httpVersion: "1.1" }));
    const abort = new AbortController();
    const stream = client.watchDir({ path: dir("w4"), recursive: true }, { signal: abort.signal });
    const it = stream[Symbol.asyncIterator]();
    expect((await it.next()).value?.event.case).toBe("start");
    expect(inotifyWatchCount()).toBe(before + 3);
    abort.abort();
    await expect(it.next()).rejects.toThrow();
    await expect.poll(() => inotifyWatchCount(), { timeout: 5000 }).toBe(before);
  });

  it("sends keepalives on an idle stream at the configured interval", async () => {
    mkdirSync(dir("w5"));
    const client = createClient(Filesystem, createConnectTransport({ baseUrl: fx.url, httpVersion: "1.1" }));
    const abort = new AbortController();
    const cases: string[] = [];
    try {
      for await (const res of client.watchDir({ path: dir("w5") }, { signal: abort.signal })) {
        cases.push(res.event.case ?? "none");
        if (cases.length === 3) break;
      }
    } finally {
      abort.abort();
    }
    expect(cases).toEqual(["start", "keepalive", "keepalive"]);
  });

  it("serves the polling watcher API", async () => {
    mkdirSync(dir("w6"));
    const client = createClient(Filesystem, createConnectTransport({ baseUrl: fx.url, httpVersion: "1.1" }));
    await expect.poll(() => inotifyWatchCount(), { timeout: 5000 }).toBe(baseline);
    const before = baseline;
    const { watcherId } = await client.createWatcher({ path: dir("w6") });
    writeFileSync(dir("w6", "p.txt"), "1");
    appendFileSync(dir("w6", "p.txt"), "2");
    await settle(300);
    const first = await client.getWatcherEvents({ watcherId });
    expect(first.events.map((e) => [e.type, e.name])).toContainEqual([EventType.CREATE, "p.txt"]);
    expect(first.events.map((e) => e.type)).toContain(EventType.WRITE);
    expect((await client.getWatcherEvents({ watcherId })).events).toEqual([]);
    await client.removeWatcher({ watcherId });
    expect(inotifyWatchCount()).toBe(before);
    const gone = await client.getWatcherEvents({ watcherId }).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(ConnectError);
    expect((gone as ConnectError).code).toBe(Code.NotFound);
  });
});
