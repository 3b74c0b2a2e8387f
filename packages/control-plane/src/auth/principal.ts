import { WrennError } from "@wrenn/shared";
import type { ActorType, MemberRole } from "../db/schema.js";

/** Who performs an action, as written in the audit log. */
export interface Actor {
  type: ActorType;
  id: string | null;
}

/** The authenticated caller of a team-scoped route. */
export interface Principal {
  teamId: string;
  /** Keys of the admin team (made by bootstrap) may create teams and shared hosts. */
  isAdmin: boolean;
  /**
   * A signed-in user's role in the team; absent for API keys, which act with the team's
   * full rights.
   */
  role?: MemberRole | undefined;
  actor: Actor;
}

/** Throws permission_denied when a member (not owner/admin) attempts a management action. */
export function requireManager(principal: Principal, what: string): void {
  if (principal.role === "member") {
    throw new WrennError("permission_denied", `only a team owner or admin may ${what}`);
  }
}

export const SYSTEM_ACTOR: Actor = { type: "system", id: null };
