/**
 * The guest image as guest/build.sh leaves it, checked without booting: manifest, kernel files,
 * the initramfs's modules and their order, and the rootfs's contents (read with debugfs and
 * cpio, no mounts). Booting it is guest/boot-test.sh's job and the host agent's tests'.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join, resolve } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, "../..");
const BUILD_SCRIPT = join(REPO, "guest/build.sh");
const IMAGE_NAME = "base";
const IMAGES_DIR = join(process.env.WRENN_DIR || join(homedir(), ".wrenn"), "images");
const isRoot = process.getuid?.() === 0;

interface Manifest {
  format: number;
  name: string;
  hash: string;
  builtAt: string;
  buildSeconds: number;
  kernelVersion: string;
  kernelPackage: string;
  nodeVersion: string;
  suite: string;
  initrdModules: string[];
  files: Record<string, { bytes: number; allocatedBytes?: number }>;
  kernelArgs: string;
  envd: { path: string; port: number; readyLine: string };
  guest: { ip: string; gateway: string; prefixLength: number; user: string; uid: number; home: string };
}

/** The extra CA certificates build.sh puts in the image (its default source, or WRENN_GUEST_CA_CERTS). */
function hostExtraCaCerts(): { path: string; relative: string }[] {
  const dir = process.env.WRENN_GUEST_CA_CERTS || "/usr/local/share/ca-certificates";
  if (dir === "none" || !existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((name) => name.endsWith(".crt"))
    .map((relative) => ({ path: join(dir, relative), relative }));
}

/** The base64 bodies of every PEM certificate in `text`, whitespace removed. */
function pemBodies(text: string): Set<string> {
  const bodies = new Set<string>();
  for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)) {
    bodies.add((m[1] ?? "").replace(/\s+/g, ""));
  }
  return bodies;
}

async function buildImage(): Promise<{ dir: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  const { stdout, stderr } = await run("bash", [BUILD_SCRIPT, "--name", IMAGE_NAME], {
    maxBuffer: 16 * 1024 * 1024,
    timeout: 20 * 60_000,
  });
  return { dir: stdout.trim().split("\n").at(-1) ?? "", stderr, ms: Date.now() - t0 };
}

describe.skipIf(!isRoot)("guest image (guest/build.sh)", () => {
  let dir = "";
  let manifest: Manifest;
  let rootfs = "";

  /** Runs one debugfs request against the rootfs (read-only, no mount). */
  async function debugfs(request: string): Promise<string> {
    const { stdout } = await run("debugfs", ["-R", request, rootfs], { maxBuffer: 256 * 1024 * 1024 });
    return stdout;
  }

  async function statInRootfs(path: string): Promise<{ mode: number; uid: number; size: number } | null> {
    const out = await debugfs(`stat ${path}`);
    const mode = /Mode:\s+(\d+)/.exec(out);
    const owner = /User:\s+(\d+)/.exec(out);
    const size = /Size:\s+(\d+)/.exec(out);
    if (!mode?.[1] || !owner?.[1] || !size?.[1]) return null;
    return { mode: Number.parseInt(mode[1], 8), uid: Number(owner[1]), size: Number(size[1]) };
  }

  beforeAll(async () => {
    const built = await buildImage();
    dir = built.dir;
    manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Manifest;
    rootfs = join(dir, "rootfs.ext4");
  }, 20 * 60_000);

  it("is the current build of its name, addressed by its hash", () => {
    expect(realpathSync(join(IMAGES_DIR, IMAGE_NAME, "current"))).toBe(realpathSync(dir));
    expect(basename(dir)).toBe(manifest.hash);
    expect(manifest.hash).toMatch(/^[0-9a-f]{24}$/);
  });

  it("has a manifest the host agent can use", () => {
    expect(manifest.format).toBe(1);
    expect(manifest.name).toBe(IMAGE_NAME);
    expect(manifest.kernelVersion).toMatch(/^\d+\.\d+\.\d+-\d+-cloud-amd64$/);
    expect(manifest.kernelPackage).toContain(manifest.kernelVersion);
    expect(manifest.nodeVersion).toMatch(/^22\.\d+\.\d+$/);
    expect(manifest.suite).toBe("bookworm");
    expect(Number.isNaN(Date.parse(manifest.builtAt))).toBe(false);
    expect(manifest.buildSeconds).toBeGreaterThan(0);
    expect(manifest.kernelArgs).toContain("init=/usr/local/sbin/wrenn-init");
    expect(manifest.kernelArgs).not.toMatch(/console=|root=|ip=/);
    expect(manifest.envd).toEqual({
      path: "/opt/envd/envd.mjs",
      port: 49983,
      readyLine: "envd listening on 49983",
    });
    expect(manifest.guest).toMatchObject({ ip: "169.254.0.21", gateway: "169.254.0.22", prefixLength: 30 });
    for (const name of ["vmlinuz", "vmlinux", "initrd.img", "rootfs.ext4"]) {
      expect(manifest.files[name]?.bytes, name).toBe(statSync(join(dir, name)).size);
    }
    expect(manifest.files["rootfs.ext4"]?.bytes).toBe(2 * 1024 ** 3);
  });

  it("has a bzImage kernel and the ELF vmlinux extracted from it", () => {
    const bz = readFileSync(join(dir, "vmlinuz"));
    expect(bz.subarray(0x202, 0x206).toString("latin1")).toBe("HdrS");
    const elf = readFileSync(join(dir, "vmlinux")).subarray(0, 5);
    expect([...elf]).toEqual([0x7f, 0x45, 0x4c, 0x46, 2]); // ELF, 64-bit
  });

  it("has an initramfs with our init, busybox and the virtio modules in dependency order", async () => {
    const initrd = join(dir, "initrd.img");
    const { stdout: listing } = await run("sh", ["-c", 'gzip -dc "$1" | cpio -it --quiet', "sh", initrd]);
    const files = listing.split("\n");
    expect(files).toContain("init");
    expect(files).toContain("bin/busybox");
    const { stdout: order } = await run("sh", [
      "-c",
      'gzip -dc "$1" | cpio -i --quiet --to-stdout etc/modules-order',
      "sh",
      initrd,
    ]);
    const modules = order.trim().split("\n");
    expect(modules).toEqual(manifest.initrdModules);
    for (const mod of modules) expect(files, mod).toContain(`lib/modules/${mod}.ko`);
    const before = (a: string, b: string) => {
      expect(modules.indexOf(a), `${a} before ${b}`).toBeGreaterThanOrEqual(0);
      expect(modules.indexOf(a), `${a} before ${b}`).toBeLessThan(modules.indexOf(b));
    };
    before("virtio_ring", "virtio");
    before("virtio", "virtio_mmio");
    before("virtio_mmio", "virtio_blk");
    before("failover", "net_failover");
    before("net_failover", "virtio_net");
    before("vsock", "vmw_vsock_virtio_transport_common");
    before("vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport");
    for (const mod of ["virtio-rng", "virtio_console"]) expect(modules).toContain(mod);
  });

  it("has wrenn-init, node and the envd bundle in the rootfs", async () => {
    const init = await statInRootfs("/usr/local/sbin/wrenn-init");
    expect(init?.mode).toBe(0o755);
    expect(await debugfs("cat /usr/local/sbin/wrenn-init")).toBe(
      readFileSync(join(REPO, "guest/rootfs/wrenn-init"), "utf8"),
    );
    const node = await statInRootfs("/usr/local/bin/node");
    expect(node?.mode).toBe(0o755);
    expect(node?.size).toBeGreaterThan(50 * 1024 * 1024);
    expect((await statInRootfs(manifest.envd.path))?.size).toBeGreaterThan(0);
    expect(await statInRootfs("/opt/envd/node_modules/node-pty/build/Release/pty.node")).not.toBeNull();
    expect(await statInRootfs("/opt/envd/node_modules/node-pty/lib/index.js")).not.toBeNull();
    for (const tool of [
      "/usr/bin/tini",
      "/usr/sbin/chronyd",
      "/usr/bin/socat",
      "/usr/bin/sudo",
      "/usr/bin/git",
    ]) {
      expect(await statInRootfs(tool), tool).not.toBeNull();
    }
    expect(await statInRootfs("/usr/bin/python3")).not.toBeNull();
    expect(await statInRootfs("/usr/bin/curl")).not.toBeNull();
  });

  it("trusts the build host's extra CA certificates, for Node too", async () => {
    const certs = hostExtraCaCerts();
    const bundle = pemBodies(await debugfs("cat /etc/ssl/certs/ca-certificates.crt"));
    expect(bundle.size).toBeGreaterThan(100); // Debian's own, regenerated with ours
    for (const cert of certs) {
      const copied = await statInRootfs(`/usr/local/share/ca-certificates/wrenn-build/${cert.relative}`);
      expect(copied, cert.relative).not.toBeNull();
      for (const body of pemBodies(readFileSync(cert.path, "utf8"))) {
        expect(bundle.has(body), `${cert.relative} in the guest's bundle`).toBe(true);
      }
    }
    expect(await debugfs("cat /etc/environment")).toContain(
      "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt",
    );
    expect(await debugfs("cat /etc/sudoers.d/wrenn-env")).toContain("NODE_EXTRA_CA_CERTS");
  });

  it("has npm (with npx) for Node 22 and pip", async () => {
    const npmVersion = /^GUEST_NPM_VERSION="([^"]+)"/m.exec(
      readFileSync(join(REPO, "guest/versions.sh"), "utf8"),
    )?.[1];
    const pkg = JSON.parse(await debugfs("cat /usr/local/lib/node_modules/npm/package.json")) as {
      version: string;
    };
    expect(pkg.version).toBe(npmVersion);
    for (const [link, target] of [
      ["/usr/local/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js"],
      ["/usr/local/bin/npx", "../lib/node_modules/npm/bin/npx-cli.js"],
    ] as const) {
      expect(await debugfs(`stat ${link}`), link).toContain(`Fast link dest: "${target}"`);
    }
    expect((await statInRootfs("/usr/local/lib/node_modules/npm/bin/npm-cli.js"))?.mode).toBe(0o755);
    expect(await statInRootfs("/usr/bin/pip3")).not.toBeNull();
    expect(await statInRootfs("/usr/lib/python3/dist-packages/pip/__init__.py")).not.toBeNull();
    expect(await debugfs("cat /etc/pip.conf")).toContain("break-system-packages = true");
  });

  it("has user `user` (uid 1000, /home/user) with passwordless sudo", async () => {
    const passwd = await debugfs("cat /etc/passwd");
    expect(passwd).toMatch(/^user:x:1000:1000:[^:]*:\/home\/user:\/bin\/bash$/m);
    const home = await statInRootfs("/home/user");
    expect(home?.uid).toBe(1000);
    expect(await debugfs("cat /etc/sudoers.d/user")).toContain("user ALL=(ALL:ALL) NOPASSWD: ALL");
    expect((await debugfs("cat /etc/hostname")).trim()).toBe("sandbox");
  });

  it("is trimmed (no apt lists, docs or man pages)", async () => {
    // `ls -p` lines look like /inode/mode/uid/gid/name/size/.
    const entries = async (path: string) =>
      (await debugfs(`ls -p ${path}`))
        .split("\n")
        .map((line) => line.split("/")[5] ?? "")
        .filter((name) => name !== "" && name !== "." && name !== "..");
    expect(await entries("/var/lib/apt/lists")).toEqual([]);
    expect(await entries("/usr/share/man")).toEqual([]);
    expect(await entries("/usr/share/doc")).toEqual([]);
  });

  it("is a no-op to build again with unchanged inputs", async () => {
    // Built twice here rather than compared with beforeAll's build: envd's sources may change
    // in between while someone works on them.
    const first = await buildImage();
    const again = await buildImage();
    expect(again.dir).toBe(first.dir);
    expect(again.stderr).toContain("up to date");
    expect(again.ms).toBeLessThan(5_000);
  });
});
