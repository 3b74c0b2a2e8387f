import { createHash } from "node:crypto";
import type { BuildStep } from "@wrenn/api";

/** What a build starts from, as far as the step cache is concerned. */
export type BaseIdentity = { image: string; vcpus: number; memoryMiB: number } | { templateBuildId: string };

/** The cache key of a build's starting point: the image at a size, or another template's build. */
export function baseKey(base: BaseIdentity): string {
  return "image" in base
    ? digest(["image", base.image, String(base.vcpus), String(base.memoryMiB)])
    : digest(["template", base.templateBuildId]);
}

/** A step's inputs in a fixed order (object key order must not change a key). */
function stepInputs(step: BuildStep): string[] {
  switch (step.type) {
    case "run":
      return ["run", step.command, step.user ?? ""];
    case "copy":
      return ["copy", step.files_hash, step.src, step.dest, step.user ?? "", step.mode ?? ""];
    case "env":
      return [
        "env",
        ...Object.entries(step.vars)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .flat(),
      ];
    case "workdir":
      return ["workdir", step.path];
    case "user":
      return ["user", step.name];
  }
}

/**
 * The key after each step: the hash of the key before it and the step's inputs. A change to
 * step N changes the keys of N and everything after it, and nothing before.
 */
export function stepKeys(parent: string, steps: readonly BuildStep[]): string[] {
  const keys: string[] = [];
  let previous = parent;
  for (const step of steps) {
    previous = digest([previous, ...stepInputs(step)]);
    keys.push(previous);
  }
  return keys;
}

/** Steps whose effect is on the VM (a cache point); env steps only change what later steps get. */
export function changesVm(step: BuildStep): boolean {
  return step.type !== "env";
}

/**
 * Where a build resumes: the index of the first step to run, given which keys are cached.
 * Only steps that change the VM are cache points; a forced build runs every step.
 */
export function firstStepToRun(
  steps: readonly BuildStep[],
  keys: readonly string[],
  cached: (key: string) => boolean,
  force: boolean,
): { start: number; fromKey: string | null } {
  if (force) return { start: 0, fromKey: null };
  for (let i = steps.length - 1; i >= 0; i--) {
    const step = steps[i];
    const key = keys[i];
    if (step && key && changesVm(step) && cached(key)) return { start: i + 1, fromKey: key };
  }
  return { start: 0, fromKey: null };
}

function digest(parts: readonly string[]): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    // Length-prefixed so ["ab","c"] and ["a","bc"] differ.
    hash.update(`${Buffer.byteLength(part)}:`);
    hash.update(part);
  }
  return hash.digest("hex");
}
