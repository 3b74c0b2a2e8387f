import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { pipeline } from "node:stream/promises";
import { AGENT_TOKEN_HEADER } from "@wrenn/guest-client";
import { WrennError } from "@wrenn/shared";
import type { FastifyReply, FastifyRequest } from "fastify";
import { pinnedTlsOptions } from "../drivers/host-pool.js";
import type { VolumeContentRoute } from "../services/volumes-service.js";

const CONNECT_TIMEOUT_MS = 5000;
/** Response headers of the agent's content API passed on to the caller. */
const PASSED_ON = ["content-type", "content-length", "wrenn-error-code"];

/**
 * Sends a volume content request on to the host that has the volume, as it came (path,
 * query; the upload streamed, or `json` for a body already parsed here), and streams the
 * host's answer back. Fails with `unavailable` when the host cannot be reached.
 */
export function relayVolumeContent(
  route: VolumeContentRoute,
  request: FastifyRequest,
  reply: FastifyReply,
  json?: unknown,
): Promise<FastifyReply> {
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  const streamed = body === undefined && request.method === "PUT";
  const headers: Record<string, string> = { [AGENT_TOKEN_HEADER]: route.agentToken };
  if (body) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(body.length);
  } else if (streamed && request.headers["content-length"]) {
    headers["content-length"] = request.headers["content-length"];
  }
  return new Promise((resolve, reject) => {
    const upstream = (route.protocol === "https:" ? httpsRequest : httpRequest)({
      agent: false,
      host: route.host,
      port: route.port,
      method: request.method,
      path: request.url,
      headers,
      // An enrolled agent: its pinned certificate only.
      ...(route.pin ? pinnedTlsOptions(route.pin.certPem, route.pin.fingerprint) : {}),
    });
    const unreachable = (err: Error) =>
      reject(
        new WrennError("unavailable", `the host of volume ${route.volumeId} is unreachable: ${err.message}`),
      );
    const timer = setTimeout(() => upstream.destroy(new Error("connect timeout")), CONNECT_TIMEOUT_MS);
    upstream.once("socket", (socket) => socket.once("connect", () => clearTimeout(timer)));
    upstream.once("error", (err) => {
      clearTimeout(timer);
      if (reply.sent) reply.raw.destroy();
      else unreachable(err);
    });
    upstream.once("response", (res: IncomingMessage) => {
      clearTimeout(timer);
      reply.hijack();
      const out: Record<string, string> = {};
      for (const name of PASSED_ON) {
        const value = res.headers[name];
        if (typeof value === "string") out[name] = value;
      }
      reply.raw.writeHead(res.statusCode ?? 502, out);
      pipeline(res, reply.raw).catch(() => reply.raw.destroy());
      resolve(reply);
    });
    // The caller going away ends the exchange upstream too.
    reply.raw.once("close", () => {
      if (!reply.raw.writableFinished) upstream.destroy();
    });
    if (body) upstream.end(body);
    else if (streamed) pipeline(request.raw, upstream).catch((err: Error) => upstream.destroy(err));
    else upstream.end();
  });
}
