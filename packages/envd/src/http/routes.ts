import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { downloadRoute } from "./files-download.js";
import { uploadRoute } from "./files-upload.js";
import { createHostMetrics } from "./host-metrics.js";
import { type HttpRoute, sendJson } from "./http-route.js";
import { initRoute, warmInitParsing } from "./init-route.js";
import { volumeMountRoute, volumeUnmountRoute } from "./volume-mounts-route.js";

const execFileAsync = promisify(execFile);

const healthRoute: HttpRoute = {
  method: "GET",
  path: "/health",
  auth: "public",
  async handle(_req, res) {
    res.writeHead(204).end();
  },
};

const envsRoute: HttpRoute = {
  method: "GET",
  path: "/envs",
  async handle(_req, res, _url, ctx) {
    sendJson(res, 200, ctx.state.envVars);
  },
};

/**
 * POST /snapshot/prepare: the host agent calls this just before freezing the VM. The
 * port subsystem is stopped (no socat children mid-connection in the snapshot) and dirty
 * pages are flushed, so the disk layer is consistent; 204 means "safe to freeze now".
 */
const snapshotPrepareRoute: HttpRoute = {
  method: "POST",
  path: "/snapshot/prepare",
  async handle(_req, res, _url, ctx) {
    await ctx.ports.stop();
    // The system helper must be in the snapshot, alive, for every restore's /init, and
    // /init's parsing compiled.
    if (!ctx.config.noVm) {
      await ctx.system.start().catch((err) => ctx.logger.error("system helper not running", { err }));
    }
    warmInitParsing();
    await execFileAsync("sync");
    res.writeHead(204, { "cache-control": "no-store" }).end();
  },
};

function createMetricsRoute(): HttpRoute {
  const sample = createHostMetrics();
  return {
    method: "GET",
    path: "/metrics",
    async handle(_req, res) {
      sendJson(res, 200, await sample());
    },
  };
}

/** Every plain-HTTP route envd serves. */
export function createHttpRoutes(): HttpRoute[] {
  return [
    healthRoute,
    downloadRoute,
    uploadRoute,
    initRoute,
    envsRoute,
    createMetricsRoute(),
    snapshotPrepareRoute,
    volumeMountRoute,
    volumeUnmountRoute,
  ];
}
