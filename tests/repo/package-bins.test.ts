import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");

/** Every `bin` of every workspace package, as [package, command, file]. */
function packageBins(): Array<[string, string, string]> {
  const out: Array<[string, string, string]> = [];
  for (const pkg of readdirSync(join(ROOT, "packages"))) {
    const manifest = JSON.parse(readFileSync(join(ROOT, "packages", pkg, "package.json"), "utf8")) as {
      bin?: Record<string, string>;
    };
    for (const [command, file] of Object.entries(manifest.bin ?? {})) {
      out.push([pkg, command, join(ROOT, "packages", pkg, file)]);
    }
  }
  return out;
}

describe("package bins run under plain node", () => {
  const bins = packageBins();

  it("finds the bins", () => {
    expect(bins.map(([, command]) => command).sort()).toEqual(["envd", "wrenn", "wrenn-agent", "wrenn-cp"]);
  });

  it.each(bins)("%s's %s is an executable JavaScript file that node loads", (_pkg, _command, file) => {
    expect(file).toMatch(/\.m?js$/);
    accessSync(file, constants.X_OK);
    // `help` is a usage line for every command here; a bin node cannot load fails earlier
    // with ERR_UNKNOWN_FILE_EXTENSION or ERR_MODULE_NOT_FOUND.
    const run = spawnSync(process.execPath, [file, "help"], { encoding: "utf8", timeout: 30_000 });
    expect(run.stderr).not.toMatch(/ERR_UNKNOWN_FILE_EXTENSION|ERR_MODULE_NOT_FOUND/);
  });

  it("`envd --no-vm` starts and answers /health", async () => {
    const file = bins.find(([, command]) => command === "envd")?.[2] ?? "";
    const child = spawn(process.execPath, [file, "--no-vm", "--port", "0", "--host", "127.0.0.1"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const port = await new Promise<number>((done, fail) => {
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /envd listening on (\d+)/.exec(out);
          if (m) done(Number(m[1]));
        });
        child.once("exit", (code) => fail(new Error(`envd exited with ${code} before listening`)));
      });
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      expect(res.status).toBeLessThan(300);
    } finally {
      child.kill("SIGTERM");
    }
  }, 60_000);
});
