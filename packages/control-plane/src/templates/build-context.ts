import { posix } from "node:path";
import type { BuildStep } from "@wrenn/api";

/** Who runs steps and owns copied files when no `user` step says otherwise (as in E2B's base). */
export const DEFAULT_BUILD_USER = "user";

/** What a build's steps have set so far: env vars, the current user and workdir. */
export interface BuildContext {
  env: Record<string, string>;
  user: string;
  /** Unset means the current user's home. */
  workdir: string | null;
}

export function initialContext(): BuildContext {
  return { env: {}, user: DEFAULT_BUILD_USER, workdir: null };
}

export function homeOf(user: string): string {
  return user === "root" ? "/root" : `/home/${user}`;
}

/** The directory steps run in: the workdir, or the user's home. */
export function cwdOf(ctx: BuildContext): string {
  return ctx.workdir ?? homeOf(ctx.user);
}

/** A relative workdir is taken from the previous one, or from "/". */
export function resolveWorkdir(ctx: BuildContext, path: string): string {
  return posix.resolve(ctx.workdir ?? "/", path);
}

/** A relative copy destination is taken from the workdir (or the user's home); a trailing "/" is kept. */
export function resolveDest(ctx: BuildContext, dest: string): string {
  const resolved = posix.resolve(cwdOf(ctx), dest);
  return dest.endsWith("/") && resolved !== "/" ? `${resolved}/` : resolved;
}

/** The context after a step (pure: the same steps always give the same context). */
export function applyStep(ctx: BuildContext, step: BuildStep): BuildContext {
  switch (step.type) {
    case "env":
      return { ...ctx, env: { ...ctx.env, ...step.vars } };
    case "workdir":
      return { ...ctx, workdir: resolveWorkdir(ctx, step.path) };
    case "user":
      return { ...ctx, user: step.name };
    default:
      return ctx;
  }
}

/** The context before each step, and after the last. */
export function contexts(steps: readonly BuildStep[]): { before: BuildContext[]; final: BuildContext } {
  const before: BuildContext[] = [];
  let ctx = initialContext();
  for (const step of steps) {
    before.push(ctx);
    ctx = applyStep(ctx, step);
  }
  return { before, final: ctx };
}

/** POSIX shell single-quoting. */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A user step's command (run as root): the user exists afterwards, with sudo like `user`. */
export function ensureUserCommand(name: string): string {
  const u = shq(name);
  return [
    `id -u ${u} >/dev/null 2>&1 || adduser --disabled-password --gecos '' ${u} >/dev/null`,
    `if [ -d /etc/sudoers.d ]; then echo ${shq(`${name} ALL=(ALL:ALL) NOPASSWD: ALL`)} > /etc/sudoers.d/90-${name} && chmod 0440 /etc/sudoers.d/90-${name}; fi`,
  ].join(" && ");
}

/** A workdir step's command (run as root): the directory exists, owned by the current user if made now. */
export function workdirCommand(path: string, user: string): string {
  const p = shq(path);
  return `if [ ! -d ${p} ]; then mkdir -p ${p} && chown ${shq(user)}: ${p}; fi`;
}

/**
 * A copy step's command (run as root): unpacks the archive (gzip or plain tar) into a scratch
 * directory and places `src` as Docker's COPY does: a directory's contents are merged into
 * `dest`; a file goes into `dest` when it ends with "/", else becomes `dest`. What was copied is
 * given to `owner` and, with `mode`, that mode.
 */
export function copyCommand(input: {
  archive: string;
  src: string;
  dest: string;
  owner: string;
  mode?: string | undefined;
}): string {
  // The archive keeps the src prefix; a glob's static part names the directory to take.
  const src = input.src.replace(/\/+$/, "");
  const staticPart = src.split("/").filter((part) => !/[*?[]/.test(part));
  const rel = staticPart.join("/") || ".";
  const dest = input.dest;
  const owner = shq(`${input.owner}:${input.owner}`);
  const mode = input.mode ? shq(input.mode) : "";
  return [
    "set -e",
    `t=$(mktemp -d)`,
    `trap 'rm -rf "$t" ${shq(input.archive)}' EXIT`,
    `tar -xf ${shq(input.archive)} -C "$t"`,
    `s="$t"/${shq(rel)}`,
    `d=${shq(dest)}`,
    `if [ -d "$s" ] && [ ! -L "$s" ]; then`,
    `  mkdir -p "$d"`,
    `  (cd "$s" && find . -mindepth 1 -maxdepth 1) | while IFS= read -r f; do`,
    `    rm -rf "$d/$f"; cp -a "$s/$f" "$d/$f"; chown -R ${owner} "$d/$f"${mode ? `; chmod -R ${mode} "$d/$f"` : ""}`,
    "  done",
    `elif [ -e "$s" ] || [ -L "$s" ]; then`,
    `  case "$d" in */) mkdir -p "$d"; d="$d$(basename "$s")";; *) mkdir -p "$(dirname "$d")";; esac`,
    `  rm -rf "$d"; cp -a "$s" "$d"; chown -h ${owner} "$d"${mode ? `; chmod ${mode} "$d"` : ""}`,
    "else",
    `  echo "copy: ${rel.replace(/["$`\\]/g, "")} is not in the uploaded files" >&2; exit 2`,
    "fi",
  ].join("\n");
}
