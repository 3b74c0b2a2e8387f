import type { AuthSessionView } from "@wrenn/api";
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api } from "./api/client.js";
import { useAction } from "./api/use-api.js";
import { ErrorNote } from "./components/error-note.js";
import { href } from "./router.js";
import { NAV } from "./routes.js";
import { adopt, useSession } from "./session.js";

/** Navigation (a menu button on phone widths), the team switcher, the user and sign out. */
export function Layout({ path, children }: { path: string; children: ComponentChildren }) {
  const { session, setSession } = useSession();
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [path]);
  const signOut = useAction(async () => {
    await api("POST", "/v1/auth/signout");
    setSession(null);
  });
  const switchTeam = useAction(async (teamId: string) => {
    setSession(adopt(await api<AuthSessionView>("POST", "/v1/auth/switch-team", { body: { teamId } })));
  });
  const nav = NAV.filter((n) => !n.adminOnly || session.team.is_admin);
  return (
    <div class="shell">
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <button
          type="button"
          class="menu-button"
          aria-expanded={menuOpen}
          aria-controls="nav"
          onClick={() => setMenuOpen(!menuOpen)}
        >
          Menu
        </button>
        <a class="brand" href={href("/sandboxes")}>
          Wrenn
        </a>
        <div class="topbar-right">
          {session.teams.length > 1 ? (
            <label class="team-switch">
              <span class="visually-hidden">Team</span>
              <select value={session.team.id} onChange={(e) => switchTeam.run(e.currentTarget.value)}>
                {session.teams.map((t) => (
                  <option key={t.id} value={t.id}>
                    {t.name}
                  </option>
                ))}
              </select>
            </label>
          ) : (
            <span class="team-name">{session.team.name}</span>
          )}
          <span class="user" title={`${session.user.email} (${session.role})`}>
            {session.user.email}
          </span>
          <button type="button" onClick={() => signOut.run()} disabled={signOut.busy}>
            Sign out
          </button>
        </div>
      </header>
      <nav id="nav" class={`sidebar ${menuOpen ? "open" : ""}`} aria-label="Main">
        <ul>
          {nav.map((n) => (
            <li key={n.path}>
              <a href={href(n.path)} aria-current={path.startsWith(n.path) ? "page" : undefined}>
                {n.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        <ErrorNote error={signOut.error ?? switchTeam.error} />
        {children}
      </main>
    </div>
  );
}
