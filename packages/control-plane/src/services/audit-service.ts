import { type ListAuditLogsInput, listAuditLogs } from "../audit/audit-query.js";
import type { Principal } from "../auth/principal.js";
import type { AuditLogRow } from "../db/schema.js";
import type { ServiceDeps } from "./service-deps.js";

export type { ListAuditLogsInput };

/** Reading the team's audit log (writing it is `AuditLog`'s job, from every service). */
export class AuditService {
  constructor(private readonly deps: ServiceDeps) {}

  /** A page of the caller's team's entries, oldest first (one more than `limit` when more follow). */
  async list(principal: Principal, input: ListAuditLogsInput): Promise<AuditLogRow[]> {
    return listAuditLogs(this.deps.db, principal, input);
  }
}
