import type { ActorType } from "../db/schema.js";

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
  actor: Actor;
}

export const SYSTEM_ACTOR: Actor = { type: "system", id: null };
