/** The classes of processes envd places in their own cgroups. */
export type ProcessClass = "pty" | "socat" | "user";

export interface CgroupManager {
  /** Human-readable description of what the manager does on this host (logged at start). */
  readonly description: string;
  /** Moves a running process into its class's cgroup (no-op where cgroups are unavailable). */
  place(pid: number, cls: ProcessClass): Promise<void>;
}
