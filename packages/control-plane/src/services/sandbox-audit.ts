import type { AuditLog } from "../audit/audit-log.js";
import type { Principal } from "../auth/principal.js";

/** An audited action on a sandbox: its name, or its name and details. */
export type SandboxAction = string | { action: string; details: Record<string, unknown> };

/** Runs `work` recorded in the audit log as `what` by `principal` on sandbox `id`. */
export function auditSandbox<T>(
  audit: AuditLog,
  principal: Principal,
  id: string,
  what: SandboxAction,
  work: () => Promise<T>,
): Promise<T> {
  const { action, details } = typeof what === "string" ? { action: what, details: undefined } : what;
  return audit.track(
    {
      teamId: principal.teamId,
      actor: principal.actor,
      action,
      resourceType: "sandbox",
      resourceId: id,
      ...(details ? { details } : {}),
    },
    work,
  );
}
