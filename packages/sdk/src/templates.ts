import type { BuildLogsView, BuildView, TemplateBuildBody, TemplateView } from "@wrenn/api";
import { ApiClient, apiPath } from "./api-client.js";
import { WrennBuildError, WrennConfigError } from "./errors.js";
import type { ClientOptions } from "./sandbox.js";
import {
  type BuildInfo,
  type BuildLogEntry,
  type BuildLogPage,
  buildInfoFromWire,
  buildLogEntryFromWire,
  type TemplateInfo,
  templateInfoFromWire,
} from "./template-types.js";

/** One step of a template build, run in order in the build VM. */
export type TemplateStep =
  /** A bash command line, as `user` (default: the latest `user` step's, "user" at first). */
  | { type: "run"; command: string; user?: string }
  /**
   * Copies `src` into the VM at `dest`. With `filesHash` (an uploaded archive holding `src`)
   * it is sent as is; without, `src` is a local path packed and uploaded first (Node: relative
   * to `contextDir`, see `TemplateBuildOptions`).
   */
  | { type: "copy"; src: string; dest: string; user?: string; mode?: string; filesHash?: string }
  | { type: "env"; vars: Record<string, string> }
  | { type: "workdir"; path: string }
  | { type: "user"; name: string };

/** What to build: a base, steps, and a start command whose process runs in every sandbox made from it. */
export interface TemplateSpec {
  name: string;
  /** An image (default `{ image: "base" }`) or another template to build on. */
  from?: { image: string } | { template: string };
  steps?: TemplateStep[];
  /** Started before the snapshot, as the final user in the final workdir. */
  startCmd?: string;
  /** Retried every second until it exits 0 (or `readyTimeoutSec` passes); then the snapshot is taken. */
  readyCmd?: string;
  readyTimeoutSec?: number;
  /** Run every step again, ignoring the step cache. */
  force?: boolean;
  /** Tags the finished build gets besides "latest". */
  tags?: string[];
  vcpus?: number;
  memoryMiB?: number;
  diskMiB?: number;
}

/** A copy step's archive: a tar.gz holding `src` under its own path, named by its sha256. */
export interface CopyArchive {
  hash: string;
  body: Uint8Array;
  /** The source's path inside the archive (the copy step's `src` as sent). */
  src: string;
}

/** Packs a copy step's local `src` (relative to `contextDir`) into its archive. */
export type PackCopySource = (src: string, contextDir: string | undefined) => Promise<CopyArchive>;

export interface TemplateBuildOptions extends ClientOptions {
  /** Each log entry as it arrives (the log is polled every `pollMs`). */
  onLog?: (entry: BuildLogEntry) => void;
  /** Each copy step's archive: whether it had to be uploaded or the server already had it. */
  onFiles?: (info: { src: string; hash: string; bytes: number; uploaded: boolean }) => void;
  /** Where local copy sources are read from (Node: default the working directory). */
  contextDir?: string;
  /** Packs local copy sources; under Node the default uses the system `tar`. Browsers pass `filesHash`. */
  packCopySource?: PackCopySource;
  /** How often the log is polled, default 1000 ms. */
  pollMs?: number;
  signal?: AbortSignal;
}

let defaultPacker: PackCopySource | undefined;

/** The packer used when a build's options name none; set by the Node entry (`index.node.ts`). */
export function setDefaultCopyPacker(packer: PackCopySource | undefined): void {
  defaultPacker = packer;
}

async function clientFrom(options: ClientOptions): Promise<ApiClient> {
  return options.client ?? ApiClient.create(options);
}

/** Whether the server holds the archive with this sha256. */
async function filesPresent(hash: string, options: ClientOptions = {}): Promise<boolean> {
  const api = await clientFrom(options);
  return (await api.json<{ present: boolean }>("GET", apiPath("template-files", hash))).present;
}

/** Uploads a copy step's archive (tar or tar.gz) under its sha256. */
async function uploadFiles(
  archive: Pick<CopyArchive, "hash" | "body">,
  options: ClientOptions = {},
): Promise<void> {
  const api = await clientFrom(options);
  await api.json("PUT", apiPath("template-files", archive.hash), { body: archive.body, timeoutMs: 0 });
}

/** The wire body: local copy sources packed and uploaded (when missing) first. */
async function wireBody(api: ApiClient, spec: TemplateSpec, options: TemplateBuildOptions) {
  const steps: TemplateBuildBody["steps"] = [];
  for (const step of spec.steps ?? []) {
    if (step.type !== "copy") {
      steps.push(step);
      continue;
    }
    let hash = step.filesHash;
    let src = step.src;
    if (hash === undefined) {
      const pack = options.packCopySource ?? defaultPacker;
      if (!pack) {
        throw new WrennConfigError(
          `copy step ${JSON.stringify(step.src)} has no filesHash, and nothing here can pack local files (pass packCopySource, or use Node)`,
        );
      }
      const archive = await pack(step.src, options.contextDir);
      const present = await filesPresent(archive.hash, { client: api });
      if (!present) await uploadFiles(archive, { client: api });
      options.onFiles?.({
        src: step.src,
        hash: archive.hash,
        bytes: archive.body.length,
        uploaded: !present,
      });
      hash = archive.hash;
      src = archive.src;
    }
    steps.push({
      type: "copy",
      files_hash: hash,
      src,
      dest: step.dest,
      ...(step.user !== undefined ? { user: step.user } : {}),
      ...(step.mode !== undefined ? { mode: step.mode } : {}),
    });
  }
  return {
    name: spec.name,
    from: spec.from,
    steps,
    start_cmd: spec.startCmd,
    ready_cmd: spec.readyCmd,
    ready_timeout_sec: spec.readyTimeoutSec,
    force: spec.force,
    tags: spec.tags,
    vcpus: spec.vcpus,
    memory_mb: spec.memoryMiB,
    disk_mb: spec.diskMiB,
  } satisfies TemplateBuildBody;
}

/** Starts a build (the template is made on its first build) and returns it queued. */
async function buildInBackground(spec: TemplateSpec, options: TemplateBuildOptions = {}): Promise<BuildInfo> {
  const api = await clientFrom(options);
  const body = await wireBody(api, spec, options);
  const res = await api.json<{ build: BuildView }>("POST", "/v1/templates", { json: body });
  return buildInfoFromWire(res.build);
}

async function getBuild(buildId: string, options: ClientOptions = {}): Promise<BuildInfo> {
  const api = await clientFrom(options);
  return buildInfoFromWire(await api.json<BuildView>("GET", apiPath("builds", buildId)));
}

/** A build's log from `offset` (continue with `nextOffset`). */
async function logs(
  buildId: string,
  offset = 0,
  options: ClientOptions & { limit?: number } = {},
): Promise<BuildLogPage> {
  const api = await clientFrom(options);
  const page = await api.json<BuildLogsView>("GET", apiPath("builds", buildId, "logs"), {
    query: { offset, limit: options.limit },
  });
  return {
    status: page.status,
    entries: page.entries.map(buildLogEntryFromWire),
    nextOffset: page.next_offset,
  };
}

/** Log entries asked for per poll (the API's maximum). */
const LOG_PAGE = 1000;

const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/**
 * Follows a build's log until it finishes: resolves with the ready build, or throws
 * WrennBuildError (its message names the failed step, its exit code and its output's tail).
 */
async function waitForBuild(buildId: string, options: TemplateBuildOptions = {}): Promise<BuildInfo> {
  const api = await clientFrom(options);
  let offset = 0;
  for (;;) {
    const page = await logs(buildId, offset, { client: api, limit: LOG_PAGE });
    for (const entry of page.entries) options.onLog?.(entry);
    offset = page.nextOffset;
    if (page.entries.length === LOG_PAGE) continue;
    if (page.status === "ready" || page.status === "error") {
      // A finished build's log is complete once a read after the end returns nothing more.
      if (page.entries.length === 0) break;
      continue;
    }
    await sleep(options.pollMs ?? 1000, options.signal);
  }
  const build = await getBuild(buildId, { client: api });
  if (build.status === "error") throw new WrennBuildError(build);
  return build;
}

/** Builds a template and waits for it: the ready build, or WrennBuildError. */
async function build(spec: TemplateSpec, options: TemplateBuildOptions = {}): Promise<BuildInfo> {
  const api = await clientFrom(options);
  const started = await buildInBackground(spec, { ...options, client: api });
  return waitForBuild(started.buildId, { ...options, client: api });
}

async function list(options: ClientOptions = {}): Promise<TemplateInfo[]> {
  const api = await clientFrom(options);
  return (await api.json<{ items: TemplateView[] }>("GET", "/v1/templates")).items.map(templateInfoFromWire);
}

async function get(name: string, options: ClientOptions = {}): Promise<TemplateInfo> {
  const api = await clientFrom(options);
  return templateInfoFromWire(await api.json<TemplateView>("GET", apiPath("templates", name)));
}

/** A template's builds, newest first. */
async function builds(name: string, options: ClientOptions = {}): Promise<BuildInfo[]> {
  const api = await clientFrom(options);
  return (await api.json<{ items: BuildView[] }>("GET", apiPath("templates", name, "builds"))).items.map(
    buildInfoFromWire,
  );
}

/** Deletes a built template; sandboxes made from it keep running. */
async function deleteTemplate(name: string, options: ClientOptions = {}): Promise<void> {
  const api = await clientFrom(options);
  await api.json("DELETE", apiPath("templates", name));
}

/**
 * Templates built from steps in a VM (no Docker): every sandbox created from one
 * (`Sandbox.create({ template: name })`) starts from its memory snapshot.
 */
export const Templates = {
  build,
  buildInBackground,
  waitForBuild,
  getBuild,
  logs,
  list,
  get,
  builds,
  delete: deleteTemplate,
  filesPresent,
  uploadFiles,
} as const;
