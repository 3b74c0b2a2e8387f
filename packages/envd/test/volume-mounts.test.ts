import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nfsMountArgs } from "../src/http/volume-mounts-route.js";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";

/**
 * envd's volume mount routes outside a VM (the mount itself is tested on real VMs in
 * tests/e2e/agent-volumes.test.ts): the mount command, the token, and input checks.
 */
describe("envd /volumes/mount and /volumes/unmount", () => {
  let fx: EnvdFixture;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${fx.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    fx = await startEnvd();
  });
  afterAll(() => fx.close());

  it("mounts NFSv3 over TCP from the gateway, without locks, by the kernel's own options", () => {
    expect(nfsMountArgs("vol-abc", "/mnt/data")).toEqual([
      "-t",
      "nfs",
      "-o",
      "vers=3,proto=tcp,port=2049,mountproto=tcp,mountport=20048,nolock,hard,addr=169.254.0.22,mountaddr=169.254.0.22",
      "169.254.0.22:/v/vol-abc",
      "/mnt/data",
    ]);
  });

  it("needs the access token once one is set", async () => {
    fx.envd.ctx.state.accessToken = "0123456789abcdef0123456789abcdef";
    try {
      expect((await post("/volumes/mount", { mounts: [] })).status).toBe(401);
      expect((await post("/volumes/unmount", { paths: [] })).status).toBe(401);
    } finally {
      fx.envd.ctx.state.accessToken = undefined;
    }
  });

  it("refuses bad volume ids and bodies (400), and mounting outside a VM (501)", async () => {
    const bad = await post("/volumes/mount", { mounts: [{ volumeId: "../etc", path: "/mnt/x" }] });
    expect(bad.status).toBe(400);
    expect((await post("/volumes/unmount", { paths: "x" })).status).toBe(400);
    expect((await post("/volumes/mount", { mounts: [{ volumeId: "vol-a", path: "/mnt/x" }] })).status).toBe(
      501,
    );
  });
});
