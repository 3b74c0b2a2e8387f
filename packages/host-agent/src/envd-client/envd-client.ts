import { GuestClient } from "@wrenn/guest-client";
import { errorCodeForStatus, WrennError } from "@wrenn/shared";
import { Agent as FetchAgent, fetch, type Response } from "undici";

export interface EnvdClientOptions {
  /** e.g. http://10.11.0.3:49983 */
  baseUrl: string;
  accessToken: string | undefined;
  /** Per request. */
  requestTimeoutMs: number;
}

export interface EnvdInit {
  envVars: Record<string, string>;
  accessToken?: string | undefined;
  defaultUser?: string | undefined;
  defaultWorkdir?: string | undefined;
  /** Host time; envd sets the guest clock from it. */
  timestamp: Date;
  /** Host randomness for the guest kernel RNG (sent after every restore, so clones diverge). */
  entropy?: Buffer | undefined;
}

/** A failure to reach envd at all, as a WrennError. */
function unreachable(err: unknown, what: string): WrennError {
  if (err instanceof WrennError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WrennError("unavailable", `${what}: envd unreachable (${message})`, { cause: err });
}

/**
 * The agent's own calls to one sandbox's envd: health, /init, snapshot preparation and
 * metrics (plain HTTP). Commands and files are not the agent's: callers speak envd's
 * protocol through the traffic listener (`@wrenn/guest-client`).
 */
export class EnvdClient {
  /** Aborted by close(): every request in flight fails at once instead of waiting on a dead VM. */
  private readonly lifetime = new AbortController();
  /**
   * Connections of this client only. A slot's address is reused by the next sandbox in it,
   * so a pooled keep-alive connection shared across clients could reach a VM that is gone.
   */
  private readonly fetchAgent = new FetchAgent({ keepAliveTimeout: 4000 });

  constructor(private readonly options: EnvdClientOptions) {}

  /**
   * envd's own Process/Filesystem client for this guest, for the agent's own runs inside a
   * VM it is preparing (an image snapshot's warm-up); users' commands go through the hop.
   */
  guest(accessToken: string): GuestClient {
    return new GuestClient({
      baseUrl: this.options.baseUrl,
      headers: { "x-access-token": accessToken },
      requestTimeoutMs: this.options.requestTimeoutMs,
    });
  }

  /** Fails every request in flight and any later one (the VM is going away: pause, destroy). */
  close(reason: string): void {
    this.lifetime.abort(new WrennError("unavailable", reason));
    void this.fetchAgent.destroy().catch(() => {});
  }

  private bound(signal: AbortSignal): AbortSignal {
    return AbortSignal.any([signal, this.lifetime.signal]);
  }

  /** The token this client presents (undefined: none). */
  get accessToken(): string | undefined {
    return this.options.accessToken;
  }

  private authHeaders(token = this.options.accessToken): Record<string, string> {
    return token ? { "x-access-token": token } : {};
  }

  private async http(path: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<Response> {
    const signal = this.bound(
      init.signal ?? AbortSignal.timeout(init.timeoutMs ?? this.options.requestTimeoutMs),
    );
    try {
      return await fetch(`${this.options.baseUrl}${path}`, {
        ...(init as Parameters<typeof fetch>[1]),
        signal,
        dispatcher: this.fetchAgent,
      });
    } catch (err) {
      throw unreachable(err, `${init.method ?? "GET"} ${path.split("?")[0]}`);
    }
  }

  private async expectOk(res: Response, what: string): Promise<Response> {
    if (res.ok) return res;
    const text = await res.text().catch(() => "");
    let message = text;
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? text;
    } catch {}
    const code = errorCodeForStatus(res.status);
    throw new WrennError(code, `${what}: ${message || `HTTP ${res.status}`}`);
  }

  /** True when envd answers /health. Never throws. */
  async isHealthy(timeoutMs = 1000): Promise<boolean> {
    try {
      const res = await fetch(`${this.options.baseUrl}/health`, {
        signal: AbortSignal.timeout(timeoutMs),
        dispatcher: this.fetchAgent,
      });
      await res.arrayBuffer();
      return res.status === 204 || res.status === 200;
    } catch {
      return false;
    }
  }

  /** Polls /health until it answers or the deadline passes. */
  async waitHealthy(options: { timeoutMs: number; intervalMs: number; signal?: AbortSignal }): Promise<void> {
    const deadline = Date.now() + options.timeoutMs;
    while (Date.now() < deadline) {
      options.signal?.throwIfAborted();
      if (await this.isHealthy(Math.min(1000, Math.max(50, deadline - Date.now())))) return;
      await new Promise((r) => setTimeout(r, options.intervalMs));
    }
    throw new WrennError("deadline_exceeded", `envd did not become healthy within ${options.timeoutMs} ms`);
  }

  /**
   * POST /init. `presentToken` replaces the client's own token for this request (a clone still
   * holds its snapshot's), so the request goes over this client's connection rather than a
   * new one: a freshly restored guest answers an open connection sooner.
   */
  async init(init: EnvdInit, presentToken?: string): Promise<void> {
    const body = JSON.stringify({
      envVars: init.envVars,
      ...(init.accessToken ? { accessToken: init.accessToken } : {}),
      ...(init.defaultUser ? { defaultUser: init.defaultUser } : {}),
      ...(init.defaultWorkdir ? { defaultWorkdir: init.defaultWorkdir } : {}),
      timestamp: init.timestamp.toISOString(),
      ...(init.entropy ? { entropy: init.entropy.toString("base64") } : {}),
    });
    const res = await this.http("/init", {
      method: "POST",
      headers: { "content-type": "application/json", ...this.authHeaders(presentToken ?? this.accessToken) },
      body,
    });
    await this.expectOk(res, "envd init");
    await res.arrayBuffer();
  }

  /** Asks envd to quiesce (port forwarding stopped, disks synced) before the VM is frozen. */
  async prepareSnapshot(): Promise<void> {
    const res = await this.http("/snapshot/prepare", { method: "POST", headers: this.authHeaders() });
    await this.expectOk(res, "envd snapshot prepare");
    await res.arrayBuffer();
  }

  /** Mounts volumes in the guest (POST /volumes/mount); paths already mounted are left alone. */
  async mountVolumes(mounts: ReadonlyArray<{ volumeId: string; path: string }>): Promise<void> {
    const res = await this.http("/volumes/mount", {
      method: "POST",
      headers: { "content-type": "application/json", ...this.authHeaders() },
      body: JSON.stringify({ mounts }),
    });
    await this.expectOk(res, "envd volume mount");
    await res.arrayBuffer();
  }

  async metrics(): Promise<Record<string, unknown>> {
    const res = await this.expectOk(
      await this.http("/metrics", { headers: this.authHeaders() }),
      "envd metrics",
    );
    return (await res.json()) as Record<string, unknown>;
  }
}
