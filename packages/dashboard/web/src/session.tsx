/** The signed-in session: who, which team, which role, and the CSRF token for the client. */
import type { AuthSessionView } from "@wrenn/api";
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { api, setCsrfToken } from "./api/client.js";

export interface SessionState {
  session: AuthSessionView;
  /** Replaces the session (after sign-in, team switch). */
  setSession: (s: AuthSessionView | null) => void;
}

export const SessionContext = createContext<SessionState | null>(null);

export function useSession(): SessionState {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in page");
  return s;
}

/** Owners and admins manage keys, members, channels. */
export const canManage = (s: AuthSessionView): boolean => s.role === "owner" || s.role === "admin";

export function adopt(session: AuthSessionView): AuthSessionView {
  setCsrfToken(session.csrfToken);
  return session;
}

/** The current session, or null when not signed in. */
export async function loadSession(): Promise<AuthSessionView | null> {
  try {
    return adopt(await api<AuthSessionView>("GET", "/v1/auth/session"));
  } catch (err) {
    if ((err as { status?: number }).status === 401) return null;
    throw err;
  }
}
