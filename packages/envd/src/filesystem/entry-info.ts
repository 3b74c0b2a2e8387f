import type { BigIntStats } from "node:fs";
import { lstat, realpath, stat } from "node:fs/promises";
import { basename } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type EntryInfoSchema, FileType } from "@wrenn/proto";
import { goPermissionsString } from "./file-mode.js";
import { toConnectError } from "./fs-errors.js";
import type { OwnerNames } from "./owner-names.js";

export type EntryInit = MessageInitShape<typeof EntryInfoSchema>;

function fileTypeOf(st: { isFile(): boolean; isDirectory(): boolean }): FileType {
  if (st.isFile()) return FileType.FILE;
  if (st.isDirectory()) return FileType.DIRECTORY;
  return FileType.UNSPECIFIED;
}

/**
 * Describes one path without following it, as E2B's envd does: a symlink reports its
 * fully resolved target in `symlinkTarget` and the target's type and permission bits
 * (a dangling link has type UNSPECIFIED, which the SDK's list() skips); `permissions`
 * is the link's own lstat mode string. Missing paths throw NotFound.
 */
export async function entryInfo(
  path: string,
  owners: OwnerNames,
  /** The bytes to use for syscalls, when the name is not valid UTF-8 and `path` is only its rendering. */
  fsPath: string | Buffer = path,
): Promise<EntryInit> {
  let st: BigIntStats;
  try {
    st = await lstat(fsPath, { bigint: true });
  } catch (err) {
    throw toConnectError(err, "file not found");
  }
  const lmode = Number(st.mode);
  let type = fileTypeOf(st);
  let mode = lmode & 0o777;
  let symlinkTarget: string | undefined;
  if (st.isSymbolicLink()) {
    symlinkTarget = await realpath(fsPath).then(
      (p) => p,
      () => path,
    );
    const target = await stat(fsPath).catch(() => undefined);
    type = target ? fileTypeOf(target) : FileType.UNSPECIFIED;
    mode = target ? target.mode & 0o777 : 0;
  }
  const mtimeNs = st.mtimeNs;
  return {
    name: basename(path),
    type,
    path,
    size: st.size,
    mode,
    permissions: goPermissionsString(lmode),
    owner: await owners.user(Number(st.uid)),
    group: await owners.group(Number(st.gid)),
    modifiedTime:
      mtimeNs === 0n
        ? undefined
        : { seconds: mtimeNs / 1_000_000_000n, nanos: Number(mtimeNs % 1_000_000_000n) },
    ...(symlinkTarget !== undefined ? { symlinkTarget } : {}),
  };
}
