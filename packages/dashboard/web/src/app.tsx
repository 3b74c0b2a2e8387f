/** The shell: the session, public pages (sign in/up, invitations) and the signed-in layout. */
import type { AuthSessionView } from "@wrenn/api";
import { useEffect, useState } from "preact/hooks";
import { onSignedOut } from "./api/client.js";
import { ErrorNote } from "./components/error-note.js";
import { Layout } from "./layout.js";
import { AcceptInvitePage } from "./pages/accept-invite.js";
import { NotFoundPage } from "./pages/not-found.js";
import { SignInPage, SignUpPage } from "./pages/sign-in.js";
import { match, navigate, useRoute } from "./router.js";
import { ROUTES } from "./routes.js";
import { loadSession, SessionContext } from "./session.js";

const PUBLIC = new Set(["/signin", "/signup", "/invite"]);

export function App() {
  const route = useRoute();
  const [session, setSession] = useState<AuthSessionView | null | undefined>(undefined);
  const [error, setError] = useState<Error | null>(null);

  useEffect(() => {
    loadSession().then(setSession, setError);
    return onSignedOut(() => setSession(null));
  }, []);

  useEffect(() => {
    if (session === null && !PUBLIC.has(route.path)) {
      const next = route.path === "/" ? "" : `?next=${encodeURIComponent(route.path)}`;
      navigate(`/signin${next}`);
    } else if (session && (route.path === "/" || route.path === "/signin" || route.path === "/signup")) {
      navigate(route.query.get("next") || "/sandboxes");
    }
  }, [session, route.path]);

  if (error) return <ErrorNote error={error} />;
  if (session === undefined) return <p class="loading">Loading…</p>;
  if (route.path === "/invite") return <AcceptInvitePage session={session} onSession={setSession} />;
  if (!session) {
    if (route.path === "/signup") return <SignUpPage onSession={setSession} />;
    return <SignInPage onSession={setSession} />;
  }
  let body = <NotFoundPage path={route.path} />;
  for (const r of ROUTES) {
    const params = match(r.pattern, route.path);
    if (params) {
      const PageComponent = r.page;
      body = <PageComponent key={route.path} params={params} query={route.query} />;
      break;
    }
  }
  return (
    <SessionContext.Provider value={{ session, setSession }}>
      <Layout path={route.path}>{body}</Layout>
    </SessionContext.Provider>
  );
}
