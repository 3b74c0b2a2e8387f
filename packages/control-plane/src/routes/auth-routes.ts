import {
  AuthSessionSchema,
  type AuthSessionView,
  InvitationAcceptBodySchema,
  SigninBodySchema,
  SignupBodySchema,
  SwitchTeamBodySchema,
} from "@wrenn/api";
import { WrennError } from "@wrenn/shared";
import type { FastifyReply, FastifyRequest } from "fastify";
import { checkSameOrigin } from "../auth/session-cookie.js";
import type { Services } from "../create-services.js";
import type { SessionRow } from "../db/schema.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import { setSessionCookie, userView } from "./auth-views.js";

/** Browser sign-in: accounts, sessions in an httpOnly cookie, the CSRF token, team switching. */
export function authRoutes(services: Services): AnyRouteSpec[] {
  const { accounts } = services;

  const sessionView = async (session: SessionRow): Promise<AuthSessionView> => {
    const [user, teams] = await Promise.all([
      accounts.user(session.user_id),
      accounts.teams(session.user_id),
    ]);
    const team = teams.find((t) => t.id === session.team_id);
    if (!team) throw new WrennError("unauthenticated", "the session's team membership ended; sign in again");
    return { user: userView(user), team, role: team.role, teams, csrfToken: session.csrf_token };
  };
  /** A new session: its cookie on the reply, its view (with the CSRF token) as the answer. */
  const started = (
    ctx: { request: FastifyRequest; reply: FastifyReply },
    made: { token: string; session: SessionRow },
  ): Promise<AuthSessionView> => {
    setSessionCookie(ctx.request, ctx.reply, made.token, accounts.sessions.ttlSec);
    return sessionView(made.session);
  };
  const sessionOf = (session: SessionRow | null): SessionRow => {
    if (!session) throw new WrennError("unauthenticated", "not signed in");
    return session;
  };

  return [
    defineRoute({
      method: "POST",
      path: "/v1/auth/signup",
      summary: "Create an account with a team of its own, and sign in (sets the session cookie)",
      tag: "Auth",
      auth: "none",
      body: SignupBodySchema,
      responses: { 201: { description: "The new session", schema: AuthSessionSchema } },
      handler: async (ctx) => {
        checkSameOrigin(ctx.request.raw);
        return started(ctx, await accounts.signup(ctx.body));
      },
    }),
    defineRoute({
      method: "POST",
      path: "/v1/auth/signin",
      summary: "Sign in with email and password (sets the session cookie)",
      tag: "Auth",
      auth: "none",
      body: SigninBodySchema,
      responses: { 200: { description: "The new session", schema: AuthSessionSchema } },
      handler: async (ctx) => {
        checkSameOrigin(ctx.request.raw);
        return started(ctx, await accounts.signin(ctx.body, ctx.request.ip));
      },
    }),
    defineRoute({
      method: "POST",
      path: "/v1/auth/signout",
      summary: "End the session (clears the cookie)",
      tag: "Auth",
      auth: "session",
      responses: { 204: { description: "Signed out" } },
      handler: async (ctx) => {
        const session = sessionOf(ctx.session);
        await accounts.signout(session.id, session.user_id, session.team_id);
        setSessionCookie(ctx.request, ctx.reply, "", 0);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/auth/session",
      summary: "The signed-in user, the current team and role, the user's teams, the CSRF token",
      tag: "Auth",
      auth: "session",
      responses: { 200: { description: "The session", schema: AuthSessionSchema } },
      handler: async (ctx) => sessionView(sessionOf(ctx.session)),
    }),
    defineRoute({
      method: "POST",
      path: "/v1/auth/switch-team",
      summary: "Make another of the user's teams the session's current team",
      tag: "Auth",
      auth: "session",
      body: SwitchTeamBodySchema,
      responses: { 200: { description: "The session", schema: AuthSessionSchema } },
      handler: async (ctx) => {
        const session = sessionOf(ctx.session);
        await accounts.switchTeam(session.id, session.user_id, ctx.body.teamId);
        return sessionView({ ...session, team_id: ctx.body.teamId });
      },
    }),
    defineRoute({
      method: "POST",
      path: "/v1/auth/invitations/accept",
      summary:
        "Accept an invitation: signed in as the invited email, or creating that account with a password",
      tag: "Auth",
      auth: "session_optional",
      body: InvitationAcceptBodySchema,
      responses: { 200: { description: "The session, now in the team", schema: AuthSessionSchema } },
      handler: async (ctx) => {
        checkSameOrigin(ctx.request.raw);
        const accepted = await services.invitations.accept({
          token: ctx.body.token,
          userId: ctx.session?.user_id,
          password: ctx.body.password,
          name: ctx.body.name,
        });
        if (ctx.session) {
          await accounts.switchTeam(ctx.session.id, accepted.user.id, accepted.teamId);
          return sessionView({ ...ctx.session, team_id: accepted.teamId });
        }
        return started(ctx, await accounts.sessions.create(accepted.user.id, accepted.teamId));
      },
    }),
  ];
}
