import { readFile, stat } from "node:fs/promises";
import { isIP } from "node:net";
import { WrennError } from "@wrenn/shared";

/** One resolver the forwarder asks. */
export interface Upstream {
  host: string;
  port: number;
  family: 4 | 6;
}

/**
 * Parses `ip`, `ip:port`, `[ipv6]` or `[ipv6]:port` (port 53 when absent). A bare IPv6 address
 * is taken whole; a zone (`fe80::1%eth0`) is kept for the socket to use.
 */
export function parseUpstream(text: string): Upstream {
  const s = text.trim();
  let host = s;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  const v4WithPort = /^([\d.]+):(\d+)$/.exec(s);
  if (bracketed) {
    host = bracketed[1] as string;
    if (bracketed[2]) port = Number(bracketed[2]);
  } else if (v4WithPort) {
    host = v4WithPort[1] as string;
    port = Number(v4WithPort[2]);
  }
  const family = isIP(host.split("%")[0] ?? "");
  if ((family !== 4 && family !== 6) || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new WrennError(
      "invalid_argument",
      `DNS upstream ${JSON.stringify(text)} is not ip[:port] or [ipv6][:port]`,
    );
  }
  return { host, port, family };
}

/**
 * The `nameserver` lines of a resolv.conf, in order. Loopback entries (systemd-resolved's
 * 127.0.0.53 stub, a local dnsmasq) are kept: the forwarder runs in the host's own network
 * namespace, so it reaches them where a guest could not. With no nameserver line the C
 * library asks 127.0.0.1 (resolv.conf(5)); so does this.
 */
export function parseResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const addr = m[1] as string;
    try {
      // resolv.conf names addresses only, never ports; an IPv6 one is written bare.
      out.push(parseUpstream(isIP(addr.split("%")[0] ?? "") === 6 ? `[${addr}]` : addr));
    } catch {
      // Not an address (a typo in the host's file): the others still serve.
    }
  }
  return out.length > 0 ? out : [{ host: "127.0.0.1", port: 53, family: 4 }];
}

export type UpstreamSource =
  | { kind: "fixed"; upstreams: readonly Upstream[] }
  | { kind: "resolv-conf"; path: string };

/**
 * The forwarder's upstreams: a fixed list (configuration), or the host's resolv.conf, re-read
 * when the file changes (DHCP and VPN clients rewrite it) and checked at most every
 * `recheckMs`, so the host's own resolver changes reach sandboxes without an agent restart.
 */
export class HostUpstreams {
  private list: readonly Upstream[] = [];
  private mtimeMs = -1;
  private checkedAt = 0;
  private checking: Promise<void> | undefined;

  private constructor(
    private readonly source: UpstreamSource,
    private readonly recheckMs: number,
  ) {}

  static async create(source: UpstreamSource, recheckMs = 5000): Promise<HostUpstreams> {
    const upstreams = new HostUpstreams(source, recheckMs);
    if (source.kind === "fixed") {
      if (source.upstreams.length === 0) throw new WrennError("invalid_argument", "no DNS upstreams given");
      upstreams.list = source.upstreams;
    } else {
      await upstreams.reload();
    }
    return upstreams;
  }

  /** The current list; may start a background re-read whose result the next call sees. */
  current(): readonly Upstream[] {
    if (
      this.source.kind === "resolv-conf" &&
      Date.now() - this.checkedAt >= this.recheckMs &&
      !this.checking
    ) {
      this.checking = this.reload()
        .catch(() => {})
        .finally(() => {
          this.checking = undefined;
        });
    }
    return this.list;
  }

  describe(): string {
    const where = this.source.kind === "fixed" ? "configured" : this.source.path;
    return `${this.list.map((u) => (u.family === 6 ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`)).join(", ")} (${where})`;
  }

  private async reload(): Promise<void> {
    if (this.source.kind !== "resolv-conf") return;
    const { path } = this.source;
    this.checkedAt = Date.now();
    try {
      const st = await stat(path);
      if (st.mtimeMs === this.mtimeMs) return;
      this.list = parseResolvConf(await readFile(path, "utf8"));
      this.mtimeMs = st.mtimeMs;
    } catch (err) {
      if (this.list.length > 0) return; // keep the last good list
      throw new WrennError("failed_precondition", `cannot read the host's resolvers from ${path}`, {
        cause: err,
      });
    }
  }
}
