import { randomBytes } from "node:crypto";
import type { NetworkPolicy } from "@wrenn/shared/network-policy";
import { type SandboxLimits, validateEnvVars, validateResources, validateTimeout } from "./sandbox-limits.js";
import type { SandboxRecord, SandboxResources, TimeoutActionName } from "./sandbox-record.js";
import type { SnapshotRecord } from "./snapshot-store.js";
import type { InheritVolumes, VolumeMount } from "./volume-inheritance.js";

/** What a create asks for; everything unset takes the agent's defaults. */
export interface CreateSandboxInput {
  sandboxId?: string | undefined;
  /** The guest image to start from (a name under the images dir). */
  image: string;
  /** Unset sizes take the defaults; explicit zeros are rejected. */
  resources?:
    | { vcpus?: number | undefined; memoryMiB?: number | undefined; diskMiB?: number | undefined }
    | undefined;
  timeoutSec?: number | undefined;
  timeoutAction?: TimeoutActionName | undefined;
  envVars?: Record<string, string> | undefined;
  envdAccessToken?: string | undefined;
  metadata?: Record<string, string> | undefined;
  defaultUser?: string | undefined;
  defaultWorkdir?: string | undefined;
  /** Start from this named snapshot (its vCPUs and memory) instead of from `image`. */
  snapshot?: string | undefined;
  /** Volumes of this host to mount in the guest once it runs. */
  volumeMounts?: VolumeMount[] | undefined;
  /** The team creating it: a clone keeps its snapshot's volumes only where they are this team's. */
  teamId?: string | undefined;
  /**
   * Egress policy (normalised). Unset: a clone keeps its snapshot's, a sandbox from an image is
   * open; set: exactly it.
   */
  networkPolicy?: NetworkPolicy | undefined;
  /** Which of its snapshot's volumes a clone keeps; default "team". */
  inheritVolumes?: InheritVolumes | undefined;
}

/** A new sandbox's record, `pending` until its VM runs; a clone takes its snapshot's user, workdir and lineage. */
export function newSandboxRecord(args: {
  id: string;
  input: CreateSandboxInput;
  image: string;
  resources: SandboxResources;
  timeoutSec: number;
  envVars: Record<string, string>;
  source: SnapshotRecord | undefined;
  /** The source is an image snapshot, not one a user named (the record names no snapshot). */
  fromImageSnapshot?: boolean;
  defaultUser: string;
  runDir: string;
  createdAt: Date;
  /**
   * Every volume the sandbox mounts (a clone's: those inherited from its snapshot, then the
   * requested); default the input's.
   */
  volumeMounts?: readonly VolumeMount[] | undefined;
}): SandboxRecord {
  const { input, source, createdAt, timeoutSec } = args;
  const mounts = args.volumeMounts ?? input.volumeMounts ?? [];
  const policy = input.networkPolicy ?? (args.fromImageSnapshot ? undefined : source?.networkPolicy);
  return {
    id: args.id,
    image: args.image,
    state: "pending",
    resources: args.resources,
    createdAt: createdAt.toISOString(),
    timeoutSec,
    timeoutAction: input.timeoutAction ?? "pause",
    expiresAt: new Date(createdAt.getTime() + timeoutSec * 1000).toISOString(),
    metadata: input.metadata ?? {},
    envVars: args.envVars,
    envdAccessToken: input.envdAccessToken || randomBytes(24).toString("hex"),
    defaultUser: input.defaultUser || source?.defaultUser || args.defaultUser,
    defaultWorkdir: input.defaultWorkdir ?? source?.defaultWorkdir ?? "",
    runDir: args.runDir,
    ...(mounts.length ? { volumeMounts: mounts.map((m) => ({ ...m })) } : {}),
    ...(policy ? { networkPolicy: copyPolicy(policy) } : {}),
    ...(source
      ? {
          ...(args.fromImageSnapshot ? {} : { fromSnapshot: source.name }),
          memorySnapshot: source.memorySnapshot,
          dependsOn: [...source.dependsOn, source.id],
        }
      : {}),
  };
}

function copyPolicy(p: NetworkPolicy): NetworkPolicy {
  return { allowOut: [...p.allowOut], denyOut: [...p.denyOut] };
}

/**
 * A create's sizes, timeout and env vars with the agent's defaults applied, validated.
 * `snapshotSizes` decides the sizes of a create from a named snapshot (fixed by its VM).
 */
export function createSettings(
  input: CreateSandboxInput,
  options: { defaults: SandboxResources & { timeoutSec: number }; limits: SandboxLimits },
  snapshotSizes: ((requested: CreateSandboxInput["resources"]) => SandboxResources) | undefined,
): { resources: SandboxResources; timeoutSec: number; envVars: Record<string, string> } {
  const { defaults, limits } = options;
  const resources: SandboxResources = snapshotSizes
    ? snapshotSizes(input.resources)
    : {
        vcpus: input.resources?.vcpus ?? defaults.vcpus,
        memoryMiB: input.resources?.memoryMiB ?? defaults.memoryMiB,
        diskMiB: input.resources?.diskMiB ?? defaults.diskMiB,
      };
  validateResources(resources, limits);
  const timeoutSec = input.timeoutSec || defaults.timeoutSec;
  validateTimeout(timeoutSec, limits);
  const envVars = input.envVars ?? {};
  validateEnvVars(envVars);
  return { resources, timeoutSec, envVars };
}
