import type {
  CreatedSandboxView,
  SandboxCreateBody,
  SandboxForkBody,
  SandboxListQuery,
  SandboxMetricsSampleView,
  SandboxMetricsView,
  SandboxNetworkBody,
  SandboxPauseBody,
  SandboxResumeBody,
  SandboxSetTimeoutBody,
  SandboxState,
  SandboxView,
} from "@wrenn/api";
import { ApiClient, apiPath } from "./api-client.js";
import { type SandboxInfo, sandboxInfoFromWire } from "./api-types.js";
import { Commands } from "./commands.js";
import type { ConnectionOptions } from "./config.js";
import { WrennConfigError } from "./errors.js";
import { Files } from "./files.js";
import { Pty } from "./pty.js";
import type { Volume } from "./volumes.js";

/** Connection options, or an existing client to share (`ApiClient.create`). */
export interface ClientOptions extends ConnectionOptions {
  client?: ApiClient;
}

export interface SandboxCreateOptions extends ClientOptions {
  /** Base template (default `base`) or the name of one of the team's snapshots. */
  template?: string;
  /** Start from this named snapshot (same as `template: name`; vCPUs and memory are the snapshot's). */
  snapshot?: string;
  vcpus?: number;
  memoryMiB?: number;
  diskMiB?: number;
  /** Inactivity timeout in seconds (the server's default when unset, 300). */
  timeoutSec?: number;
  /** What the inactivity timeout does: pause (the server's default) or destroy. */
  onTimeout?: "destroy" | "pause";
  /** While paused, the first request through the sandbox proxy (a port, envd) resumes it. Needs `onTimeout: "pause"`. */
  autoResume?: boolean;
  /** False: the timeout's pause keeps only the disk (a resume cold-boots). Needs `onTimeout: "pause"`, not `autoResume`. */
  onTimeoutKeepMemory?: boolean;
  /** Environment variables of every command in the sandbox. */
  envs?: Record<string, string>;
  metadata?: Record<string, string>;
  /**
   * The team's volumes mounted in the guest, by absolute path: `{ "/mnt/data": "my-volume" }`
   * (a name, an id, or a `Volume`). The sandbox runs on the host that keeps them.
   */
  volumeMounts?: Record<string, string | Pick<Volume, "volumeId">>;
  /** Egress policy and public traffic; no policy named: a snapshot's own, else open. */
  network?: SandboxNetworkOptions;
}

/** A sandbox's egress policy: a whole policy (what is left out is empty). */
export interface SandboxNetworkPolicy {
  /** IPv4 addresses, CIDRs and domains (`api.example.com`, `*.example.com`) it may reach; allow wins over deny. */
  allowOut?: string[];
  /** IPv4 addresses and CIDRs it may not reach (`0.0.0.0/0`: all). Domains need a deny-all. */
  denyOut?: string[];
  /** False: deny everything not in `allowOut`. */
  allowInternetAccess?: boolean;
}

export interface SandboxNetworkOptions extends SandboxNetworkPolicy {
  /** False: requests through the proxy need `sandbox.trafficAccessToken` in `e2b-traffic-access-token`. */
  allowPublicTraffic?: boolean;
  /** Host header proxied requests get (the text `$` + `{PORT}` becomes the target port). */
  maskRequestHost?: string;
}

function networkBody(policy: SandboxNetworkPolicy): SandboxNetworkBody {
  return {
    allow_out: policy.allowOut,
    deny_out: policy.denyOut,
    allow_internet_access: policy.allowInternetAccess,
  };
}

export interface SandboxListOptions extends ClientOptions {
  /** Only sandboxes in one of these states. */
  state?: SandboxState[];
  /** Only sandboxes whose metadata has all of these pairs. */
  metadata?: Record<string, string>;
  /** Page size (1–200). */
  limit?: number;
}

export interface SandboxPage {
  items: SandboxInfo[];
  /** Pass as `cursor` for the next page; null at the end. */
  nextCursor: string | null;
}

export interface SandboxMetrics {
  cpuCount: number;
  cpuUsedPct: number;
  memTotalBytes: number;
  memUsedBytes: number;
  diskTotalBytes: number;
  diskUsedBytes: number;
  vmmRssBytes: number;
  timestamp: Date | null;
}

/** One sample of a sandbox's metrics history (the control plane samples running sandboxes). */
export interface SandboxMetricsSample {
  timestamp: Date;
  cpuCount: number;
  /** Percent of all the sandbox's vCPUs. */
  cpuUsedPct: number;
  memUsedBytes: number;
  memTotalBytes: number;
  diskUsedBytes: number;
  diskTotalBytes: number;
}

/** A time range; either end may be left open (the server has second resolution). */
export interface TimeRangeOptions {
  start?: Date;
  end?: Date;
}

/** A Date as the Unix seconds the metrics routes take. */
export function unixSeconds(date: Date | undefined): number | undefined {
  return date ? Math.floor(date.getTime() / 1000) : undefined;
}

async function clientFrom(options: ClientOptions): Promise<ApiClient> {
  return options.client ?? ApiClient.create(options);
}

function listQuery(options: SandboxListOptions & { cursor?: string }) {
  return {
    state: options.state?.length ? options.state.join(",") : undefined,
    metadata: options.metadata ? new URLSearchParams(options.metadata).toString() : undefined,
    limit: options.limit,
    cursor: options.cursor,
  } satisfies SandboxListQuery;
}

/** A microVM sandbox: run commands, open terminals, move files, pause, resume, snapshot, fork, kill. */
export class Sandbox {
  readonly sandboxId: string;
  readonly commands: Commands;
  readonly files: Files;
  readonly pty: Pty;
  /** Set for a sandbox without public traffic, as its create (or fork) returned it; else null. */
  readonly trafficAccessToken: string | null;
  readonly #api: ApiClient;
  #info: SandboxInfo;

  /** Wraps a sandbox the API reported; does no I/O (use `create` or `connect`). */
  constructor(api: ApiClient, info: SandboxInfo, trafficAccessToken: string | null = null) {
    this.#api = api;
    this.#info = info;
    this.trafficAccessToken = trafficAccessToken;
    this.sandboxId = info.sandboxId;
    this.commands = new Commands(api, info.sandboxId);
    this.files = new Files(api, info.sandboxId);
    this.pty = new Pty(api, info.sandboxId);
  }

  /** The sandbox as last reported by the API (refresh with `getInfo`). */
  get info(): SandboxInfo {
    return this.#info;
  }

  /** The client this sandbox talks through, to share with other calls. */
  get client(): ApiClient {
    return this.#api;
  }

  /** Creates a sandbox and resolves once it is running. */
  static async create(options: SandboxCreateOptions = {}): Promise<Sandbox> {
    if (options.snapshot && options.template) {
      throw new WrennConfigError("pass either template or snapshot, not both");
    }
    const api = await clientFrom(options);
    const wire = await api.json<CreatedSandboxView>("POST", "/v1/sandboxes", {
      json: {
        template: options.snapshot ?? options.template ?? "base",
        vcpus: options.vcpus,
        memory_mb: options.memoryMiB,
        disk_mb: options.diskMiB,
        timeout_sec: options.timeoutSec,
        on_timeout: options.onTimeout,
        auto_resume: options.autoResume,
        on_timeout_keep_memory: options.onTimeoutKeepMemory,
        env: options.envs,
        metadata: options.metadata,
        volume_mounts: options.volumeMounts
          ? Object.entries(options.volumeMounts).map(([path, v]) => ({
              path,
              volume: typeof v === "string" ? v : v.volumeId,
            }))
          : undefined,
        network: options.network
          ? {
              ...networkBody(options.network),
              allow_public_traffic: options.network.allowPublicTraffic,
              mask_request_host: options.network.maskRequestHost,
            }
          : undefined,
      } satisfies SandboxCreateBody,
    });
    return new Sandbox(api, sandboxInfoFromWire(wire), wire.traffic_access_token);
  }

  /** Attaches to an existing sandbox; a paused one is resumed unless `resume: false`. */
  static async connect(
    sandboxId: string,
    options: ClientOptions & { resume?: boolean } = {},
  ): Promise<Sandbox> {
    const api = await clientFrom(options);
    const sandbox = new Sandbox(
      api,
      sandboxInfoFromWire(await api.json<SandboxView>("GET", apiPath("sandboxes", sandboxId))),
    );
    if (sandbox.info.state === "paused" && options.resume !== false) await sandbox.resume();
    return sandbox;
  }

  /** One page of the team's sandboxes, newest first. */
  static async listPage(options: SandboxListOptions & { cursor?: string } = {}): Promise<SandboxPage> {
    const api = await clientFrom(options);
    const page = await api.json<{ items: SandboxView[]; next_cursor: string | null }>(
      "GET",
      "/v1/sandboxes",
      { query: listQuery(options) },
    );
    return { items: page.items.map(sandboxInfoFromWire), nextCursor: page.next_cursor };
  }

  /** Every sandbox matching the filters (follows all pages). */
  static async list(options: SandboxListOptions = {}): Promise<SandboxInfo[]> {
    const api = await clientFrom(options);
    const out: SandboxInfo[] = [];
    let cursor: string | undefined;
    do {
      const page = await Sandbox.listPage({ ...options, client: api, cursor });
      out.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return out;
  }

  /** Destroys a sandbox by id (a no-op for one already stopped). */
  static async kill(sandboxId: string, options: ClientOptions = {}): Promise<void> {
    const api = await clientFrom(options);
    await api.json("DELETE", apiPath("sandboxes", sandboxId));
  }

  #update(wire: SandboxView): SandboxInfo {
    this.#info = sandboxInfoFromWire(wire);
    return this.#info;
  }

  #post(action: string, json?: unknown): Promise<SandboxView> {
    return this.#api.json<SandboxView>("POST", apiPath("sandboxes", this.sandboxId, action), { json });
  }

  /** Fetches the sandbox's current state. */
  async getInfo(): Promise<SandboxInfo> {
    return this.#update(await this.#api.json<SandboxView>("GET", apiPath("sandboxes", this.sandboxId)));
  }

  async isRunning(): Promise<boolean> {
    return (await this.getInfo()).state === "running";
  }

  /**
   * Pauses: memory goes to disk and the VM is gone until `resume`. With `keepMemory: false`
   * only the disk is kept: the resume cold-boots from it (running processes are gone).
   */
  async pause(options: { keepMemory?: boolean } = {}): Promise<SandboxInfo> {
    return this.#update(
      await this.#post("pause", { keep_memory: options.keepMemory } satisfies SandboxPauseBody),
    );
  }

  /**
   * Resumes a paused sandbox, optionally with a new inactivity timeout; `reboot` cold-boots
   * it from its disk even when its pause kept memory.
   */
  async resume(options: { timeoutSec?: number; reboot?: boolean } = {}): Promise<SandboxInfo> {
    return this.#update(
      await this.#post("resume", {
        timeout_sec: options.timeoutSec,
        reboot: options.reboot,
      } satisfies SandboxResumeBody),
    );
  }

  /** Sets the inactivity timeout, in seconds, counted from now. */
  async setTimeout(timeoutSec: number): Promise<SandboxInfo> {
    return this.#update(
      await this.#post("timeout", { timeout_sec: timeoutSec } satisfies SandboxSetTimeoutBody),
    );
  }

  /** Marks activity, pushing the inactivity timeout back. */
  async keepAlive(): Promise<SandboxInfo> {
    return this.#update(await this.#post("ping"));
  }

  /** The sampled history inside a range (default: since it started), oldest first. */
  async getMetrics(range: TimeRangeOptions = {}): Promise<SandboxMetricsSample[]> {
    const res = await this.#api.json<{ items: SandboxMetricsSampleView[] }>(
      "GET",
      apiPath("sandboxes", this.sandboxId, "metrics"),
      { query: { start: unixSeconds(range.start), end: unixSeconds(range.end) } },
    );
    return res.items.map((m) => ({
      timestamp: new Date(m.timestamp),
      cpuCount: m.cpu_count,
      cpuUsedPct: m.cpu_used_pct,
      memUsedBytes: m.mem_used_bytes,
      memTotalBytes: m.mem_total_bytes,
      diskUsedBytes: m.disk_used_bytes,
      diskTotalBytes: m.disk_total_bytes,
    }));
  }

  /** Use right now, asked of the host (with the VMM process's resident memory); running sandboxes only. */
  async getCurrentMetrics(): Promise<SandboxMetrics> {
    const m = await this.#api.json<SandboxMetricsView>(
      "GET",
      apiPath("sandboxes", this.sandboxId, "metrics", "current"),
    );
    return {
      cpuCount: m.cpu_count,
      cpuUsedPct: m.cpu_used_pct,
      memTotalBytes: m.mem_total_bytes,
      memUsedBytes: m.mem_used_bytes,
      diskTotalBytes: m.disk_total_bytes,
      diskUsedBytes: m.disk_used_bytes,
      vmmRssBytes: m.vmm_rss_bytes,
      timestamp: m.timestamp ? new Date(m.timestamp) : null,
    };
  }

  /** Forks this running sandbox into `count` new ones on the same host, each with its own disk and memory. */
  async fork(count = 1, options: { metadata?: Record<string, string> } = {}): Promise<Sandbox[]> {
    const res = await this.#api.json<{ items: CreatedSandboxView[] }>(
      "POST",
      apiPath("sandboxes", this.sandboxId, "fork"),
      {
        json: { count, metadata: options.metadata } satisfies SandboxForkBody,
      },
    );
    return res.items.map((w) => new Sandbox(this.#api, sandboxInfoFromWire(w), w.traffic_access_token));
  }

  /** Replaces the egress policy (running or paused sandbox); what is left out is empty. */
  async updateNetwork(policy: SandboxNetworkPolicy): Promise<SandboxInfo> {
    return this.#update(
      await this.#api.json<SandboxView>("PUT", apiPath("sandboxes", this.sandboxId, "network"), {
        json: networkBody(policy),
      }),
    );
  }

  /** Destroys the sandbox. */
  async kill(): Promise<void> {
    await this.#api.json("DELETE", apiPath("sandboxes", this.sandboxId));
    this.#info = { ...this.#info, state: "stopped" };
  }
}
