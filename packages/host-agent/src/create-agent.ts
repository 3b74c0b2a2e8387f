import { mkdir, readFile, statfs } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@wrenn/shared";
import { OPEN_POLICY } from "@wrenn/shared/network-policy";
import { type AgentConfig, imageSnapshotCacheDirOf, parseAgentConfig } from "./config.js";
import { DnsForwarder } from "./dns/dns-forwarder.js";
import { HostUpstreams, parseUpstream } from "./dns/upstreams.js";
import { procMeminfoProbe } from "./drivers-system/host-memory.js";
import { EgressProxy, policyAllowsName } from "./egress/egress-proxy.js";
import { proxyTargetRefusal } from "./egress/proxy-targets.js";
import { upstreamResolver } from "./egress/upstream-resolve.js";
import { VmmCgroups } from "./host-cgroups/vmm-cgroups.js";
import { ImageCatalog } from "./images/image-catalog.js";
import { NetnsNetworkManager } from "./network/netns-network.js";
import { SlotAllocator } from "./network/slot-allocator.js";
import { startAgentServer } from "./rpc/agent-server.js";
import { createHostAgentService } from "./rpc/host-agent-service.js";
import { takenFromHostCache } from "./sandbox/image-snapshot-sharing.js";
import type { HostCapacity } from "./sandbox/sandbox-limits.js";
import { SandboxManager } from "./sandbox/sandbox-manager.js";
import { SandboxRecordStore } from "./sandbox/sandbox-record.js";
import { SnapshotStore } from "./sandbox/snapshot-store.js";
import { ImageSnapshotCache } from "./snapshot/image-snapshot-cache.js";
import { MemorySnapshotStore } from "./snapshot/memory-store.js";
import { Qcow2OverlayStore } from "./storage/qcow2-overlays.js";
import { startSandboxTrafficServer } from "./traffic/sandbox-traffic-server.js";
import { type AccelVerdict, probeAccel } from "./vmm/accel-probe.js";
import { defaultVmmOverheadMiB, hostTscKhz, QemuDriver, qemuVersion } from "./vmm/qemu-driver.js";
import { createVolumeService } from "./volumes/create-volumes.js";
import { serveVolumeContent, VOLUME_CONTENT_PREFIX } from "./volumes/volume-content-http.js";

export const AGENT_VERSION = "0.1.0";
const QEMU_BINARY = "qemu-system-x86_64";
const DEFAULT_IMAGE = "base";

export interface HostAgent {
  readonly port: number;
  /** The sandbox traffic listener's port. */
  readonly trafficPort: number;
  readonly config: AgentConfig;
  readonly manager: SandboxManager;
  readonly accel: AccelVerdict;
  /** The default image's snapshot, prepared in the background from start. */
  readonly defaultImageSnapshot: DefaultImageSnapshot;
  close(options?: { destroySandboxes?: boolean }): Promise<void>;
}

/** Probes KVM with the default image's kernel (or decides TCG without one). */
export async function probeAccelFromConfig(raw: Record<string, unknown>): Promise<AccelVerdict> {
  const imagesDir = String(raw.imagesDir);
  const requested = (raw.accel as AgentConfig["accel"] | undefined) ?? "auto";
  const image = await new ImageCatalog(imagesDir).get(DEFAULT_IMAGE).catch(() => null);
  if (!image) {
    if (requested === "kvm") throw new Error("KVM requested but no guest kernel to probe with");
    return { accel: "tcg", reason: "no guest image to probe KVM with yet; using TCG" };
  }
  return probeAccel({ requested, qemuBinary: QEMU_BINARY, kernelPath: image.kernelPath, timeoutMs: 5000 });
}

async function vmmRssBytes(pid: number | undefined): Promise<number> {
  if (!pid) return 0;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : 0;
}

/**
 * Wires the host agent: accel probe → VMM driver → network → disks → sandbox manager
 * → recovery of what a previous run left → RPC server. Resolves once it listens.
 */
export async function createHostAgent(input: AgentConfig, logger: Logger): Promise<HostAgent> {
  const config = parseAgentConfig(input);
  const sandboxesDir = join(config.dataDir, "sandboxes");
  await mkdir(sandboxesDir, { recursive: true });

  const accel = await probeAccelFromConfig({ imagesDir: config.imagesDir, accel: config.accel });
  logger.info("accelerator", { accel: accel.accel, reason: accel.reason });
  const cgroups = await VmmCgroups.detect(logger, undefined, config.netNamePrefix);
  const driver = new QemuDriver({
    accel: accel.accel,
    qemuBinary: QEMU_BINARY,
    tscKhz: await hostTscKhz(),
    tcgTbSizeMiB: config.tcgTbSizeMiB,
    guestAslr: config.guestAslr,
    // The VMM's own memory on top of guest RAM in its cgroup: the translation cache grows with its setting.
    vmmOverheadMiB: Math.max(256, defaultVmmOverheadMiB(accel.accel, config.tcgTbSizeMiB)),
    cgroups,
    logger,
  });
  const upstreams = await HostUpstreams.create(
    config.dnsUpstreams
      ? { kind: "fixed", upstreams: config.dnsUpstreams.map(parseUpstream) }
      : { kind: "resolv-conf", path: config.dnsResolvConfPath },
  );
  // The forwarder and the proxy read each slot's policy from the network manager made below.
  const policyOf = (slot: number) => network.policyOf(slot);
  const dns = new DnsForwarder({
    upstreams,
    port: config.dnsPort,
    upstreamTimeoutMs: config.dnsUpstreamTimeoutMs,
    maxInflightPerSandbox: config.dnsMaxInflightPerSandbox,
    allowsName: (slot, name) => policyAllowsName(policyOf(slot), name),
    logger,
  });
  const proxy = new EgressProxy({
    port: config.egressProxyPort,
    policyOf,
    resolve: upstreamResolver(upstreams, config.dnsUpstreamTimeoutMs),
    refuseTarget: proxyTargetRefusal(config.blockedEgressCidrs),
    logger,
  });
  logger.info("sandbox DNS forwarder", { upstreams: upstreams.describe(), port: config.dnsPort });
  const volumes = await createVolumeService(config, logger);
  const network: NetnsNetworkManager = new NetnsNetworkManager(logger, {
    namePrefix: config.netNamePrefix,
    uplinkInterface: config.uplinkInterface,
    blockedEgressCidrs: config.blockedEgressCidrs,
    dns,
    proxy,
    nfs: volumes ? { nfsPort: config.nfsPort, mountPort: config.nfsMountPort } : undefined,
  });
  await network.ensureHostRules();
  const slots = await SlotAllocator.create(
    join(config.dataDir, "slots.json"),
    config.maxSlots,
    config.firstSlot,
  );
  const disks = new Qcow2OverlayStore(sandboxesDir);
  const images = new ImageCatalog(config.imagesDir);
  const records = new SandboxRecordStore(sandboxesDir);
  const memoryDir = join(config.dataDir, "memory");
  await mkdir(memoryDir, { recursive: true });
  const memory = new MemorySnapshotStore(memoryDir, { maxDiffChain: config.maxMemoryDiffChain });
  const snapshots = await SnapshotStore.open(join(config.dataDir, "templates"));
  const imageSnapshotCache = await openImageSnapshotCache(config, logger);

  const capacity = hostCapacity(config);
  const manager = new SandboxManager(
    {
      driver,
      network,
      slots,
      disks,
      images,
      records,
      memory,
      snapshots,
      volumes,
      imageSnapshotCache,
      hostMemory: procMeminfoProbe(),
      logger,
    },
    {
      limits: {
        minVcpus: 1,
        maxVcpus: config.hostCores,
        minMemoryMiB: 128,
        maxMemoryMiB: Math.max(128, config.hostMemoryMiB - config.memoryReserveMiB),
        minDiskMiB: 256,
        maxDiskMiB: config.maxDiskMiB,
        maxTimeoutSec: config.maxTimeoutSec,
      },
      defaults: {
        vcpus: config.defaultVcpus,
        memoryMiB: config.defaultMemoryMiB,
        diskMiB: config.defaultDiskMiB,
        timeoutSec: config.defaultTimeoutSec,
        user: config.defaultUser,
      },
      envdReadyTimeoutMs: config.envdReadyTimeoutMs,
      envdPollIntervalMs: config.envdPollIntervalMs,
      envdRequestTimeoutMs: config.envdRequestTimeoutMs,
      maxConcurrentStarts: config.maxConcurrentStarts,
      imageSnapshots: config.imageSnapshots,
      capacity,
    },
  );

  const recovered = await manager.recover();
  await manager.snapshots.collectGarbage();
  if (recovered.adopted.length + recovered.cleaned.length > 0) logger.info("recovered sandboxes", recovered);
  // Anything a crashed run left that no record accounts for: slots, namespaces, cgroups.
  const inUse = manager.slotsInUse();
  for (const [slot] of slots.leases()) if (!inUse.has(slot)) await slots.release(slot);
  for (const record of manager.list()) {
    if (record.slot === undefined || record.state !== "running") continue;
    const slot = record.slot;
    await network
      .adopt(slot, record.networkPolicy ?? OPEN_POLICY)
      .catch((err: unknown) =>
        logger.warn("adopted sandbox's policy and listeners not restored", { slot, err }),
      );
  }
  // Grants of slots no adopted sandbox holds are dropped; the server starts or is adopted.
  await volumes?.start(inUse);
  const swept = await network.sweep(inUse);
  if (swept.length > 0) logger.info("swept leftover networks", { slots: swept });
  // Only a running sandbox has a VMM: a paused one's group holds at most the QEMU of a resume
  // the restart cut short (its pid never reached the record), which goes with the group.
  const reaped = await cgroups.reapStray(
    new Set(
      manager
        .list()
        .filter((r) => r.state === "running")
        .map((r) => r.id),
    ),
  );
  if (reaped.length > 0) logger.info("removed leftover VMM cgroups", { sandboxes: reaped });

  const defaultImageSnapshot = await prepareDefaultImageSnapshot(manager, images, config, logger);

  const traffic = await startSandboxTrafficServer({
    host: config.host,
    port: config.trafficPort,
    hostToken: config.hostToken,
    tlsCertPath: config.tlsCertPath,
    tlsKeyPath: config.tlsKeyPath,
    touch: (id) => manager.ping(id),
    sandboxAddress: async (id) => {
      // A request racing a resume or a pause waits for it to finish (bounded).
      await Promise.race([manager.settled(id), new Promise((r) => setTimeout(r, 60_000).unref())]);
      return manager.trafficAddress(id);
    },
    sandboxInstance: (id) => manager.vmmPid(id)?.toString(),
    sandboxState: (id) => manager.stateOf(id),
    hostRoutes: {
      prefix: VOLUME_CONTENT_PREFIX,
      serve: (req, res) => serveVolumeContent(req, res, volumes, logger),
    },
    logger,
  });
  const service = createHostAgentService(manager, {
    version: AGENT_VERSION,
    hostId: config.hostId,
    vmm: driver.name,
    accel: accel.accel,
    accelReason: accel.reason,
    capacity: {
      vcpus: capacity.vcpus,
      memoryMiB: capacity.memoryMiB,
      diskMiB: Math.floor((await fileSystemMiB(config.dataDir)) * config.diskOvercommit),
    },
    trafficPort: traffic.port,
    listImages: () => images.list(),
    vmmRssBytes,
    volumes,
    volumeDefaultSizeMiB: config.volumeDefaultSizeMiB,
  });
  const server = await startAgentServer(service, {
    host: config.host,
    port: config.port,
    hostToken: config.hostToken,
    tlsCertPath: config.tlsCertPath,
    tlsKeyPath: config.tlsKeyPath,
    // The agent's messages are lifecycle calls; files and output go through the traffic hop.
    readMaxBytes: 4 * 1024 * 1024,
  }).catch(async (err: unknown) => {
    await Promise.all([traffic.close(), dns.close(), proxy.close()]);
    throw err;
  });
  logger.info("host agent listening", {
    port: server.port,
    trafficPort: traffic.port,
    accel: accel.accel,
    cgroups: cgroups.description,
  });

  return {
    port: server.port,
    trafficPort: traffic.port,
    config,
    manager,
    accel,
    defaultImageSnapshot,
    async close(options = {}) {
      // VMM processes and their exit pollers do not hold the event loop open (they are
      // meant to outlive the agent), so without this the process could run out of work
      // and exit in the middle of destroying a sandbox.
      const keepAlive = setInterval(() => {}, 1000);
      try {
        await closeAll(options);
      } finally {
        clearInterval(keepAlive);
      }
    },
  };

  async function closeAll(options: { destroySandboxes?: boolean }): Promise<void> {
    await Promise.all([server.close(), traffic.close()]);
    await manager.close({ destroyAll: options.destroySandboxes ?? false });
    // Sandboxes left running lose their resolver until the next agent adopts them.
    await Promise.all([dns.close(), proxy.close()]);
    // The volume server outlives the agent like the VMMs, unless the sandboxes went too.
    if (options.destroySandboxes) await volumes?.stop({ unmount: true });
    // Nothing left to hold: the agent's parent cgroup goes too (a busy one stays).
    if (manager.list().length === 0) await cgroups.removeParent().catch(() => {});
  }
}

/** What the agent does about the default image's snapshot at start. */
export interface DefaultImageSnapshot {
  image: string;
  /** True when it is being built now (a cold boot); false when it exists, is off, or has no image. */
  building: boolean;
  /**
   * Resolves once ready (ms: the build's time, 0 when it existed; fromCache: taken from the host
   * cache, no cold boot); rejects when the build failed.
   */
  ready: Promise<{ ms: number; fromCache: boolean } | undefined>;
}

/** Starts building the default image's snapshot at the default size unless it exists (see ImageSnapshots). */
async function prepareDefaultImageSnapshot(
  manager: SandboxManager,
  images: ImageCatalog,
  config: AgentConfig,
  logger: Logger,
): Promise<DefaultImageSnapshot> {
  const snapshots = manager.imageSnapshots;
  const image = snapshots ? await images.get(DEFAULT_IMAGE).catch(() => null) : null;
  if (!snapshots || !image) {
    if (snapshots)
      logger.info("no default image yet; its snapshot is made on first create", { image: DEFAULT_IMAGE });
    return { image: DEFAULT_IMAGE, building: false, ready: Promise.resolve(undefined) };
  }
  const sizes = { vcpus: config.defaultVcpus, memoryMiB: config.defaultMemoryMiB };
  const building = !snapshots.has(image, sizes);
  const started = performance.now();
  const ready = snapshots.ready(image, sizes).then(
    (snapshot) => ({
      ms: building ? Math.round(performance.now() - started) : 0,
      fromCache: takenFromHostCache(snapshot),
    }),
    (err: unknown) => {
      logger.error("default image snapshot failed; the next create tries again", {
        image: DEFAULT_IMAGE,
        err,
      });
      throw err;
    },
  );
  ready.catch(() => {});
  return { image: DEFAULT_IMAGE, building, ready };
}

/** The host-wide image snapshot cache (unless off), with entries of removed image builds dropped. */
async function openImageSnapshotCache(
  config: AgentConfig,
  logger: Logger,
): Promise<ImageSnapshotCache | undefined> {
  const dir = imageSnapshotCacheDirOf(config);
  if (!config.imageSnapshots || !dir) return undefined;
  const cache = new ImageSnapshotCache({ dir, vmm: await qemuVersion(QEMU_BINARY), logger });
  await cache.collect().catch((err: unknown) => logger.warn("image snapshot cache cleanup failed", { err }));
  logger.info("image snapshot cache", { dir });
  return cache;
}

/** What this host hands out to sandboxes (the agent enforces it and reports it in Ping). */
export function hostCapacity(
  config: Pick<
    AgentConfig,
    | "hostCores"
    | "vcpuOvercommit"
    | "hostMemoryMiB"
    | "memoryReserveMiB"
    | "memoryOvercommit"
    | "minAvailableMemoryMiB"
  >,
): Required<HostCapacity> {
  return {
    vcpus: Math.floor(config.hostCores * config.vcpuOvercommit),
    memoryMiB: Math.floor(
      Math.max(128, config.hostMemoryMiB - config.memoryReserveMiB) * config.memoryOvercommit,
    ),
    minAvailableMemoryMiB: config.minAvailableMemoryMiB,
  };
}

/** Size of the file system holding `path`, in MiB. */
async function fileSystemMiB(path: string): Promise<number> {
  const fs = await statfs(path);
  return Math.floor((fs.blocks * fs.bsize) / 1024 / 1024);
}
