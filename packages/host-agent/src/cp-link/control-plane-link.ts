import type { Logger } from "@wrenn/shared";
import { type Enrolment, writeEnrolment } from "../identity/enrolment-file.js";
import {
  type ControlPlaneClient,
  ControlPlaneError,
  type IssuedCredentials,
} from "./control-plane-client.js";

/** The refresh is due once this fraction of the credential's life has passed. */
export const REFRESH_AT_FRACTION = 0.8;

/** When (ms since the epoch) a credential issued at `issuedAtMs` and expiring at `expiresAtMs` should be refreshed. */
export function refreshDueAtMs(issuedAtMs: number, expiresAtMs: number): number {
  return issuedAtMs + Math.max(0, expiresAtMs - issuedAtMs) * REFRESH_AT_FRACTION;
}

/** Refresh failures after which no retry can help: the host must be enrolled again. */
const FATAL_REFRESH_CODES = new Set(["refresh_token_reused", "host_revoked", "unauthenticated"]);

/** The enrolment file's contents after a refresh (or the enrolment) issued `issued`. */
export function withCredentials(
  base: Omit<Enrolment, keyof IssuedCredentials | "issued_at">,
  issued: IssuedCredentials,
  nowMs: number,
): Enrolment {
  return {
    ...base,
    host_id: issued.host_id,
    credential: issued.credential,
    expires_at: issued.expires_at,
    issued_at: new Date(nowMs).toISOString(),
    refresh_token: issued.refresh_token,
  };
}

export interface ControlPlaneLinkOptions {
  client: ControlPlaneClient;
  identityDir: string;
  enrolment: Enrolment;
  heartbeatIntervalMs: number;
  /** Reported with each heartbeat: the control plane flags a certificate that is not the pinned one. */
  certFingerprint: string;
  logger: Logger;
  nowMs?: () => number;
}

/**
 * An enrolled agent's link to its control plane: a heartbeat every interval (the agent is
 * alive, whether or not the control plane reaches it), and the credential refreshed at 80 %
 * of its life or on a 401. Every refresh is written to enrolment.json before the new
 * credential is used, so a crash in between replays the previous refresh token, which the
 * control plane answers with the same pair. The control plane still dials the agent for
 * every RPC; this link only carries liveness and credentials.
 */
export class ControlPlaneLink {
  private enrolment: Enrolment;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private warnedUnpinned = false;
  private readonly nowMs: () => number;

  constructor(private readonly options: ControlPlaneLinkOptions) {
    this.enrolment = options.enrolment;
    this.nowMs = options.nowMs ?? Date.now;
  }

  get hostId(): string {
    return this.enrolment.host_id;
  }

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    this.options.client.close();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined;
      });
    }, delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const { logger } = this.options;
    try {
      const due = refreshDueAtMs(Date.parse(this.enrolment.issued_at), Date.parse(this.enrolment.expires_at));
      if (this.nowMs() >= due) await this.refresh();
      await this.heartbeat();
    } catch (err) {
      if (err instanceof ControlPlaneError && FATAL_REFRESH_CODES.has(err.code) && err.refresh) {
        logger.error(
          "control plane refused this host's credentials; enrol it again as a new host (a new registration token, identity/enrolment.json removed)",
          {
            code: err.code,
            err: err.message,
            hostId: this.enrolment.host_id,
          },
        );
        this.stopped = true;
        return;
      }
      logger.warn("control plane heartbeat failed (retrying)", { err: (err as Error).message });
    }
    this.schedule(this.options.heartbeatIntervalMs);
  }

  private async heartbeat(): Promise<void> {
    const body = { cert_fingerprint: this.options.certFingerprint };
    let answer: Awaited<ReturnType<ControlPlaneClient["heartbeat"]>>;
    try {
      answer = await this.options.client.heartbeat(this.enrolment.credential, body);
    } catch (err) {
      if (!(err instanceof ControlPlaneError) || err.status !== 401) throw err;
      await this.refresh();
      answer = await this.options.client.heartbeat(this.enrolment.credential, body);
    }
    if (!answer.cert_pinned && !this.warnedUnpinned) {
      this.warnedUnpinned = true;
      this.options.logger.error(
        "this agent serves a certificate other than the one the control plane pinned at enrolment: it refuses to reach the agent",
        { fingerprint: this.options.certFingerprint },
      );
    }
    if (answer.cert_pinned) this.warnedUnpinned = false;
  }

  private async refresh(): Promise<void> {
    let issued: IssuedCredentials;
    try {
      issued = await this.options.client.refresh(this.enrolment.refresh_token);
    } catch (err) {
      if (err instanceof ControlPlaneError) err.refresh = true;
      throw err;
    }
    const next = withCredentials(this.enrolment, issued, this.nowMs());
    writeEnrolment(this.options.identityDir, next);
    this.enrolment = next;
    this.options.logger.info("host credential refreshed", {
      hostId: next.host_id,
      expiresAt: next.expires_at,
    });
  }
}
