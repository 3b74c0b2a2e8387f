import { realpath, rename, rm, stat, statfs } from "node:fs/promises";
import { dirname } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  EventType,
  type Filesystem,
  type FilesystemEventSchema,
  type WatchDirResponseSchema,
} from "@wrenn/proto";
import type { EnvdContext } from "../context.js";
import { userForRequest } from "../request-user.js";
import type { LinuxUser } from "../users.js";
import { createDirWatcher, type DirWatchEvent, type DirWatcher } from "./dir-watcher.js";
import { ensureDirs } from "./ensure-dirs.js";
import { type EntryInit, entryInfo } from "./entry-info.js";
import { EventQueue } from "./event-queue.js";
import { isNotFound, toConnectError } from "./fs-errors.js";
import { listDir } from "./list-dir.js";
import { createOwnerNames } from "./owner-names.js";
import { expandAndResolve, InvalidPathError } from "./resolve-path.js";
import { WatcherRegistry } from "./watcher-registry.js";

type EventInit = MessageInitShape<typeof FilesystemEventSchema>;
type WatchResponseInit = MessageInitShape<typeof WatchDirResponseSchema>;

/** Pending events per watch before it is ended as too slow (bounds memory). */
const MAX_PENDING_EVENTS = 10_000;
/** Keepalive header the SDK sends on WatchDir, in seconds. */
const KEEPALIVE_HEADER = "keepalive-ping-interval";

/** NFS, CIFS, SMB, SMB2 and FUSE superblock magics: watching these is refused unless asked. */
const NETWORK_FS_MAGICS = new Set([0x6969, 0xff534d42, 0x517b, 0xfe534d42, 0x65735546]);

export function createFilesystemService(ctx: EnvdContext): ServiceImpl<typeof Filesystem> {
  const watchers = new WatcherRegistry<EventInit>();

  const resolve = (path: string, user: LinuxUser): string => {
    try {
      return expandAndResolve(path, user, ctx.state.defaultWorkdir);
    } catch (err) {
      if (err instanceof InvalidPathError) throw new ConnectError(err.message, Code.InvalidArgument);
      throw err;
    }
  };
  /** One entry with its metadata, as Stat, MakeDir, Move and watch events return it. */
  const describe = async (path: string, owners = createOwnerNames()): Promise<EntryInit> => {
    const entry = await entryInfo(path, owners);
    const metadata = await ctx.fileMetadata.readOne(path);
    return metadata ? { ...entry, metadata } : entry;
  };
  const requestContext = async (hctx: HandlerContext) =>
    userForRequest(hctx.requestHeader, ctx.state.defaultUser);

  /** Resolves and checks a directory to watch, as both watch flavours require. */
  const prepareWatch = async (
    hctx: HandlerContext,
    req: { path: string; allowNetworkMounts: boolean },
  ): Promise<string> => {
    const user = await requestContext(hctx);
    const dir = resolve(req.path, user);
    const info = await stat(dir).catch((err: unknown) => {
      throw isNotFound(err)
        ? new ConnectError(`path ${dir} not found`, Code.NotFound)
        : toConnectError(err, `error statting path ${dir}`);
    });
    if (!info.isDirectory()) throw new ConnectError(`path ${dir} not a directory`, Code.InvalidArgument);
    if (!req.allowNetworkMounts) {
      const fs = await statfs(dir).catch((err: unknown) => {
        throw toConnectError(err, "error checking mount status");
      });
      if (NETWORK_FS_MAGICS.has(fs.type)) {
        throw new ConnectError(`cannot watch path on network filesystem: ${dir}`, Code.InvalidArgument);
      }
    }
    return dir;
  };

  const startWatcher = async (
    dir: string,
    recursive: boolean,
    includeEntry: boolean,
    queue: EventQueue<EventInit>,
  ): Promise<DirWatcher> => {
    const owners = createOwnerNames();
    // Entries are looked up as events arrive, so keep them in order with a promise chain.
    let chain = Promise.resolve();
    const onEvent = (ev: DirWatchEvent) => {
      chain = chain.then(async () => queue.push(await toEvent(ev, includeEntry, (p) => describe(p, owners))));
    };
    try {
      return await createDirWatcher({
        root: dir,
        recursive,
        onEvent,
        onError: (err) => {
          chain = chain.then(() => queue.end(err));
        },
      });
    } catch (err) {
      throw toConnectError(err, `error adding path ${dir} to watcher`);
    }
  };

  return {
    async stat(req, hctx) {
      const path = resolve(req.path, await requestContext(hctx));
      return { entry: await describe(path) };
    },

    async makeDir(req, hctx) {
      const user = await requestContext(hctx);
      const path = resolve(req.path, user);
      const existing = await stat(path).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw toConnectError(err, "error getting file info");
      });
      if (existing?.isDirectory())
        throw new ConnectError(`directory already exists: ${path}`, Code.AlreadyExists);
      if (existing)
        throw new ConnectError(
          `path already exists but it is not a directory: ${path}`,
          Code.InvalidArgument,
        );
      await ensureDirs(path, user.uid, user.gid).catch((err: unknown) => {
        throw toConnectError(err, "error creating directory");
      });
      return { entry: await describe(path) };
    },

    async move(req, hctx) {
      const user = await requestContext(hctx);
      const source = resolve(req.source, user);
      const destination = resolve(req.destination, user);
      await ensureDirs(dirname(destination), user.uid, user.gid).catch((err: unknown) => {
        throw toConnectError(err, "error creating destination directory");
      });
      await rename(source, destination).catch((err: unknown) => {
        throw isNotFound(err)
          ? new ConnectError(`source file not found: ${source}`, Code.NotFound)
          : toConnectError(err, "error renaming");
      });
      return { entry: await describe(destination) };
    },

    async listDir(req, hctx) {
      const depth = req.depth === 0 ? 1 : req.depth;
      const requested = resolve(req.path, await requestContext(hctx));
      const resolved = await realpath(requested).catch((err: unknown) => {
        throw isNotFound(err)
          ? new ConnectError(`path not found: ${requested}`, Code.NotFound)
          : toConnectError(err, "error resolving symlink");
      });
      const info = await stat(resolved).catch((err: unknown) => {
        throw toConnectError(err, "directory not found");
      });
      if (!info.isDirectory())
        throw new ConnectError(`path is not a directory: ${requested}`, Code.InvalidArgument);
      return { entries: await listDir(requested, resolved, depth, createOwnerNames(), ctx.fileMetadata) };
    },

    async remove(req, hctx) {
      const path = resolve(req.path, await requestContext(hctx));
      // Like os.RemoveAll: removing what is not there succeeds.
      await rm(path, { recursive: true, force: true }).catch((err: unknown) => {
        throw toConnectError(err, "error removing file or directory");
      });
      return {};
    },

    async *watchDir(req, hctx): AsyncGenerator<WatchResponseInit> {
      const dir = await prepareWatch(hctx, req);
      const queue = new EventQueue<EventInit>(MAX_PENDING_EVENTS);
      const watcher = await startWatcher(dir, req.recursive, req.includeEntry, queue);
      try {
        yield { event: { case: "start", value: {} } };
        const keepaliveMs = keepaliveIntervalMs(hctx, ctx.config.keepaliveIntervalMs);
        for (;;) {
          const next = await queue.next(keepaliveMs, hctx.signal);
          if (next.kind === "timeout") {
            yield { event: { case: "keepalive", value: {} } };
          } else if (next.kind === "item") {
            yield { event: { case: "filesystem", value: next.item } };
          } else {
            if (next.error) throw new ConnectError(`watcher error: ${next.error.message}`, Code.Internal);
            return;
          }
        }
      } finally {
        // Runs when the client goes away too (the signal wakes the wait above).
        watcher.close();
      }
    },

    async createWatcher(req, hctx) {
      const dir = await prepareWatch(hctx, req);
      const queue = new EventQueue<EventInit>(MAX_PENDING_EVENTS);
      const watcher = await startWatcher(dir, req.recursive, req.includeEntry, queue);
      return { watcherId: watchers.add(watcher, queue) };
    },

    async getWatcherEvents(req) {
      return { events: watchers.take(req.watcherId) };
    },

    async removeWatcher(req) {
      watchers.remove(req.watcherId);
      return {};
    },
  };
}

async function toEvent(
  ev: DirWatchEvent,
  includeEntry: boolean,
  describe: (path: string) => Promise<EntryInit>,
): Promise<EventInit> {
  // Remove and rename name a path whose entry is gone; only the others may carry one.
  const carriesEntry =
    ev.type === EventType.CREATE || ev.type === EventType.WRITE || ev.type === EventType.CHMOD;
  const entry = includeEntry && carriesEntry ? await describe(ev.path).catch(() => undefined) : undefined;
  return { name: ev.name, type: ev.type, ...(entry ? { entry } : {}) };
}

function keepaliveIntervalMs(hctx: HandlerContext, fallbackMs: number): number {
  const seconds = Number.parseInt(hctx.requestHeader.get(KEEPALIVE_HEADER) ?? "", 10);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : fallbackMs;
}
