import { type Logger, WrennError } from "@wrenn/shared";
import type { CreateSandboxInput } from "./create-input.js";
import type { SandboxVolumeAccess } from "./sandbox-deps.js";
import type { SnapshotRecord } from "./snapshot-store.js";

export interface VolumeMount {
  volumeId: string;
  path: string;
}

/** Whose inherited volumes a clone may keep. */
export type InheritVolumes =
  /** Only those of the creating team (a snapshot may be used by another team than its source's). */
  | "team"
  /** Every one that still exists (a fork: the clone has its source's owner). */
  | "all";

/**
 * The volume mounts of a sandbox created from a snapshot: first those frozen in the snapshot's
 * guest that the clone may use, then those asked for at create (envd mounts only these). An
 * inherited mount is kept when its volume exists on this host (`ownerOf` answers its team) and,
 * unless `inherit` is "all", belongs to `teamId`; the others are returned as dropped (the guest
 * still has them mounted, and every access fails as for a deleted volume). A requested path that
 * the snapshot's guest already mounts is refused: the frozen mount is there.
 */
export function cloneVolumeMounts(args: {
  inherited: readonly VolumeMount[];
  requested: readonly VolumeMount[];
  ownerOf: (volumeId: string) => string | undefined;
  teamId: string | undefined;
  inherit: InheritVolumes;
}): { mounts: VolumeMount[]; dropped: VolumeMount[] } {
  const { inherited, requested, ownerOf, teamId, inherit } = args;
  const frozenPaths = new Set(inherited.map((m) => m.path));
  for (const m of requested) {
    if (frozenPaths.has(m.path)) {
      throw new WrennError(
        "invalid_argument",
        `${m.path} already has a volume mounted in the snapshot this sandbox starts from`,
      );
    }
  }
  const mounts: VolumeMount[] = [];
  const dropped: VolumeMount[] = [];
  for (const m of inherited) {
    const owner = ownerOf(m.volumeId);
    const allowed = owner !== undefined && (inherit === "all" || (teamId !== undefined && owner === teamId));
    (allowed ? mounts : dropped).push({ volumeId: m.volumeId, path: m.path });
  }
  return { mounts: [...mounts, ...requested.map((m) => ({ volumeId: m.volumeId, path: m.path }))], dropped };
}

/**
 * A new sandbox's volume mounts: those asked for, after (for a clone) those frozen in its
 * snapshot's guest that it may keep (see cloneVolumeMounts); the dropped ones are logged.
 */
export function newSandboxVolumeMounts(args: {
  id: string;
  input: CreateSandboxInput;
  source: SnapshotRecord | undefined;
  volumes: Pick<SandboxVolumeAccess, "ownerOf"> | undefined;
  logger: Logger;
}): VolumeMount[] {
  const { id, input, source, volumes } = args;
  const requested = input.volumeMounts ?? [];
  if (!source?.volumeMounts?.length) return requested;
  const { mounts, dropped } = cloneVolumeMounts({
    inherited: source.volumeMounts,
    requested,
    ownerOf: (volumeId) => volumes?.ownerOf(volumeId),
    teamId: input.teamId || undefined,
    inherit: input.inheritVolumes ?? "team",
  });
  if (dropped.length > 0) {
    args.logger.warn("snapshot volumes not granted to the new sandbox (not its team's, or gone)", {
      sandbox: id,
      snapshot: source.name,
      team: input.teamId,
      volumes: dropped.map((m) => m.volumeId),
    });
  }
  return mounts;
}
