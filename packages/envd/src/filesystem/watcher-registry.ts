import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { DirWatcher } from "./dir-watcher.js";
import type { EventQueue } from "./event-queue.js";

interface PolledWatcher<T> {
  watcher: DirWatcher;
  queue: EventQueue<T>;
}

/** Watchers created with CreateWatcher and polled with GetWatcherEvents, by id. */
export class WatcherRegistry<T> {
  private readonly watchers = new Map<string, PolledWatcher<T>>();

  add(watcher: DirWatcher, queue: EventQueue<T>): string {
    // E2B's ids are "w" + a random id; any unguessable string works for the SDK.
    const id = `w${randomBytes(12).toString("hex")}`;
    this.watchers.set(id, { watcher, queue });
    return id;
  }

  /** Events gathered since the last call; a watcher that failed reports its error. */
  take(id: string): T[] {
    const entry = this.get(id);
    try {
      return entry.queue.drain();
    } catch (err) {
      throw new ConnectError(
        `watcher error: ${(err as Error).message}`,
        Code.Internal,
        undefined,
        undefined,
        err,
      );
    }
  }

  remove(id: string): void {
    const entry = this.get(id);
    entry.watcher.close();
    this.watchers.delete(id);
  }

  private get(id: string): PolledWatcher<T> {
    const entry = this.watchers.get(id);
    if (!entry) throw new ConnectError(`watcher with id ${id} not found`, Code.NotFound);
    return entry;
  }
}
