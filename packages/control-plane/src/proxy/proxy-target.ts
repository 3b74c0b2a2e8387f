import type { IncomingHttpHeaders } from "node:http";
import { SANDBOX_ID_HEADER, SANDBOX_PORT_HEADER } from "@wrenn/guest-client";

/** Which sandbox port a request is for. */
export interface ProxyTarget {
  sandboxId: string;
  port: number;
}

/** Sandbox routing headers that name no valid sandbox port. */
export interface BadProxyTarget {
  error: string;
}

const SANDBOX_ID = /^[a-z0-9]{1,64}$/;
const HOST_LABEL = /^(\d{1,5})-([a-z0-9]{1,64})\.(.+)$/;

function parsePort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The sandbox port a request addresses: `E2b-Sandbox-Id` + `E2b-Sandbox-Port` headers,
 * else a Host of `<port>-<sandboxId>.<domain>` (only when a sandbox domain is set, so no
 * API host name is ever mistaken for sandbox traffic).
 * `null`: a request for the API itself.
 */
export function parseProxyTarget(
  headers: IncomingHttpHeaders,
  domain: string | undefined,
): ProxyTarget | BadProxyTarget | null {
  const id = single(headers[SANDBOX_ID_HEADER])?.trim().toLowerCase();
  const portText = single(headers[SANDBOX_PORT_HEADER])?.trim();
  if (id !== undefined || portText !== undefined) {
    if (id === undefined || portText === undefined) {
      return { error: "E2b-Sandbox-Id and E2b-Sandbox-Port go together" };
    }
    if (!SANDBOX_ID.test(id)) return { error: "E2b-Sandbox-Id: not a sandbox id" };
    const port = parsePort(portText);
    if (port === null) return { error: "E2b-Sandbox-Port: not a port (1-65535)" };
    return { sandboxId: id, port };
  }
  const host = single(headers.host)?.toLowerCase().replace(/:\d+$/, "");
  if (!host || domain === undefined) return null;
  const match = HOST_LABEL.exec(host);
  if (!match) return null;
  const [, portLabel = "", sandboxId = "", rest = ""] = match;
  if (rest !== domain) return null;
  const port = parsePort(portLabel);
  return port === null ? null : { sandboxId, port };
}
