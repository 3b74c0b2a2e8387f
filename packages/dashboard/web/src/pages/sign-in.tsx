/** Sign in and sign up: email and password, the session cookie set by the API. */
import type { AuthSessionView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api } from "../api/client.js";
import { useAction } from "../api/use-api.js";
import { EmailField, NameField, PasswordField } from "../components/account-fields.js";
import { ErrorNote } from "../components/error-note.js";
import { href } from "../router.js";
import { adopt } from "../session.js";

type OnSession = (s: AuthSessionView) => void;

function AuthCard({ title, children }: { title: string; children: preact.ComponentChildren }) {
  document.title = `${title} · Wrenn`;
  return (
    <main id="main" class="auth-page">
      <section class="auth-card" aria-labelledby="page-title">
        <p class="brand">Wrenn</p>
        <h1 id="page-title">{title}</h1>
        {children}
      </section>
    </main>
  );
}

export function SignInPage({ onSession }: { onSession: OnSession }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const signIn = useAction(async () => {
    onSession(adopt(await api<AuthSessionView>("POST", "/v1/auth/signin", { body: { email, password } })));
  });
  return (
    <AuthCard title="Sign in">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          signIn.run();
        }}
      >
        <EmailField value={email} onValue={setEmail} />
        <PasswordField value={password} onValue={setPassword} current />
        <ErrorNote error={signIn.error} />
        <button type="submit" class="primary" disabled={signIn.busy}>
          {signIn.busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      <p class="auth-switch">
        No account? <a href={href("/signup")}>Sign up</a>
      </p>
    </AuthCard>
  );
}

export function SignUpPage({ onSession }: { onSession: OnSession }) {
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const signUp = useAction(async () => {
    const body = { email, password, ...(name ? { name } : {}) };
    onSession(adopt(await api<AuthSessionView>("POST", "/v1/auth/signup", { body })));
  });
  return (
    <AuthCard title="Create your account">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          signUp.run();
        }}
      >
        <EmailField value={email} onValue={setEmail} />
        <NameField value={name} onValue={setName} />
        <PasswordField value={password} onValue={setPassword} />
        <ErrorNote error={signUp.error} />
        <button type="submit" class="primary" disabled={signUp.busy}>
          {signUp.busy ? "Creating…" : "Sign up"}
        </button>
      </form>
      <p class="auth-switch">
        Have an account? <a href={href("/signin")}>Sign in</a>
      </p>
    </AuthCard>
  );
}

export { AuthCard };
