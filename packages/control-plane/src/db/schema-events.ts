import type { Generated } from "kysely";
import type { CreatedAt, Int8, Json } from "./schema-columns.js";

/** Audit log, webhook channels and deliveries, and the replicas' coordination tables (migrations 001, 013). */

export type ActorType = "user" | "api_key" | "host" | "system";

export interface AuditLogsTable {
  id: string;
  team_id: string | null;
  actor_type: ActorType;
  actor_id: string | null;
  action: string;
  resource_type: string;
  resource_id: string | null;
  result: "success" | "failure";
  error_code: string | null;
  details: Json<Record<string, unknown>>;
  created_at: CreatedAt;
}

export interface ChannelsTable {
  id: string;
  team_id: string;
  name: string;
  url: string;
  secret: string;
  events: Json<string[]>;
  enabled: Generated<boolean>;
  created_at: CreatedAt;
}

export interface ChannelDeliveriesTable {
  id: string;
  channel_id: string;
  event_id: string;
  event_type: string;
  status: "pending" | "delivered" | "failed";
  attempts: Generated<number>;
  last_error: string | null;
  created_at: CreatedAt;
  delivered_at: Date | null;
  /** The JSON body sent (for a replica that takes the delivery over). */
  body: Generated<string | null>;
  /** Until when the replica that sends or retries it has it (database clock). */
  claimed_until: Generated<Date | null>;
}

export interface ReplicasTable {
  id: string;
  started_at: CreatedAt;
  last_seen_at: CreatedAt;
}

export interface WorkerLeasesTable {
  name: string;
  holder: string;
  expires_at: Date;
  fence: Generated<Int8>;
}

export interface EventSpillTable {
  id: string;
  body: Json<unknown>;
  created_at: CreatedAt;
}

export interface SigninFailuresTable {
  key: string;
  count: number;
  reset_at: Date;
}

export interface UploadLinksTable {
  token_hash: string;
  principal: Json<unknown>;
  files_hash: string;
  expires_at: Date;
}
