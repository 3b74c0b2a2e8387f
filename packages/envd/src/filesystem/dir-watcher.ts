import { type FSWatcher, watch } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { EventType } from "@wrenn/proto";
import { errnoCode } from "./fs-errors.js";

export interface DirWatchEvent {
  /** Path relative to the watched root, as E2B reports it. */
  name: string;
  type: EventType;
  /** Absolute path of the entry. */
  path: string;
}

export interface DirWatcherOptions {
  root: string;
  recursive: boolean;
  onEvent(event: DirWatchEvent): void;
  /** Called once if watching fails for good (e.g. the inotify watch limit); the watcher is closed. */
  onError(err: Error): void;
}

export interface DirWatcher {
  close(): void;
}

interface RawEvent {
  dir: string;
  kind: "rename" | "change";
  name: string;
  batch: number;
}

interface WatchedDir {
  watcher: FSWatcher;
  /** Names believed to exist in the directory: tells an appearance from a disappearance. */
  known: Set<string>;
}

async function lstatOrUndefined(path: string) {
  return lstat(path).catch(() => undefined);
}

/**
 * Watches a directory (optionally its whole tree) and reports E2B's event types.
 *
 * Node's fs.watch (inotify via libuv) only says "rename" or "change", so the finer types
 * fsnotify gives E2B's envd are reconstructed here:
 * - "change" is WRITE, or CHMOD when the inode changed after its contents did (ctime > mtime).
 * - "rename" of a name not known to exist is CREATE; of a known name is REMOVE, or RENAME
 *   when the very next raw event of the same inotify read is an appearance (inotify
 *   delivers MOVED_FROM/MOVED_TO back to back). A known name that still exists and has
 *   no later event queued was replaced by a move onto it: CREATE.
 * Recursion uses one non-recursive fs.watch per directory (one shared inotify fd), adding
 * watches as directories appear and dropping them as they go; a directory that appears
 * with contents reports CREATE for each entry found in it.
 */
export async function createDirWatcher(options: DirWatcherOptions): Promise<DirWatcher> {
  const { root, recursive } = options;
  const dirs = new Map<string, WatchedDir>();
  const queue: RawEvent[] = [];
  let closed = false;
  let draining = false;
  let batch = 0;
  let batchOpen = false;

  const fail = (err: Error) => {
    if (closed) return;
    close();
    options.onError(err);
  };

  const emit = (type: EventType, path: string) => {
    if (!closed) options.onEvent({ name: relative(root, path), type, path });
  };

  const unwatchTree = (path: string) => {
    for (const [dir, w] of dirs) {
      if (dir === path || dir.startsWith(`${path}/`)) {
        w.watcher.close();
        dirs.delete(dir);
      }
    }
  };

  /** Starts watching `dir` (and, when recursive, its subdirectories); returns what it found. */
  const addWatch = async (dir: string, reportContents: boolean): Promise<void> => {
    if (closed || dirs.has(dir)) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (kind, name) => {
        if (closed || !name || dirs.get(dir)?.watcher !== watcher) return;
        if (!batchOpen) {
          batchOpen = true;
          batch++;
          setImmediate(() => {
            batchOpen = false;
          });
        }
        queue.push({ dir, kind: kind === "change" ? "change" : "rename", name: name.toString(), batch });
        void drain();
      });
    } catch (err) {
      // The directory vanished between being seen and being watched: nothing to watch.
      if (dir !== root && (errnoCode(err) === "ENOENT" || errnoCode(err) === "ENOTDIR")) return;
      throw err;
    }
    watcher.on("error", (err) => {
      if (dir === root || errnoCode(err) !== "ENOENT") fail(err);
    });
    const known = new Set<string>();
    dirs.set(dir, { watcher, known });
    // Watch first, then list: anything created in between is both listed and reported,
    // and the event path tolerates that (a known name that exists reads as CREATE).
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      known.add(entry.name);
      const path = join(dir, entry.name);
      if (reportContents) emit(EventType.CREATE, path);
      if (recursive && entry.isDirectory()) await addWatch(path, reportContents);
    }
  };

  const isAppearance = async (ev: RawEvent | undefined, current: RawEvent): Promise<boolean> => {
    if (!ev || ev.batch !== current.batch || ev.kind !== "rename") return false;
    if (ev.dir === current.dir && ev.name === current.name) return false;
    return (await lstatOrUndefined(join(ev.dir, ev.name))) !== undefined;
  };

  const handle = async (ev: RawEvent): Promise<void> => {
    const watched = dirs.get(ev.dir);
    if (!watched) return;
    const path = join(ev.dir, ev.name);
    const st = await lstatOrUndefined(path);
    // inotify's own "the watched directory is gone" (DELETE_SELF/IGNORED) arrives as an
    // event named after the directory itself; drop the watch rather than report it.
    if (!st && ev.name === basename(ev.dir) && (await lstatOrUndefined(ev.dir)) === undefined) {
      unwatchTree(ev.dir);
      return;
    }
    if (ev.kind === "change") {
      if (!st && ev.name === basename(ev.dir)) return;
      emit(st && st.ctimeMs > st.mtimeMs ? EventType.CHMOD : EventType.WRITE, path);
      return;
    }
    if (!watched.known.has(ev.name)) {
      watched.known.add(ev.name);
      emit(EventType.CREATE, path);
      if (recursive && st?.isDirectory()) await addWatch(path, true);
      return;
    }
    const laterSameName = queue.some((q) => q.dir === ev.dir && q.name === ev.name);
    if (st && !laterSameName) {
      emit(EventType.CREATE, path);
      if (recursive && st.isDirectory()) {
        unwatchTree(path);
        await addWatch(path, false);
      }
      return;
    }
    watched.known.delete(ev.name);
    unwatchTree(path);
    emit((await isAppearance(queue[0], ev)) ? EventType.RENAME : EventType.REMOVE, path);
  };

  // Events are classified one at a time, in arrival order: each decision depends on the
  // known-name sets the previous ones left behind.
  const drain = async () => {
    if (draining) return;
    draining = true;
    try {
      while (!closed) {
        const ev = queue.shift();
        if (!ev) break;
        await handle(ev);
      }
    } catch (err) {
      fail(err instanceof Error ? err : new Error(String(err)));
    } finally {
      draining = false;
    }
  };

  const close = () => {
    if (closed) return;
    closed = true;
    for (const w of dirs.values()) w.watcher.close();
    dirs.clear();
    queue.length = 0;
  };

  try {
    await addWatch(root, false);
  } catch (err) {
    close();
    throw err;
  }
  return { close };
}
