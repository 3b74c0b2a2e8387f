/**
 * Serves the built web dashboard: `/` is its page, `/assets/*` its content-hashed files
 * (cached for a year), each sent precompressed (brotli or gzip) when the browser takes it.
 * The files are read once, on the first request that finds them.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { WrennError } from "@wrenn/shared";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".woff2": "font/woff2",
  ".png": "image/png",
};

/** Scripts and styles from this origin only; API calls and WebSockets to this origin only. */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // Preact's style attributes and the terminal's measured cell sizes are inline styles.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join("; ");

interface Asset {
  type: string;
  identity: Buffer;
  br?: Buffer;
  gzip?: Buffer;
}

function loadAssets(dir: string): Map<string, Asset> | null {
  if (!existsSync(join(dir, "index.html"))) return null;
  const assets = new Map<string, Asset>();
  const add = (urlPath: string, file: string) => {
    const asset: Asset = {
      type: TYPES[extname(file)] ?? "application/octet-stream",
      identity: readFileSync(file),
    };
    if (existsSync(`${file}.br`)) asset.br = readFileSync(`${file}.br`);
    if (existsSync(`${file}.gz`)) asset.gzip = readFileSync(`${file}.gz`);
    assets.set(urlPath, asset);
  };
  add("/", join(dir, "index.html"));
  const assetsDir = join(dir, "assets");
  if (existsSync(assetsDir)) {
    for (const name of readdirSync(assetsDir)) {
      if (name.endsWith(".br") || name.endsWith(".gz")) continue;
      add(`/assets/${name}`, join(assetsDir, name));
    }
  }
  return assets;
}

function send(request: FastifyRequest, reply: FastifyReply, asset: Asset, immutable: boolean): FastifyReply {
  const accept = String(request.headers["accept-encoding"] ?? "");
  let body = asset.identity;
  if (asset.br && /\bbr\b/.test(accept)) {
    body = asset.br;
    reply.header("content-encoding", "br");
  } else if (asset.gzip && /\bgzip\b/.test(accept)) {
    body = asset.gzip;
    reply.header("content-encoding", "gzip");
  }
  reply
    .header("content-type", asset.type)
    .header("vary", "accept-encoding")
    .header("x-content-type-options", "nosniff")
    .header("cache-control", immutable ? "public, max-age=31536000, immutable" : "no-cache");
  if (!immutable) {
    reply.header("content-security-policy", CSP).header("referrer-policy", "same-origin");
  }
  return reply.code(200).send(body);
}

/** Registers `/` and `/assets/*` (nothing when `dir` is empty). */
export function registerDashboard(app: FastifyInstance, dir: string): void {
  if (!dir) return;
  let assets: Map<string, Asset> | null = null;
  const get = (): Map<string, Asset> => {
    assets ??= loadAssets(dir);
    if (!assets) {
      throw new WrennError("unavailable", `the dashboard is not built in ${dir} (run: npm run build)`);
    }
    return assets;
  };
  app.get("/", async (request, reply) => {
    const index = get().get("/");
    if (!index) throw new WrennError("not_found", "no dashboard page");
    return send(request, reply, index, false);
  });
  app.get("/assets/*", async (request, reply) => {
    const path = request.url.split("?")[0] ?? "";
    const asset = get().get(path);
    if (!asset) throw new WrennError("not_found", `no dashboard file ${path}`);
    return send(request, reply, asset, true);
  });
}
