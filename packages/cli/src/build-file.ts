import type { TemplateSpec, TemplateStep } from "@wrenn/sdk";
import { BuildFileError, type LogicalLine, logicalLines, splitWords, takeFlags } from "./build-file-lines.js";
import { quoteShellWord } from "./command-line.js";

/**
 * The build file (`wrenn.template`): Dockerfile-like instructions, one per line, turned into
 * a template build. Pure: text in, spec out; copy sources stay paths relative to the file's
 * directory (the CLI packs and uploads them). The format is documented in packages/cli/README.md.
 */

/** What a build file describes; `name` is optional there (the CLI's --name gives it). */
export type BuildFileSpec = Omit<TemplateSpec, "name"> & { name?: string };

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/;
const USER_RE = /^[a-z_][a-z0-9_-]*$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const APT_ENV = "DEBIAN_FRONTEND=noninteractive";

/** `APT a b` → the command that installs Debian packages a and b (run as root). */
export function aptCommand(packages: string[]): string {
  const names = packages.map(quoteShellWord).join(" ");
  return `apt-get update && ${APT_ENV} apt-get install -y --no-install-recommends ${names}`;
}

/** `PIP a b` → pip (installed from Debian when missing) installing a and b system-wide (as root). */
export function pipCommand(args: string[]): string {
  return [
    `if ! command -v pip3 >/dev/null; then apt-get update && ${APT_ENV} apt-get install -y --no-install-recommends python3-pip; fi`,
    // Debian marks its Python as externally managed; a template's VM is the environment.
    `pip3 install --break-system-packages ${args.map(quoteShellWord).join(" ")}`,
  ].join(" && ");
}

/** `NPM args` → `npm install args` (npm installed from Debian when missing). */
export function npmCommand(args: string[]): string {
  return [
    `if ! command -v npm >/dev/null; then sudo sh -c 'apt-get update && ${APT_ENV} apt-get install -y --no-install-recommends npm'; fi`,
    `npm install ${args.map(quoteShellWord).join(" ")}`,
  ].join(" && ");
}

/** `READY port 8000` / `url …` / `file …` / a command line → the ready check's command. */
export function readyCommand(rest: string, line: number): string {
  const [kind, ...args] = splitWords(rest, line);
  const arg = args[0];
  const one = (what: string) => {
    if (args.length !== 1 || !arg) throw new BuildFileError(line, `READY ${kind}: expected one ${what}`);
    return arg;
  };
  switch (kind) {
    case "port": {
      const port = one("port number");
      if (!/^\d{1,5}$/.test(port) || Number(port) > 65535 || Number(port) === 0) {
        throw new BuildFileError(line, `READY port: ${JSON.stringify(port)} is not a port number`);
      }
      return `ss -Htln ${quoteShellWord(`sport = :${port}`)} | grep -q .`;
    }
    case "url":
      return `curl -fsS -o /dev/null ${quoteShellWord(one("URL"))}`;
    case "file":
      return `test -e ${quoteShellWord(one("path"))}`;
    default:
      return rest;
  }
}

function positiveInt(words: string[], line: number, keyword: string, unit: string): number {
  const [value, extra] = words;
  if (value === undefined || extra !== undefined || !/^\d+$/.test(value) || Number(value) === 0) {
    throw new BuildFileError(line, `${keyword}: expected one whole number (${unit})`);
  }
  return Number(value);
}

function checkUser(name: string | undefined, line: number, keyword: string): string | undefined {
  if (name !== undefined && !USER_RE.test(name)) {
    throw new BuildFileError(line, `${keyword}: ${JSON.stringify(name)} is not a Linux user name`);
  }
  return name;
}

/** Parses a build file into a spec, or throws BuildFileError naming the line. */
export function parseBuildFile(source: string): BuildFileSpec {
  const spec: BuildFileSpec = {};
  const steps: TemplateStep[] = [];
  const tags: string[] = [];
  const once = new Set<string>();
  for (const { line, text } of logicalLines(source)) {
    const m = /^(\S+)\s*([\s\S]*)$/.exec(text);
    const keyword = (m?.[1] ?? "").toUpperCase();
    const rest = m?.[2] ?? "";
    if (["FROM", "NAME", "CPU", "MEMORY", "DISK", "START", "READY"].includes(keyword)) {
      if (once.has(keyword)) throw new BuildFileError(line, `${keyword} may appear only once`);
      once.add(keyword);
    }
    const words = () => splitWords(rest, line);
    const needRest = () => {
      if (rest === "") throw new BuildFileError(line, `${keyword}: missing its argument`);
      return rest;
    };
    parseInstruction({ line, text }, keyword, { spec, steps, tags, words, needRest, rest });
  }
  if (steps.length > 0) spec.steps = steps;
  if (tags.length > 0) spec.tags = tags;
  return spec;
}

interface ParseState {
  spec: BuildFileSpec;
  steps: TemplateStep[];
  tags: string[];
  rest: string;
  words: () => string[];
  needRest: () => string;
}

function parseInstruction(at: LogicalLine, keyword: string, s: ParseState): void {
  const { line } = at;
  const { spec, steps } = s;
  switch (keyword) {
    case "FROM": {
      const w = s.words();
      if (w.length === 1 && w[0] && w[0].toLowerCase() !== "template") spec.from = { image: w[0] };
      else if (w.length === 2 && w[0]?.toLowerCase() === "template" && w[1]) spec.from = { template: w[1] };
      else throw new BuildFileError(line, "FROM: expected an image (FROM base) or FROM template <name>");
      return;
    }
    case "NAME": {
      const [name, extra] = s.words();
      if (!name || extra !== undefined || !NAME_RE.test(name)) {
        throw new BuildFileError(line, "NAME: expected one template name (letters, digits, '.', '_', '-')");
      }
      spec.name = name;
      return;
    }
    case "TAG": {
      const w = s.words();
      if (w.length === 0) throw new BuildFileError(line, "TAG: missing the tag");
      s.tags.push(...w);
      return;
    }
    case "CPU":
      spec.vcpus = positiveInt(s.words(), line, keyword, "vCPUs");
      return;
    case "MEMORY":
      spec.memoryMiB = positiveInt(s.words(), line, keyword, "MiB");
      return;
    case "DISK":
      spec.diskMiB = positiveInt(s.words(), line, keyword, "MiB");
      return;
    case "ENV": {
      const vars: Record<string, string> = {};
      for (const pair of s.words()) {
        const eq = pair.indexOf("=");
        const key = pair.slice(0, eq);
        if (eq <= 0 || !ENV_KEY_RE.test(key)) {
          throw new BuildFileError(line, `ENV: ${JSON.stringify(pair)} is not KEY=VALUE`);
        }
        vars[key] = pair.slice(eq + 1);
      }
      if (Object.keys(vars).length === 0) throw new BuildFileError(line, "ENV: expected KEY=VALUE pairs");
      steps.push({ type: "env", vars });
      return;
    }
    case "APT":
    case "PIP":
    case "NPM": {
      const w = s.words();
      if (w.length === 0) throw new BuildFileError(line, `${keyword}: name at least one package`);
      if (keyword === "APT") steps.push({ type: "run", command: aptCommand(w), user: "root" });
      else if (keyword === "PIP") steps.push({ type: "run", command: pipCommand(w), user: "root" });
      else {
        const global = w.includes("-g") || w.includes("--global");
        steps.push({ type: "run", command: npmCommand(w), ...(global ? { user: "root" } : {}) });
      }
      return;
    }
    case "COPY": {
      const { flags, rest } = takeFlags(s.needRest(), ["user", "mode"], line, keyword);
      const w = splitWords(rest, line);
      const dest = w.pop();
      if (w.length === 0 || !dest) throw new BuildFileError(line, "COPY: expected <src>… <dest>");
      if (flags.mode !== undefined && !/^0?[0-7]{3,4}$/.test(flags.mode)) {
        throw new BuildFileError(line, `COPY: --mode=${flags.mode} is not an octal mode such as 0644`);
      }
      const user = checkUser(flags.user, line, keyword);
      for (const src of w) {
        steps.push({
          type: "copy",
          src,
          dest,
          ...(user ? { user } : {}),
          ...(flags.mode ? { mode: flags.mode } : {}),
        });
      }
      return;
    }
    case "WORKDIR": {
      const [path, extra] = s.words();
      if (!path || extra !== undefined) throw new BuildFileError(line, "WORKDIR: expected one path");
      steps.push({ type: "workdir", path });
      return;
    }
    case "USER": {
      const [name, extra] = s.words();
      if (!name || extra !== undefined) throw new BuildFileError(line, "USER: expected one user name");
      steps.push({ type: "user", name: checkUser(name, line, keyword) ?? name });
      return;
    }
    case "RUN": {
      const { flags, rest } = takeFlags(s.needRest(), ["user"], line, keyword);
      if (rest === "") throw new BuildFileError(line, "RUN: missing the command");
      const user = checkUser(flags.user, line, keyword);
      steps.push({ type: "run", command: rest, ...(user ? { user } : {}) });
      return;
    }
    case "START":
      spec.startCmd = s.needRest();
      return;
    case "READY": {
      const { flags, rest } = takeFlags(s.needRest(), ["timeout"], line, keyword);
      if (rest === "") throw new BuildFileError(line, "READY: missing the check");
      if (flags.timeout !== undefined) {
        spec.readyTimeoutSec = positiveInt([flags.timeout], line, "READY --timeout", "seconds");
      }
      spec.readyCmd = readyCommand(rest, line);
      return;
    }
    default:
      throw new BuildFileError(
        line,
        `unknown instruction ${JSON.stringify(at.text.split(/\s/)[0])} (known: FROM NAME TAG CPU MEMORY DISK ENV APT PIP NPM COPY WORKDIR USER RUN START READY)`,
      );
  }
}
