import { Readable } from "node:stream";
import { type BuildSpec, BuildSpecSchema, type BuildStep } from "@wrenn/api";
import type { GuestClient } from "@wrenn/guest-client";
import { randomId, WrennError } from "@wrenn/shared";
import { type Principal, SYSTEM_ACTOR } from "../auth/principal.js";
import type { SandboxRow, TemplateBuildRow } from "../db/schema.js";
import { endpointOf } from "../services/host-endpoint.js";
import type { LaunchInput, StartPoint } from "../services/sandbox-launch.js";
import type { SandboxesService } from "../services/sandboxes-service.js";
import type { ServiceDeps } from "../services/service-deps.js";
import {
  type BuildContext,
  contexts,
  copyCommand,
  cwdOf,
  ensureUserCommand,
  resolveDest,
  resolveWorkdir,
  workdirCommand,
} from "./build-context.js";
import type { StepLog } from "./build-log.js";
import { BuildFailure } from "./build-step-error.js";
import { check, runLogged } from "./guest-commands.js";
import { NO_READY_CHECK_WAIT_MS } from "./start-command.js";
import { type BaseIdentity, baseKey, changesVm, firstStepToRun, stepKeys } from "./step-keys.js";
import type { TemplateFiles } from "./template-files.js";

/** Where a build starts before any step: the image, or the parent template's build. */
export interface BuildParent {
  start: StartPoint;
  identity: BaseIdentity;
}

export interface BuildOutcome {
  hostId: string;
  agentName: string;
  stepKeys: string[];
  stepsCached: number;
  context: BuildContext;
}

/** A team's builds act as the system, on the team's behalf. */
export function buildPrincipal(teamId: string): Principal {
  return { teamId, isAdmin: false, actor: SYSTEM_ACTOR };
}

export function stepLabel(step: BuildStep): string {
  switch (step.type) {
    case "run":
      return `RUN ${step.command}${step.user ? ` (as ${step.user})` : ""}`;
    case "copy":
      return `COPY ${step.src} ${step.dest}`;
    case "env":
      return `ENV ${Object.keys(step.vars).join(" ")}`;
    case "workdir":
      return `WORKDIR ${step.path}`;
    case "user":
      return `USER ${step.name}`;
  }
}

/**
 * Runs one build on one host: a VM from the deepest cached step (or the parent), each
 * remaining step in it through envd, a snapshot after each step that changes the VM (the step
 * cache), then the start command, the ready check and the build's own snapshot. The VM is
 * destroyed whatever happens; what was cached stays cached.
 */
export class BuildRunner {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly sandboxes: SandboxesService,
    private readonly files: TemplateFiles,
  ) {}

  async run(
    build: TemplateBuildRow,
    parent: BuildParent,
    log: StepLog,
    options: { onlyHostId?: string } = {},
  ): Promise<BuildOutcome> {
    const spec: BuildSpec = BuildSpecSchema.parse(build.spec);
    const keys = stepKeys(baseKey(parent.identity), spec.steps);
    const { before, final } = contexts(spec.steps);
    const principal = buildPrincipal(build.team_id);
    const { vm, first } = await this.startVm(principal, build, spec, keys, parent, options.onlyHostId);
    const total = spec.steps.length;
    try {
      if (first > 0) await log.info("", `steps 1-${first} cached on host ${vm.host_id}`);
      const { guest } = await this.sandboxes.guestFor(vm);
      for (let i = first; i < total; i++) {
        const step = spec.steps[i] as BuildStep;
        const label = String(i + 1);
        await log.info(label, `[${i + 1}/${total}] ${stepLabel(step)}`);
        await this.runStep(guest, build, step, before[i] as BuildContext, log, label);
        if (changesVm(step)) await this.cacheStep(vm, keys[i] as string);
      }
      await this.finish(guest, spec, final, log);
      const agentName = `b-${build.id}`;
      await log.info("snapshot", "taking the template's snapshot");
      await this.snapshot(vm, agentName, true);
      await this.deps.db
        .insertInto("template_build_hosts")
        .values({ build_id: build.id, host_id: vm.host_id ?? "", agent_name: agentName })
        .onConflict((oc) => oc.columns(["build_id", "host_id"]).doUpdateSet({ agent_name: agentName }))
        .execute();
      return { hostId: vm.host_id ?? "", agentName, stepKeys: keys, stepsCached: first, context: final };
    } finally {
      await this.sandboxes.destroy(principal, vm.id).catch((err: unknown) => {
        this.deps.logger.warn("build VM not destroyed", {
          sandbox: vm.id,
          error: WrennError.from(err).message,
        });
      });
    }
  }

  /**
   * A VM to build in: hosts holding the deepest cached step first, then the parent. Hosts
   * without room are passed over for the next best start.
   */
  private async startVm(
    principal: Principal,
    build: TemplateBuildRow,
    spec: BuildSpec,
    keys: string[],
    parent: BuildParent,
    onlyHostId: string | undefined,
  ): Promise<{ vm: SandboxRow; first: number }> {
    const cached = spec.force ? [] : await this.cachedOnUpHosts(keys, onlyHostId);
    const attempts: { start: StartPoint; first: number }[] = [];
    const depthOf = (rows: typeof cached) =>
      firstStepToRun(spec.steps, keys, (k) => rows.some((r) => r.key === k), spec.force);
    const byHost = new Map<string, typeof cached>();
    for (const row of cached) byHost.set(row.host_id, [...(byHost.get(row.host_id) ?? []), row]);
    const groups = new Map<number, Map<string, string>>();
    for (const [hostId, rows] of byHost) {
      const { start, fromKey } = depthOf(rows);
      const row = rows.find((r) => r.key === fromKey);
      if (start === 0 || !row) continue;
      const group = groups.get(start) ?? new Map<string, string>();
      group.set(hostId, row.agent_name);
      groups.set(start, group);
    }
    for (const [first, snapshotOn] of [...groups].sort(([a], [b]) => b - a)) {
      attempts.push({
        start: { ...parent.start, snapshotOn, replicate: undefined, buildId: build.id },
        first,
      });
    }
    attempts.push({
      start: { ...parent.start, buildId: build.id, ...(onlyHostId ? { hostIds: [onlyHostId] } : {}) },
      first: 0,
    });
    const input: LaunchInput = {
      template: `build ${build.id}`,
      vcpus: build.vcpus,
      memoryMiB: build.memory_mib,
      diskMiB: build.disk_mib,
      timeoutSec: this.deps.config.maxTimeoutSec,
      onTimeout: "destroy",
      autoResume: false,
      env: {},
      metadata: {},
    };
    let lastError: unknown;
    for (const attempt of attempts) {
      try {
        const sized = attempt.start.sized ? { ...attempt.start.sized, disk_mib: build.disk_mib } : undefined;
        const vm = await this.sandboxes.createBuildVm(principal, { ...attempt.start, sized }, input);
        await this.deps.db
          .updateTable("template_builds")
          .set({ host_id: vm.host_id, sandbox_id: vm.id })
          .where("id", "=", build.id)
          .execute();
        if (attempt.first > 0) {
          await this.deps.db
            .updateTable("template_step_cache")
            .set({ used_at: this.deps.now() })
            .where("key", "in", keys.slice(0, attempt.first))
            .where("host_id", "=", vm.host_id ?? "")
            .execute();
        }
        return { vm, first: attempt.first };
      } catch (err) {
        lastError = err;
        if (WrennError.from(err).code !== "no_capacity") throw err;
      }
    }
    throw lastError;
  }

  private async cachedOnUpHosts(keys: string[], onlyHostId: string | undefined) {
    if (keys.length === 0) return [];
    let query = this.deps.db
      .selectFrom("template_step_cache")
      .innerJoin("hosts", "hosts.id", "template_step_cache.host_id")
      .select(["template_step_cache.host_id", "template_step_cache.key", "template_step_cache.agent_name"])
      .where("template_step_cache.key", "in", keys)
      .where("hosts.state", "=", "up");
    if (onlyHostId) query = query.where("template_step_cache.host_id", "=", onlyHostId);
    return query.execute();
  }

  private async runStep(
    guest: GuestClient,
    build: TemplateBuildRow,
    step: BuildStep,
    ctx: BuildContext,
    log: StepLog,
    label: string,
  ): Promise<void> {
    const timeoutMs = this.deps.config.buildStepTimeoutSec * 1000;
    const asRoot = (command: string) => ({ command, user: "root", envs: {} });
    switch (step.type) {
      case "env":
        return;
      case "run":
        return runLogged(
          guest,
          { command: step.command, envs: ctx.env, cwd: cwdOf(ctx), user: step.user ?? ctx.user },
          log,
          label,
          stepLabel(step),
          timeoutMs,
        );
      case "user":
        return runLogged(guest, asRoot(ensureUserCommand(step.name)), log, label, stepLabel(step), timeoutMs);
      case "workdir": {
        const path = resolveWorkdir(ctx, step.path);
        return runLogged(
          guest,
          asRoot(workdirCommand(path, ctx.user)),
          log,
          label,
          stepLabel(step),
          timeoutMs,
        );
      }
      case "copy": {
        if (!(await this.files.present(build.team_id, step.files_hash))) {
          throw new BuildFailure(
            label,
            `step ${label} (${stepLabel(step)}): its files (${step.files_hash}) were never uploaded`,
          );
        }
        const archive = `/var/tmp/.wrenn-copy-${randomId(12)}`;
        const body = Readable.toWeb(
          this.files.open(build.team_id, step.files_hash),
        ) as ReadableStream<Uint8Array>;
        await guest.writeFile(archive, body, "root");
        const command = copyCommand({
          archive,
          src: step.src,
          dest: resolveDest(ctx, step.dest),
          owner: step.user ?? ctx.user,
          mode: step.mode,
        });
        return runLogged(guest, asRoot(command), log, label, stepLabel(step), timeoutMs);
      }
    }
  }

  /** Starts the start command and waits for the ready check (or a short settle without one). */
  private async finish(guest: GuestClient, spec: BuildSpec, ctx: BuildContext, log: StepLog): Promise<void> {
    const launch = (command: string) => ({ command, envs: ctx.env, cwd: cwdOf(ctx), user: ctx.user });
    if (spec.start_cmd) {
      await log.info("start", `starting: ${spec.start_cmd}`);
      const pid = await guest.startBackground(launch(spec.start_cmd), "start_cmd");
      await log.info("start", `start command running (pid ${pid})`);
    }
    if (spec.ready_cmd) {
      await log.info("ready", `waiting for: ${spec.ready_cmd}`);
      const deadline = Date.now() + spec.ready_timeout_sec * 1000;
      while (!(await check(guest, launch(spec.ready_cmd), 10_000))) {
        if (Date.now() > deadline) {
          throw new BuildFailure(
            "ready",
            `the ready check (${spec.ready_cmd}) did not pass within ${spec.ready_timeout_sec} s`,
          );
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
      await log.info("ready", "ready check passed");
    } else if (spec.start_cmd) {
      await new Promise((r) => setTimeout(r, NO_READY_CHECK_WAIT_MS));
    }
  }

  /** Records the VM's state after a step as a cache point on its host. */
  private async cacheStep(vm: SandboxRow, key: string): Promise<void> {
    const agentName = `c-${key}`;
    await this.snapshot(vm, agentName, false);
    await this.deps.db
      .insertInto("template_step_cache")
      .values({ host_id: vm.host_id ?? "", key, agent_name: agentName })
      .onConflict((oc) => oc.columns(["host_id", "key"]).doUpdateSet({ used_at: this.deps.now() }))
      .execute();
  }

  private async snapshot(vm: SandboxRow, name: string, leavePaused: boolean): Promise<void> {
    const host = await this.deps.db
      .selectFrom("hosts")
      .selectAll()
      .where("id", "=", vm.host_id ?? "")
      .executeTakeFirstOrThrow();
    try {
      await this.deps.hosts.call(endpointOf(host), (c) =>
        c.createSnapshot({ sandboxId: vm.id, name, leavePaused }),
      );
    } catch (err) {
      // The same key on the same host is the same state: a snapshot left by an earlier run serves.
      if (WrennError.from(err).code !== "already_exists") throw err;
    }
  }
}

export type { BaseIdentity };
