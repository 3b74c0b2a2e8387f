import { cpus, homedir, hostname, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { definedEntries, envNumber, WrennError } from "@wrenn/shared";
import { z } from "zod";
import { parseTags } from "./cp-link/agent-args.js";

/**
 * The host agent's options, validated once at start. `loadAgentConfigFromEnv` is the
 * only place environment variables are read; each field names its variable.
 */
export const AgentConfigSchema = z.object({
  /** Agent state: sandbox records, slot leases, overlays, run dirs. WRENN_AGENT_DATA_DIR, default $WRENN_DIR/agent. */
  dataDir: z.string().min(1),
  /** Guest images built by guest/build.sh. WRENN_IMAGES_DIR, default $WRENN_DIR/images. */
  imagesDir: z.string().min(1),
  /** WRENN_AGENT_HOST, default 127.0.0.1. */
  host: z.string().min(1).default("127.0.0.1"),
  /** WRENN_AGENT_PORT, default 50051; 0 picks a free port (tests). */
  port: z.number().int().min(0).max(65535).default(50051),
  /**
   * Sandbox traffic listener (same host address, same TLS as the RPC listener), reported
   * to the control plane in Ping. WRENN_AGENT_TRAFFIC_PORT, default 0: any free port.
   */
  trafficPort: z.number().int().min(0).max(65535).default(0),
  /** Shared secret every RPC must carry. WRENN_AGENT_TOKEN (required). */
  hostToken: z.string().min(16),
  /** WRENN_HOST_ID, default the machine's hostname. */
  hostId: z.string().min(1).default(hostname()),
  /**
   * TLS for the RPC listener. WRENN_AGENT_TLS_CERT / WRENN_AGENT_TLS_KEY. Unset on an
   * enrolling or enrolled agent: its own self-signed identity (`<dataDir>/identity/`).
   */
  tlsCertPath: z.string().optional(),
  tlsKeyPath: z.string().optional(),
  /** The control plane an enrolled agent heartbeats (`--control-plane`). WRENN_CONTROL_PLANE_URL. */
  controlPlaneUrl: z.string().url().optional(),
  /** The control plane's CA (PEM) when the system's trust does not cover it (`--ca`). WRENN_CONTROL_PLANE_CA. */
  controlPlaneCaPath: z.string().min(1).optional(),
  /**
   * Where the control plane reaches this agent (`--advertise-url`), https://; its host is the
   * certificate's name. WRENN_AGENT_ADVERTISE_URL; default https://<host>:<bound port>.
   */
  advertiseUrl: z
    .string()
    .url()
    .refine((u) => u.startsWith("https://"), "an enrolling agent is reached over https://")
    .optional(),
  /** Placement labels sent at enrolment (`--tag k=v`). WRENN_AGENT_TAGS, comma-separated k=v. */
  hostTags: z.record(z.string(), z.string()).default({}),
  /** An enrolled agent's heartbeat to the control plane. WRENN_AGENT_HEARTBEAT_MS. */
  heartbeatIntervalMs: z.number().int().min(100).default(5000),
  /** "auto" probes KVM at start and falls back to TCG. WRENN_ACCEL. */
  accel: z.enum(["auto", "kvm", "tcg"]).default("auto"),
  /** Network slots (one per sandbox with a VM). WRENN_MAX_SLOTS. */
  maxSlots: z.number().int().min(1).max(16_000).default(1000),
  /** First network slot; agents sharing a machine take disjoint ranges. WRENN_FIRST_SLOT. */
  firstSlot: z.number().int().min(1).max(32_767).default(1),
  /** Prefix of namespaces, links and iptables chains; unique per agent on a machine. WRENN_NET_PREFIX. */
  netNamePrefix: z
    .string()
    .regex(/^[a-z][a-z0-9]{0,5}$/)
    .default("wrenn"),
  /**
   * Resolvers the sandboxes' DNS forwarder asks, `ip`, `ip:port` or `[ipv6]:port`, tried in
   * order. WRENN_DNS_UPSTREAMS (comma-separated); default: the `nameserver` lines of
   * `dnsResolvConfPath`, re-read when that file changes.
   */
  dnsUpstreams: z.array(z.string().min(1)).min(1).optional(),
  /** The host's resolver configuration. WRENN_DNS_RESOLV_CONF, default /etc/resolv.conf. */
  dnsResolvConfPath: z.string().min(1).default("/etc/resolv.conf"),
  /**
   * Port of the forwarder on each sandbox's veth address (the guest always asks its gateway on
   * 53; its namespace rewrites the port). WRENN_DNS_PORT, default 53.
   */
  dnsPort: z.number().int().min(1).max(65535).default(53),
  /** How long one upstream resolver gets before the next is asked. WRENN_DNS_UPSTREAM_TIMEOUT_MS. */
  dnsUpstreamTimeoutMs: z.number().int().min(50).default(2000),
  /** DNS queries one sandbox may have in flight; more are refused. WRENN_DNS_MAX_INFLIGHT. */
  dnsMaxInflightPerSandbox: z.number().int().min(1).default(64),
  /**
   * Port of the egress proxy on each sandbox's veth address (a policy with domain entries sends
   * the guest's TCP to ports 80 and 443 there). WRENN_EGRESS_PROXY_PORT, default 15080.
   */
  egressProxyPort: z.number().int().min(1).max(65535).default(15080),
  /**
   * Interface sandbox egress leaves the host through. WRENN_UPLINK_INTERFACE; default: the
   * interface of the host's IPv4 default route.
   */
  uplinkInterface: z.string().min(1).optional(),
  /**
   * Destinations no sandbox reaches besides ALWAYS_BLOCKED_CIDRS (private, link-local, ...).
   * WRENN_BLOCKED_EGRESS_CIDRS (comma-separated); default none.
   */
  blockedEgressCidrs: z.array(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/)).default([]),
  /**
   * Volumes: persistent file systems served to sandboxes over NFSv3 by an nfs-ganesha the agent
   * runs (needs the nfs-ganesha, nfs-ganesha-vfs and rpcbind packages). WRENN_VOLUMES=1; off by default.
   */
  volumes: z.boolean().default(false),
  /** Where volumes live: WRENN_VOLUMES_DIR, default $WRENN_DIR/volumes. */
  volumesDir: z.string().min(1).optional(),
  /** The volume server's NFS and MOUNT ports on the host. WRENN_NFS_PORT / WRENN_NFS_MOUNT_PORT. */
  nfsPort: z.number().int().min(1).max(65535).default(32049),
  nfsMountPort: z.number().int().min(1).max(65535).default(32048),
  /** Size of a volume created without one. WRENN_VOLUME_DEFAULT_MIB. */
  volumeDefaultSizeMiB: z.number().int().min(16).default(1024),
  defaultVcpus: z.number().int().min(1).default(1),
  defaultMemoryMiB: z.number().int().min(128).default(512),
  defaultDiskMiB: z.number().int().min(256).default(2048),
  /** Inactivity timeout when the request gives none. */
  defaultTimeoutSec: z.number().int().min(1).default(300),
  maxTimeoutSec: z
    .number()
    .int()
    .min(1)
    .default(24 * 3600),
  defaultUser: z.string().min(1).default("user"),
  /**
   * vCPUs handed out may exceed the host's cores by this factor. WRENN_VCPU_OVERCOMMIT.
   * Default 32 (64 one-vCPU sandboxes on 2 cores): an idle sandbox costs well under 1 % of
   * a core (bench `density`), so a host full of idle sandboxes keeps most of its CPU; busy
   * ones share the cores as any processes do.
   */
  vcpuOvercommit: z.number().min(1).default(32),
  /** Memory kept back for the host itself. WRENN_MEMORY_RESERVE_MIB. */
  memoryReserveMiB: z.number().int().min(0).default(2048),
  /**
   * Guest memory handed out may exceed (host memory − reserve) by this factor.
   * WRENN_MEMORY_OVERCOMMIT. Default 4: an idle sandbox restored from a snapshot holds a
   * small part of its guest memory (bench `density`: PSS per idle 512 MiB clone); the
   * available-memory floor below refuses starts before a host that fills up stalls.
   */
  memoryOvercommit: z.number().min(1).default(4),
  /**
   * Starts are refused (no_capacity) while the host's MemAvailable is below this.
   * WRENN_MIN_AVAILABLE_MEMORY_MIB; 0 turns the check off.
   */
  minAvailableMemoryMiB: z.number().int().min(0).default(1024),
  maxDiskMiB: z
    .number()
    .int()
    .min(256)
    .default(64 * 1024),
  /**
   * Disk the host offers, as a multiple of the data dir's file system size: overlays are
   * thin (a sandbox's disk size is an upper bound, not what it uses). WRENN_DISK_OVERCOMMIT.
   */
  diskOvercommit: z.number().min(0.1).default(4),
  /** VM boots and restores run at most this many at a time; the rest wait their turn. WRENN_MAX_CONCURRENT_STARTS. */
  maxConcurrentStarts: z
    .number()
    .int()
    .min(1)
    .default(Math.max(2, cpus().length * 2)),
  /** A booting guest must answer envd /health within this. */
  envdReadyTimeoutMs: z.number().int().min(1000).default(120_000),
  envdPollIntervalMs: z.number().int().min(1).default(10),
  envdRequestTimeoutMs: z.number().int().min(100).default(30_000),
  /** Diff generations a paused sandbox's memory may read from before they are merged into one. */
  maxMemoryDiffChain: z.number().int().min(1).max(64).default(4),
  /**
   * Every create from an image restores a snapshot of that image instead of cold-booting. The
   * snapshot is made by one cold boot per image build, VM size (vCPUs, memory) and accelerator:
   * for the default image at the default size in the background when the agent starts, for
   * any other image or size (a variant) by the first create asking for it, which waits.
   * WRENN_IMAGE_SNAPSHOTS=0 turns this off (every create from an image cold-boots).
   */
  imageSnapshots: z.boolean().default(true),
  /**
   * The host-wide image snapshot cache every agent on the machine shares (an image snapshot
   * is cold-booted once per host, not once per agent or data dir). WRENN_IMAGE_SNAPSHOT_CACHE,
   * default `image-snapshots` beside imagesDir ($WRENN_DIR/image-snapshots); "off": none, every
   * agent builds its own. Best on the data dir's file system (entries are taken by hard link).
   */
  imageSnapshotCacheDir: z.string().min(1).optional(),
  /**
   * TCG's translation cache per VM in MiB (QEMU's own default reserves 1 GiB). What a guest
   * has translated stays resident and is the VM's own, but an idle clone touches ~36 MiB of
   * it whatever the size (PSS per idle clone 83.5 MiB at 64 and at 128). A cache that fills
   * is flushed and everything retranslated: exec of `true` through the stack p50/p95 was
   * 66/105 ms at 128, 76/432 ms at 64, 536 ms p50 at 32 and 726 ms at 16 (bench `hot-path`,
   * fixed guest mappings). WRENN_TCG_TB_SIZE_MIB; unused under KVM.
   */
  tcgTbSizeMiB: z.number().int().min(4).max(1024).default(128),
  /**
   * Address space randomisation inside guests. "auto" (default): off under TCG, where it makes
   * every new process retranslate its code (exec ~4× slower), on under KVM. WRENN_GUEST_ASLR.
   */
  guestAslr: z.enum(["auto", "on", "off"]).default("auto"),
  /** Destroy every sandbox when the agent stops (else they survive for re-adoption). WRENN_AGENT_DESTROY_ON_EXIT=1. */
  destroyOnExit: z.boolean().default(false),
  hostCores: z.number().int().min(1).default(cpus().length),
  hostMemoryMiB: z
    .number()
    .int()
    .min(256)
    .default(Math.floor(totalmem() / 1024 / 1024)),
});

export type AgentConfig = z.infer<typeof AgentConfigSchema>;

export function parseAgentConfig(input: unknown): AgentConfig {
  const config = AgentConfigSchema.parse(input);
  if (config.controlPlaneUrl) checkControlPlaneUrl(config.controlPlaneUrl);
  return config;
}

/**
 * The registration token, credentials and refresh tokens travel to the control plane: only
 * over https://, or plain http:// to this machine's loopback (a control plane beside the agent).
 */
export function checkControlPlaneUrl(url: string): void {
  const { protocol, hostname } = new URL(url);
  if (protocol === "https:") return;
  const loopback = hostname === "localhost" || hostname === "[::1]" || /^127\./.test(hostname);
  if (protocol === "http:" && loopback) return;
  throw new WrennError(
    "invalid_argument",
    `control plane URL ${url}: must be https:// (enrolment tokens and credentials travel on it); http:// only to a loopback address`,
  );
}

/** The image snapshot cache's directory; undefined when it is off. */
export function imageSnapshotCacheDirOf(config: Pick<AgentConfig, "imageSnapshotCacheDir" | "imagesDir">) {
  const dir = config.imageSnapshotCacheDir ?? join(dirname(config.imagesDir), "image-snapshots");
  return dir === "off" ? undefined : dir;
}

/** Reads the agent's environment variables into an (unvalidated) options object. */
export function agentConfigFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const wrennDir = env.WRENN_DIR || join(homedir(), ".wrenn");
  const raw: Record<string, unknown> = {
    dataDir: env.WRENN_AGENT_DATA_DIR || join(wrennDir, "agent"),
    imagesDir: env.WRENN_IMAGES_DIR || join(wrennDir, "images"),
    host: env.WRENN_AGENT_HOST,
    port: envNumber(env.WRENN_AGENT_PORT),
    trafficPort: envNumber(env.WRENN_AGENT_TRAFFIC_PORT),
    hostToken: env.WRENN_AGENT_TOKEN,
    hostId: env.WRENN_HOST_ID,
    tlsCertPath: env.WRENN_AGENT_TLS_CERT,
    tlsKeyPath: env.WRENN_AGENT_TLS_KEY,
    controlPlaneUrl: env.WRENN_CONTROL_PLANE_URL || undefined,
    controlPlaneCaPath: env.WRENN_CONTROL_PLANE_CA || undefined,
    advertiseUrl: env.WRENN_AGENT_ADVERTISE_URL || undefined,
    hostTags: env.WRENN_AGENT_TAGS ? parseTags([env.WRENN_AGENT_TAGS]) : undefined,
    heartbeatIntervalMs: envNumber(env.WRENN_AGENT_HEARTBEAT_MS),
    accel: env.WRENN_ACCEL,
    maxSlots: envNumber(env.WRENN_MAX_SLOTS),
    firstSlot: envNumber(env.WRENN_FIRST_SLOT),
    netNamePrefix: env.WRENN_NET_PREFIX,
    dnsUpstreams: env.WRENN_DNS_UPSTREAMS
      ? env.WRENN_DNS_UPSTREAMS.split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : undefined,
    dnsResolvConfPath: env.WRENN_DNS_RESOLV_CONF,
    dnsPort: envNumber(env.WRENN_DNS_PORT),
    egressProxyPort: envNumber(env.WRENN_EGRESS_PROXY_PORT),
    uplinkInterface: env.WRENN_UPLINK_INTERFACE || undefined,
    blockedEgressCidrs: env.WRENN_BLOCKED_EGRESS_CIDRS
      ? env.WRENN_BLOCKED_EGRESS_CIDRS.split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : undefined,
    volumes: env.WRENN_VOLUMES === undefined ? undefined : env.WRENN_VOLUMES === "1",
    volumesDir: env.WRENN_VOLUMES_DIR || join(wrennDir, "volumes"),
    nfsPort: envNumber(env.WRENN_NFS_PORT),
    nfsMountPort: envNumber(env.WRENN_NFS_MOUNT_PORT),
    volumeDefaultSizeMiB: envNumber(env.WRENN_VOLUME_DEFAULT_MIB),
    dnsUpstreamTimeoutMs: envNumber(env.WRENN_DNS_UPSTREAM_TIMEOUT_MS),
    dnsMaxInflightPerSandbox: envNumber(env.WRENN_DNS_MAX_INFLIGHT),
    vcpuOvercommit: envNumber(env.WRENN_VCPU_OVERCOMMIT),
    memoryOvercommit: envNumber(env.WRENN_MEMORY_OVERCOMMIT),
    memoryReserveMiB: envNumber(env.WRENN_MEMORY_RESERVE_MIB),
    minAvailableMemoryMiB: envNumber(env.WRENN_MIN_AVAILABLE_MEMORY_MIB),
    diskOvercommit: envNumber(env.WRENN_DISK_OVERCOMMIT),
    maxConcurrentStarts: envNumber(env.WRENN_MAX_CONCURRENT_STARTS),
    tcgTbSizeMiB: envNumber(env.WRENN_TCG_TB_SIZE_MIB),
    guestAslr: env.WRENN_GUEST_ASLR,
    imageSnapshots: env.WRENN_IMAGE_SNAPSHOTS === undefined ? undefined : env.WRENN_IMAGE_SNAPSHOTS !== "0",
    imageSnapshotCacheDir: env.WRENN_IMAGE_SNAPSHOT_CACHE,
    destroyOnExit:
      env.WRENN_AGENT_DESTROY_ON_EXIT === undefined ? undefined : env.WRENN_AGENT_DESTROY_ON_EXIT === "1",
  };
  return definedEntries(raw);
}
