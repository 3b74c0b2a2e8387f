import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Filesystem, Process } from "@wrenn/proto";
import { ACCESS_TOKEN_HEADER, isAccessTokenValid } from "./auth.js";
import type { EnvdContext } from "./context.js";
import { HttpError, type HttpRoute, sendError } from "./http/http-route.js";
import { requireAccessToken } from "./http/request-auth.js";

export interface EnvdServices {
  process: Partial<ServiceImpl<typeof Process>>;
  filesystem: Partial<ServiceImpl<typeof Filesystem>>;
  httpRoutes: readonly HttpRoute[];
}

export interface EnvdServer {
  readonly server: Server;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  close(): Promise<void>;
}

function createAuthInterceptor(ctx: EnvdContext): Interceptor {
  return (next) => async (req) => {
    if (!isAccessTokenValid(ctx.state, req.header.get(ACCESS_TOKEN_HEADER))) {
      throw new ConnectError("invalid or missing access token", Code.Unauthenticated);
    }
    return next(req);
  };
}

function createHttpFallback(ctx: EnvdContext, routes: readonly HttpRoute[]) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://envd");
    const route = routes.find((r) => r.method === req.method && r.path === url.pathname);
    if (!route) {
      const known = routes.some((r) => r.path === url.pathname);
      sendError(res, known ? 405 : 404, known ? "method not allowed" : `no route ${url.pathname}`);
      return;
    }
    const run = async () => {
      // Routes marked "route" authenticate themselves (signed /files URLs, /init's body token).
      if ((route.auth ?? "access-token") === "access-token") requireAccessToken(req, ctx.state);
      await route.handle(req, res, url, ctx);
    };
    run().catch((err: unknown) => {
      if (err instanceof HttpError) {
        if (err.status >= 500) ctx.logger.error("http route failed", { path: url.pathname, err });
        sendError(res, err.status, err.message);
        return;
      }
      ctx.logger.error("http route failed", { path: url.pathname, err });
      sendError(res, 500, err instanceof Error ? err.message : String(err));
    });
  };
}

/** Builds envd's HTTP server: Connect services plus the plain-HTTP routes, one listener. */
export function createEnvdHttpServer(ctx: EnvdContext, services: EnvdServices): Server {
  const fallback = createHttpFallback(ctx, services.httpRoutes);
  const handler = connectNodeAdapter({
    routes: (router) => {
      router.service(Process, services.process);
      router.service(Filesystem, services.filesystem);
    },
    interceptors: [createAuthInterceptor(ctx)],
    // Only HTTP/1.1 is served, so the request is always an IncomingMessage.
    fallback: (req, res) => fallback(req as IncomingMessage, res as ServerResponse),
  });
  const server = createServer(handler);
  // Streams (process output, watches) stay open for long; never time them out here.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  return server;
}

export async function listenEnvd(server: Server, port: number, host: string): Promise<EnvdServer> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
