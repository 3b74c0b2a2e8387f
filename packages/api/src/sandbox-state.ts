import { z } from "zod";

/**
 * The states of a sandbox as /v1 reports them. `missing`: its host stopped reporting it
 * (the host is unreachable or lost it); the reconciler settles it.
 */
export const SANDBOX_STATES = ["pending", "running", "paused", "stopped", "error", "missing"] as const;

export const SandboxStateSchema = z.enum(SANDBOX_STATES);

export type SandboxState = z.infer<typeof SandboxStateSchema>;
