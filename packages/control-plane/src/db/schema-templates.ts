import type { NetworkPolicy } from "@wrenn/shared/network-policy";
import type { ColumnType, Generated } from "kysely";
import type { CreatedAt, Json } from "./schema-columns.js";

/** Templates, builds, their logs, hosts, tags, step cache and files (migrations 001, 005). */

export type TemplateKind = "base" | "snapshot" | "built";

export interface TemplatesTable {
  id: string;
  team_id: string | null;
  name: string;
  kind: TemplateKind;
  host_id: string | null;
  agent_name: string | null;
  source_sandbox_id: string | null;
  /** A snapshot template's image (what its lineage booted from); a base template's own name. */
  image: string | null;
  vcpus: number | null;
  memory_mib: number | null;
  disk_mib: number | null;
  /** A built template: the build its sandboxes start from (migration 005). */
  build_id: Generated<string | null>;
  /** A built template's env vars (its `env` steps), given to every sandbox made from it. */
  env: ColumnType<Record<string, string>, string | undefined, string>;
  default_user: Generated<string | null>;
  default_workdir: Generated<string | null>;
  /** A snapshot template's source policy when taken (migration 010); null: open. */
  network_policy: ColumnType<NetworkPolicy | null, string | null | undefined, string | null>;
  created_at: CreatedAt;
}

export type BuildStatusName = "waiting" | "building" | "ready" | "error";

/** One build of a built template (migration 005). */
export interface TemplateBuildsTable {
  id: string;
  template_id: string;
  team_id: string;
  status: BuildStatusName;
  /** The BuildSpec, null until started. */
  spec: ColumnType<unknown, string | null | undefined, string | null>;
  tags: Json<string[]>;
  vcpus: number;
  memory_mib: number;
  disk_mib: number;
  host_id: Generated<string | null>;
  sandbox_id: Generated<string | null>;
  /** The cache key after each step, in order. */
  step_keys: ColumnType<string[], string | undefined, string>;
  steps_cached: Generated<number>;
  env: ColumnType<Record<string, string>, string | undefined, string>;
  default_user: Generated<string | null>;
  default_workdir: Generated<string | null>;
  error_message: Generated<string | null>;
  error_step: Generated<string | null>;
  created_at: CreatedAt;
  started_at: Generated<Date | null>;
  finished_at: Generated<Date | null>;
  /** The replica running the build (status building). */
  claimed_by: Generated<string | null>;
}

export interface TemplateBuildLogsTable {
  build_id: string;
  seq: number;
  created_at: CreatedAt;
  level: "debug" | "info" | "warn" | "error";
  step: string;
  message: string;
}

/** Where a build's snapshot is (the agent's snapshot name on that host). */
export interface TemplateBuildHostsTable {
  build_id: string;
  host_id: string;
  agent_name: string;
  created_at: CreatedAt;
}

export interface TemplateTagsTable {
  template_id: string;
  tag: string;
  build_id: string;
  created_at: CreatedAt;
}

/** A step's result on one host: a snapshot named `agent_name`, keyed by parent and inputs. */
export interface TemplateStepCacheTable {
  host_id: string;
  key: string;
  agent_name: string;
  created_at: CreatedAt;
  used_at: ColumnType<Date, Date | undefined, Date>;
}

export interface TemplateFilesTable {
  team_id: string;
  hash: string;
  size: ColumnType<number, number | bigint, number | bigint>;
  created_at: CreatedAt;
}
