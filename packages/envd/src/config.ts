import { z } from "zod";

/**
 * envd's options, validated once at start. Every field is set from the command
 * line in main.ts (the only place argv/env are read).
 */
export const EnvdConfigSchema = z.object({
  /** TCP port to serve on; 0 picks a free one (tests). `--port`, default 49983. */
  port: z.number().int().min(0).max(65535).default(49983),
  /** Address to bind. `--host`, default all interfaces. */
  host: z.string().min(1).default("0.0.0.0"),
  /**
   * Development mode (`--no-vm`): envd runs on an ordinary host, so it never sets the
   * system clock, never touches MMDS, and defaults the user to the one running envd.
   */
  noVm: z.boolean().default(false),
  /**
   * A file of `NAME=value` lines applied to every process envd starts, under the sandbox's
   * env vars. Set to /etc/environment in a VM (main.ts); none on a development host.
   */
  imageEnvFile: z.string().min(1).optional(),
  /** User that processes and file operations run as when the request names none. */
  defaultUser: z.string().min(1).default("user"),
  /** Working directory when the request names none; default the user's home. */
  defaultWorkdir: z.string().min(1).optional(),
  /**
   * Address the port forwarder listens on for ports bound to localhost inside the
   * VM (the guest's external address). `--forward-host`, default the first non-loopback IPv4.
   */
  forwardHost: z.string().min(1).optional(),
  /** How often the port scanner reads /proc/net/tcp{,6} while the guest is active. */
  portScanIntervalMs: z.number().int().min(10).default(1000),
  /**
   * The longest wait between scans once nothing has happened (no request to envd, no listener
   * appearing or going) for portScanQuietAfterMs: the wait doubles per scan up to this.
   */
  portScanIdleIntervalMs: z.number().int().min(10).default(5000),
  portScanQuietAfterMs: z.number().int().min(0).default(30_000),
  /** How long the system helper may take to set the clock or reseed the RNG before it is restarted. */
  systemHelperTimeoutMs: z.number().int().min(10).default(5000),
  /** Interval between keepalive events on server streams. */
  keepaliveIntervalMs: z.number().int().min(10).default(30_000),
});

export type EnvdConfig = z.infer<typeof EnvdConfigSchema>;

export function parseEnvdConfig(input: unknown): EnvdConfig {
  return EnvdConfigSchema.parse(input);
}
