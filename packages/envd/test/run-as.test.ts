import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSilentLogger } from "@wrenn/shared";
import type { Sandbox } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRunAs, hasSupplementaryGroups } from "../src/process/run-as.js";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";

const isRoot = process.getuid?.() === 0;
const USER = { name: "user", uid: 1000, gid: 1000, home: "/home/user", shell: "/bin/bash" };

describe("running commands as another user", () => {
  const dir = mkdtempSync(join(tmpdir(), "wrenn-run-as-"));
  const groupFile = join(dir, "group");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads supplementary group membership from the group file", async () => {
    writeFileSync(groupFile, "root:x:0:\nsudo:x:27:alice,bob\nuser:x:1000:\n");
    expect(await hasSupplementaryGroups("bob", groupFile)).toBe(true);
    expect(await hasSupplementaryGroups("user", groupFile)).toBe(false);
    expect(await hasSupplementaryGroups("user", join(dir, "missing"))).toBe(true);
  });

  it.skipIf(!isRoot)(
    "spawns directly only for a piped process of a user without supplementary groups",
    async () => {
      writeFileSync(groupFile, "user:x:1000:\n");
      const runAs = createRunAs(createSilentLogger(), 0, groupFile);
      expect(await runAs(USER, "/bin/true", [], { pty: false })).toEqual({
        file: "/bin/true",
        args: [],
        uid: 1000,
        gid: 1000,
      });
      expect((await runAs(USER, "/bin/true", [], { pty: true })).args).toContain("--init-groups");
      writeFileSync(groupFile, "user:x:1000:\ndocker:x:999:user\n");
      expect((await runAs(USER, "/bin/true", [], { pty: false })).args).toContain("--init-groups");
    },
  );

  // Whichever way envd starts it, a process has exactly the groups a login of the user gets.
  describe.skipIf(!isRoot)("a real envd", () => {
    let fx: EnvdFixture;
    let sandbox: Sandbox;
    beforeAll(async () => {
      try {
        execFileSync("id", ["user"], { stdio: "ignore" });
      } catch {
        execFileSync("useradd", ["-m", "-s", "/bin/bash", "user"]);
      }
      fx = await startEnvd();
      sandbox = await fx.connectSdk();
    });
    afterAll(() => fx.close());

    it("gives piped and terminal processes the user's login groups", async () => {
      const expected = execFileSync("id", ["-G", "user"], { encoding: "utf8" }).trim().split(" ").sort();
      const piped = await sandbox.commands.run("id -G", { user: "user" });
      expect(piped.stdout.trim().split(" ").sort()).toEqual(expected);
      expect((await sandbox.commands.run("id -u", { user: "user" })).stdout.trim()).toBe(
        execFileSync("id", ["-u", "user"], { encoding: "utf8" }).trim(),
      );
    });
  });
});
