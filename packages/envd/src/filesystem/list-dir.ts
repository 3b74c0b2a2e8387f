import { readdir } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { FileType } from "@wrenn/proto";
import { type EntryInit, entryInfo } from "./entry-info.js";
import type { FileMetadataStore } from "./file-metadata.js";
import { isNotFound, toConnectError } from "./fs-errors.js";
import type { OwnerNames } from "./owner-names.js";

const SLASH = Buffer.from("/");

/** Names compare as bytes, like Go's filepath.WalkDir, so the order matches E2B's envd. */
function byteOrder(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

/**
 * Lists `resolvedDir` down to `depth` levels (1 = direct children), depth-first in byte
 * order, never descending through symlinks. Paths are reported under `requestedDir` (the
 * path as the client named it, before symlink resolution). Names are read as bytes so a
 * file whose name is not valid UTF-8 is still stat-ed correctly; it is reported with
 * U+FFFD in place of the bad bytes (protobuf strings must be UTF-8). Entries that vanish
 * mid-walk are skipped. Metadata is read once the walk is done, in batches.
 */
export async function listDir(
  requestedDir: string,
  resolvedDir: string,
  depth: number,
  owners: OwnerNames,
  metadataStore: FileMetadataStore,
): Promise<EntryInit[]> {
  const entries: EntryInit[] = [];
  const fsPaths: Buffer[] = [];
  const walk = async (fsDir: Buffer, shownDir: string, level: number): Promise<void> => {
    let names: Buffer[];
    try {
      names = await readdir(fsDir, { encoding: "buffer" });
    } catch (err) {
      if (level > 1 && isNotFound(err)) return;
      throw toConnectError(err, `error reading directory ${shownDir}`);
    }
    names.sort(byteOrder);
    for (const name of names) {
      const fsPath = Buffer.concat([fsDir, SLASH, name]);
      const shownPath = `${shownDir === "/" ? "" : shownDir}/${name.toString("utf8")}`;
      let entry: EntryInit;
      try {
        entry = await entryInfo(shownPath, owners, fsPath);
      } catch (err) {
        if (err instanceof ConnectError && err.code === Code.NotFound) continue;
        throw err;
      }
      entries.push(entry);
      fsPaths.push(fsPath);
      // Descend into real directories only (a symlink to a directory has type DIRECTORY
      // but a symlinkTarget), as WalkDir does.
      if (level < depth && entry.symlinkTarget === undefined && entry.type === FileType.DIRECTORY) {
        await walk(fsPath, shownPath, level + 1);
      }
    }
  };
  await walk(Buffer.from(resolvedDir), requestedDir.replace(/\/+$/, "") || "/", 1);
  const metadata = await metadataStore.read(fsPaths);
  return entries.map((entry, i) => {
    const found = metadata[i];
    return found ? { ...entry, metadata: found } : entry;
  });
}
