import { readFileSync } from "node:fs";
import { type ErrorCode, isErrorCode, parseHttpError, WrennError } from "@wrenn/shared";
import { Agent as FetchAgent, fetch, type Response } from "undici";

/** The credentials the control plane hands an enrolled agent (enrolment and each refresh). */
export interface IssuedCredentials {
  host_id: string;
  credential: string;
  expires_at: string;
  refresh_token: string;
}

/** A failed control-plane call: its registry code (when it sent one) and HTTP status. */
export class ControlPlaneError extends WrennError {
  /** Set when the refresh call failed (a 401 there is final, unlike a heartbeat's). */
  refresh = false;

  constructor(
    code: ErrorCode,
    message: string,
    readonly status: number,
  ) {
    super(code, message);
  }
}

/**
 * The agent's few calls to the control plane (enrol, refresh, heartbeat): JSON over HTTP(S),
 * the control plane verified by the system's CAs or by `caPath` (its own CA, PEM).
 */
export class ControlPlaneClient {
  private readonly dispatcher: FetchAgent;

  constructor(
    readonly baseUrl: string,
    readonly caPath: string | null,
    private readonly timeoutMs = 15_000,
  ) {
    const ca = caPath ? readFileSync(caPath, "utf8") : undefined;
    this.dispatcher = new FetchAgent({ keepAliveTimeout: 4000, ...(ca ? { connect: { ca } } : {}) });
  }

  private async post<T>(path: string, body: unknown, bearer?: string): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        },
        body: JSON.stringify(body ?? {}),
        signal: AbortSignal.timeout(this.timeoutMs),
        dispatcher: this.dispatcher,
      });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      throw new ControlPlaneError(
        "unavailable",
        `control plane ${this.baseUrl} unreachable: ${cause ?? (err as Error).message}`,
        0,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      const info = parseHttpError({ status: res.status, bodyText: text, statusText: res.statusText });
      throw new ControlPlaneError(isErrorCode(info.code) ? info.code : "internal", info.message, res.status);
    }
    return JSON.parse(text) as T;
  }

  enrol(body: {
    token: string;
    url: string;
    agent_token: string;
    cert_pem: string;
    tags: Record<string, string>;
  }): Promise<IssuedCredentials> {
    return this.post("/v1/hosts/enrol", body);
  }

  refresh(refreshToken: string): Promise<IssuedCredentials> {
    return this.post("/v1/hosts/token", { refresh_token: refreshToken });
  }

  heartbeat(
    credential: string,
    body: { cert_fingerprint?: string; version?: string },
  ): Promise<{ host_id: string; last_seen_at: string; draining: boolean; cert_pinned: boolean }> {
    return this.post("/v1/hosts/heartbeat", body, credential);
  }

  close(): void {
    void this.dispatcher.close().catch(() => {});
  }
}
