import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEnvironmentFile } from "../src/process/image-env.js";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";

describe("image environment (/etc/environment in a VM)", () => {
  it("parses pam_env's simple form", () => {
    const text = [
      "# comment",
      "",
      "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt",
      'QUOTED="a b"',
      "SINGLE='c'",
      "export EXPORTED=1",
      "not an assignment",
      "1BAD=x",
      "EMPTY=",
    ].join("\n");
    expect(parseEnvironmentFile(text)).toEqual({
      NODE_EXTRA_CA_CERTS: "/etc/ssl/certs/ca-certificates.crt",
      QUOTED: "a b",
      SINGLE: "c",
      EXPORTED: "1",
      EMPTY: "",
    });
  });

  describe("applied by a real envd to the processes it starts", () => {
    let fx: EnvdFixture;
    const file = join(process.env.TMPDIR ?? "/tmp", `wrenn-image-env-${process.pid}`);
    beforeAll(async () => {
      writeFileSync(file, "WRENN_IMAGE_A=from-image\nWRENN_IMAGE_B=from-image\n");
      fx = await startEnvd({ imageEnvFile: file });
    });
    afterAll(async () => {
      await fx.close();
      rmSync(file, { force: true });
    });

    it("under the sandbox's and the request's env vars", async () => {
      const res = await fetch(`${fx.url}/init`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ envVars: { WRENN_IMAGE_B: "from-sandbox" } }),
      });
      expect(res.status).toBe(204);
      const sandbox = await fx.connectSdk();
      const out = await sandbox.commands.run('echo "$WRENN_IMAGE_A $WRENN_IMAGE_B"');
      expect(out.stdout.trim()).toBe("from-image from-sandbox");
      const overridden = await sandbox.commands.run('echo "$WRENN_IMAGE_A"', {
        envs: { WRENN_IMAGE_A: "req" },
      });
      expect(overridden.stdout.trim()).toBe("req");
    });
  });
});
