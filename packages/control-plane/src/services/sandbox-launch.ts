import { randomBytes } from "node:crypto";
import { TimeoutAction } from "@wrenn/proto";
import { newSandboxId, WrennError } from "@wrenn/shared";
import type { NetworkPolicy } from "@wrenn/shared/network-policy";
import { OPEN_POLICY } from "@wrenn/shared/network-policy";
import type { Principal } from "../auth/principal.js";
import type { HostRow, TemplateRow } from "../db/schema.js";
import type { HostAgentClient } from "../drivers/host-pool.js";
import { transitionSandbox } from "../lifecycle/sandbox-states.js";
import type { PlacementRequest } from "../scheduler/scheduler.js";
import { endpointOf } from "./host-endpoint.js";
import { rowFieldsFromAgent } from "./sandbox-info.js";
import { type SandboxNetworkInput, toAgentPolicy, trafficTokenFor } from "./sandbox-network.js";
import { resourcesFor } from "./sandbox-resources.js";
import type { ServiceDeps } from "./service-deps.js";
import type { ResolvedVolumeMounts } from "./volumes-service.js";

/** What a sandbox starts from: an image, or a snapshot some hosts hold. */
export interface StartPoint {
  /** The template row (sandboxes.snapshot_id) for snapshot and built templates. */
  templateId: string | null;
  /** The image of the lineage. */
  image: string;
  /** A snapshot or built template: its sizes are fixed. */
  sized?: Pick<TemplateRow, "name" | "vcpus" | "memory_mib" | "disk_mib"> | undefined;
  /** Only these hosts may take it (a template build continuing on one host). */
  hostIds?: readonly string[] | undefined;
  /** The snapshot's name on each host holding it; absent: boot (restore) the image. */
  snapshotOn?: ReadonlyMap<string, string> | undefined;
  /** Makes the snapshot on a host that lacks it (a built template builds there); absent: pinned. */
  replicate?: ((hostId: string) => Promise<string>) | undefined;
  env?: Record<string, string> | undefined;
  defaultUser?: string | null | undefined;
  defaultWorkdir?: string | null | undefined;
  /** Set for a template build's VM. */
  buildId?: string | undefined;
  /** A built template's build the sandbox starts from (its start command is in its memory). */
  templateBuildId?: string | undefined;
  /** A snapshot template's policy: the sandbox keeps it unless its create sets one. */
  networkPolicy?: NetworkPolicy | null | undefined;
}

export interface LaunchInput {
  template: string;
  vcpus?: number | undefined;
  memoryMiB?: number | undefined;
  diskMiB?: number | undefined;
  timeoutSec: number;
  onTimeout: "destroy" | "pause";
  /** False: the timeout's pause keeps only the disk (default true). */
  onTimeoutKeepMemory?: boolean | undefined;
  autoResume: boolean;
  env: Record<string, string>;
  metadata: Record<string, string>;
  /** Volumes to mount (resolved in the caller's team): the sandbox runs on their host. */
  volumeMounts?: ResolvedVolumeMounts | undefined;
  network?: SandboxNetworkInput | undefined;
  /** Place only on a host whose tags include all of these. */
  hostTags?: Record<string, string> | undefined;
}

/** Agent errors that mean the request itself was wrong: nothing of it is kept. */
const REJECTED_INPUT = new Set(["invalid_argument", "not_found", "failed_precondition"]);

/**
 * Places and creates one sandbox: a pending row reserves the host's capacity (written in the
 * placement's transaction), the snapshot is made on that host if it lacks it, then the agent
 * creates the VM. A failure leaves no row for a refused request and an `error` row (and no
 * VM) for a failed one.
 */
export async function launchSandbox(
  deps: ServiceDeps,
  principal: Principal,
  start: StartPoint,
  input: LaunchInput,
): Promise<string> {
  const { db, scheduler, events } = deps;
  const resources = resourcesFor(deps.config, input, start.sized);
  const id = newSandboxId();
  const envdAccessToken = randomBytes(24).toString("hex");
  const policy = input.network?.policy;
  const trafficAccessToken = trafficTokenFor(input.network?.allowPublicTraffic);
  const base: PlacementRequest = {
    teamId: principal.teamId,
    resources,
    ...(input.hostTags ? { requiredTags: input.hostTags } : {}),
  };
  const host = await db.transaction().execute(async (tx) => {
    const volumeHost = input.volumeMounts?.hostId;
    if (volumeHost && start.hostIds && !start.hostIds.includes(volumeHost)) {
      throw new WrennError("invalid_argument", "the volumes live on a host this template cannot run on");
    }
    const restrict = volumeHost ? [volumeHost] : start.hostIds;
    const anyWithImage: PlacementRequest = {
      ...base,
      baseTemplate: start.image,
      ...(restrict ? { allowedHostIds: restrict } : {}),
    };
    let chosen: HostRow;
    if (!start.snapshotOn) chosen = await scheduler.place(tx, anyWithImage);
    else {
      const holders = [...start.snapshotOn.keys()].filter((h) => !restrict || restrict.includes(h));
      try {
        if (holders.length === 0) throw new WrennError("no_capacity", "no host holding this template is up");
        chosen = await scheduler.place(tx, { ...base, allowedHostIds: holders });
      } catch (err) {
        if (!start.replicate || WrennError.from(err).code !== "no_capacity") throw err;
        chosen = await scheduler.place(tx, anyWithImage);
      }
    }
    await tx
      .insertInto("sandboxes")
      .values({
        id,
        team_id: principal.teamId,
        host_id: chosen.id,
        template: start.templateId ? start.image : input.template,
        snapshot_id: start.templateId,
        state: "pending",
        vcpus: resources.vcpus,
        memory_mib: resources.memoryMiB,
        disk_mib: resources.diskMiB,
        timeout_sec: input.timeoutSec,
        metadata: JSON.stringify(input.metadata),
        envd_access_token: envdAccessToken,
        host_ip: null,
        error: null,
        expires_at: null,
        stopped_at: null,
        on_timeout: input.onTimeout,
        on_timeout_keep_memory: input.onTimeoutKeepMemory ?? true,
        auto_resume: input.autoResume,
        // The agent reports the policy in force once the VM runs; until then, what it will be.
        network_policy: JSON.stringify(policy ?? start.networkPolicy ?? OPEN_POLICY),
        traffic_access_token: trafficAccessToken,
        mask_request_host: input.network?.maskRequestHost ?? null,
        ...(start.buildId ? { build_id: start.buildId } : {}),
        ...(start.templateBuildId ? { template_build_id: start.templateBuildId } : {}),
      })
      .execute();
    return chosen;
  });
  if (!start.buildId) {
    events.publish("sandbox.created", principal.teamId, {
      sandbox_id: id,
      host_id: host.id,
      template: input.template,
    });
  }
  let snapshot = "";
  let calledAgent = false;
  let info: Awaited<ReturnType<HostAgentClient["createSandbox"]>>;
  try {
    if (start.snapshotOn) {
      const held = start.snapshotOn.get(host.id);
      if (held) snapshot = held;
      else if (start.replicate) snapshot = await start.replicate(host.id);
      else throw new WrennError("no_capacity", "the host holding this template is not up");
    }
    calledAgent = true;
    info = await deps.hosts.call(endpointOf(host), (c) =>
      c.createSandbox({
        sandboxId: id,
        image: start.image,
        snapshot,
        resources: { vcpus: resources.vcpus, memoryMib: resources.memoryMiB, diskMib: resources.diskMiB },
        timeoutSec: input.timeoutSec,
        timeoutAction: timeoutActionFor(input),
        envVars: { ...(start.env ?? {}), ...input.env },
        envdAccessToken,
        metadata: input.metadata,
        defaultUser: start.defaultUser ?? "",
        defaultWorkdir: start.defaultWorkdir ?? "",
        volumeMounts: input.volumeMounts?.mounts ?? [],
        teamId: principal.teamId,
        ...(policy ? { networkPolicy: toAgentPolicy(policy) } : {}),
      }),
    );
  } catch (err) {
    const error = WrennError.from(err);
    if (!calledAgent || REJECTED_INPUT.has(error.code)) {
      await db.deleteFrom("sandboxes").where("id", "=", id).where("state", "=", "pending").execute();
      throw error;
    }
    await transitionSandbox(db, id, ["pending"], "error", { error: error.message }).catch(() => undefined);
    if (!start.buildId)
      events.publish("sandbox.error", principal.teamId, { sandbox_id: id, error: error.message });
    // The agent may have got part of the way: make sure nothing of it is left running.
    await deps.hosts
      .call(endpointOf(host), (c) => c.destroySandbox({ sandboxId: id }))
      .catch(() => undefined);
    throw error;
  }
  await transitionSandbox(db, id, ["pending"], "running", rowFieldsFromAgent(info.sandbox));
  if (!start.buildId)
    events.publish("sandbox.running", principal.teamId, { sandbox_id: id, host_id: host.id });
  return id;
}

/** The agent's timeout action for a launch's `onTimeout` and `onTimeoutKeepMemory`. */
export function timeoutActionFor(
  input: Pick<LaunchInput, "onTimeout" | "onTimeoutKeepMemory">,
): TimeoutAction {
  if (input.onTimeout === "destroy") return TimeoutAction.DESTROY;
  return input.onTimeoutKeepMemory === false ? TimeoutAction.PAUSE_FILESYSTEM : TimeoutAction.PAUSE;
}
