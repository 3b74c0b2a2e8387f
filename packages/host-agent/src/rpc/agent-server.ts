import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { Code, ConnectError, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { HostAgentService } from "@wrenn/proto";
import { listenOn } from "@wrenn/shared";

export interface AgentServerOptions {
  host: string;
  port: number;
  /** Every RPC must carry `Authorization: Bearer <hostToken>`. */
  hostToken: string;
  /** Serve TLS (HTTP/2) instead of cleartext h2c when both are set. */
  tlsCertPath?: string | undefined;
  tlsKeyPath?: string | undefined;
  /** Largest accepted request message, bytes. */
  readMaxBytes: number;
}

export interface AgentServer {
  readonly port: number;
  close(): Promise<void>;
}

function tokensEqual(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function createHostTokenInterceptor(hostToken: string): Interceptor {
  return (next) => async (req) => {
    const header = req.header.get("authorization") ?? "";
    const token = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : "";
    if (!token || !tokensEqual(token, hostToken)) {
      throw new ConnectError("invalid or missing host token", Code.Unauthenticated);
    }
    return next(req);
  };
}

/** Serves HostAgentService over HTTP/2 (h2c, or TLS when a certificate is given). */
export async function startAgentServer(
  service: Partial<ServiceImpl<typeof HostAgentService>>,
  options: AgentServerOptions,
): Promise<AgentServer> {
  const handler = connectNodeAdapter({
    routes: (router) => router.service(HostAgentService, service),
    interceptors: [createHostTokenInterceptor(options.hostToken)],
    readMaxBytes: options.readMaxBytes,
  });
  const server =
    options.tlsCertPath && options.tlsKeyPath
      ? http2.createSecureServer(
          {
            cert: readFileSync(options.tlsCertPath),
            key: readFileSync(options.tlsKeyPath),
            allowHTTP1: false,
          },
          handler,
        )
      : http2.createServer(handler);
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  const port = await listenOn(server, options.port, options.host);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}
