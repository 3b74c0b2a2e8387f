import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { WrennError } from "@wrenn/shared";
import { MAX_SLOT } from "./slot-addresses.js";

/** On-disk shape of the lease file: slot number (as a string key) → owner (a sandbox id). */
interface LeaseFile {
  version: 1;
  leases: Record<string, string>;
}

/**
 * Hands out network slots (firstSlot..firstSlot+maxSlots-1), lowest free first. Agents sharing
 * one machine get disjoint ranges (the slot decides addresses), and their own name prefixes. Every change is written to disk
 * (tmp file, fsync, rename) before acquire()/release() resolves, so leases survive an agent
 * crash; operations are serialised, so two acquires never get the same slot. One allocator per
 * lease file: two processes sharing a file is not supported.
 */
export class SlotAllocator {
  private readonly leasesBySlot = new Map<number, string>();
  /** Slots found held by something else on the host → when to try them again (not persisted). */
  private readonly setAsideUntil = new Map<number, number>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private readonly maxSlots: number,
    private readonly firstSlot: number,
  ) {}

  /** Loads the lease file at `path` (a missing file means no leases). */
  static async create(path: string, maxSlots: number, firstSlot = 1): Promise<SlotAllocator> {
    if (!Number.isInteger(firstSlot) || firstSlot < 1 || firstSlot > MAX_SLOT) {
      throw new WrennError(
        "invalid_argument",
        `firstSlot must be an integer in 1..${MAX_SLOT}, got ${firstSlot}`,
      );
    }
    if (!Number.isInteger(maxSlots) || maxSlots < 1 || firstSlot + maxSlots - 1 > MAX_SLOT) {
      throw new WrennError(
        "invalid_argument",
        `maxSlots must be an integer in 1..${MAX_SLOT - firstSlot + 1} (first slot ${firstSlot}), got ${maxSlots}`,
      );
    }
    const allocator = new SlotAllocator(path, maxSlots, firstSlot);
    let text: string | undefined;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new WrennError("internal", `slot lease file ${path} is unreadable`, { cause: err });
      }
    }
    if (text !== undefined) {
      for (const [slot, owner] of parseLeaseFile(path, text)) allocator.leasesBySlot.set(slot, owner);
    }
    return allocator;
  }

  /** Leases the lowest free slot to `owner`; no_capacity when all are taken. */
  acquire(owner: string): Promise<number> {
    if (!owner) return Promise.reject(new WrennError("invalid_argument", "a slot lease needs an owner"));
    return this.serial(async () => {
      const now = Date.now();
      for (let slot = this.firstSlot; slot < this.firstSlot + this.maxSlots; slot++) {
        if (this.leasesBySlot.has(slot)) continue;
        if ((this.setAsideUntil.get(slot) ?? 0) > now) continue;
        this.setAsideUntil.delete(slot);
        this.leasesBySlot.set(slot, owner);
        try {
          await this.persist();
        } catch (err) {
          this.leasesBySlot.delete(slot);
          throw new WrennError("internal", `cannot record the lease of slot ${slot}`, { cause: err });
        }
        return slot;
      }
      const aside = [...this.setAsideUntil.values()].filter((until) => until > now).length;
      throw new WrennError(
        "no_capacity",
        `all ${this.maxSlots} network slots are in use` +
          (aside > 0 ? ` (${aside} of them held by something else on this host)` : ""),
      );
    });
  }

  /**
   * Releases `slot` and skips it in acquire() for `forMs`: its addresses turned out to be held
   * by something else on the host (an overlapping agent, or a crashed one's leftovers).
   */
  setAside(slot: number, forMs = 60_000): Promise<void> {
    this.setAsideUntil.set(slot, Date.now() + forMs);
    return this.release(slot);
  }

  /** Returns a slot; idempotent (releasing a free slot does nothing). */
  release(slot: number): Promise<void> {
    return this.serial(async () => {
      const owner = this.leasesBySlot.get(slot);
      if (owner === undefined) return;
      this.leasesBySlot.delete(slot);
      try {
        await this.persist();
      } catch (err) {
        this.leasesBySlot.set(slot, owner);
        throw new WrennError("internal", `cannot record the release of slot ${slot}`, { cause: err });
      }
    });
  }

  /** A snapshot of the leases: slot → owner, in slot order. */
  leases(): ReadonlyMap<number, string> {
    return new Map([...this.leasesBySlot].sort(([x], [y]) => x - y));
  }

  /** The slots leased to `owner` (normally one). */
  slotsOf(owner: string): number[] {
    return [...this.leasesBySlot].filter(([, o]) => o === owner).map(([s]) => s);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private async persist(): Promise<void> {
    const body: LeaseFile = {
      version: 1,
      leases: Object.fromEntries(
        [...this.leasesBySlot].sort(([x], [y]) => x - y).map(([s, o]) => [String(s), o]),
      ),
    };
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const file = await open(tmp, "w", 0o600);
    try {
      await file.writeFile(`${JSON.stringify(body, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}

function parseLeaseFile(path: string, text: string): Array<[number, string]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new WrennError("internal", `slot lease file ${path} is not valid JSON`, { cause: err });
  }
  const leases = (parsed as { leases?: unknown } | null)?.leases;
  if (typeof leases !== "object" || leases === null || Array.isArray(leases)) {
    throw new WrennError("internal", `slot lease file ${path} has no "leases" object`);
  }
  const out: Array<[number, string]> = [];
  for (const [key, owner] of Object.entries(leases)) {
    const slot = Number(key);
    if (!Number.isInteger(slot) || slot < 1 || slot > MAX_SLOT || typeof owner !== "string") {
      throw new WrennError(
        "internal",
        `slot lease file ${path} has an invalid lease ${key}: ${JSON.stringify(owner)}`,
      );
    }
    // Slots above a lowered maxSlots stay leased until released: their sandboxes still exist.
    out.push([slot, owner]);
  }
  return out;
}
