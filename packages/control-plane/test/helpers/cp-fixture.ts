import {
  bootstrapAdminTeam,
  type ControlPlane,
  type ControlPlaneConfigInput,
  createControlPlane,
  type Database,
  type Extension,
} from "@wrenn/control-plane";
import { createLogger, createSilentLogger } from "@wrenn/shared";

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export type ApiCall = <T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<ApiResponse<T>>;

export interface CpFixture {
  cp: ControlPlane;
  url: string;
  /** The admin team's first key (from bootstrap). */
  adminKey: string;
  adminTeamId: string;
  /** admin@localhost's password (from bootstrap). */
  adminPassword: string | null;
  /** Calls the API with a key (Bearer). */
  as(key: string | null): ApiCall;
  /** A new team (made through the admin team's POST /v1/teams) and its key. */
  newTeam(name: string): Promise<{ teamId: string; key: string }>;
  close(): Promise<void>;
}

/** Starts a real control plane on port 0 over the given database, bootstrapped. */
export async function startControlPlane(
  database: Database,
  options: { config?: Partial<ControlPlaneConfigInput>; extensions?: Extension[]; workers?: boolean } = {},
): Promise<CpFixture> {
  const cp = await createControlPlane({
    config: { port: 0, pgliteDir: "memory", ...options.config },
    database,
    logger: process.env.WRENN_TEST_LOG ? createLogger({ level: "debug" }) : createSilentLogger(),
    validateResponses: true,
    extensions: options.extensions ?? [],
    workers: options.workers ?? false,
  });
  await cp.start();
  const admin = await bootstrapAdminTeam(cp.context);
  const as =
    (key: string | null): ApiCall =>
    async (method, path, body, headers = {}) => {
      const res = await fetch(`${cp.url}${path}`, {
        method,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, body: parsed as never, headers: res.headers };
    };
  return {
    cp,
    url: cp.url,
    adminKey: admin.apiKey.value,
    adminTeamId: admin.team.id,
    adminPassword: admin.adminUser?.password ?? null,
    as,
    async newTeam(name) {
      const res = await as(admin.apiKey.value)<{ team: { id: string }; api_key: { key: string } }>(
        "POST",
        "/v1/teams",
        {
          name,
        },
      );
      if (res.status !== 201)
        throw new Error(`team create failed: ${res.status} ${JSON.stringify(res.body)}`);
      return { teamId: res.body.team.id, key: res.body.api_key.key };
    },
    close: () => cp.stop(),
  };
}
