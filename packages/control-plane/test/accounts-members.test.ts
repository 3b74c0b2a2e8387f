import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser } from "./helpers/browser.js";
import { type CpFixture, startControlPlane } from "./helpers/cp-fixture.js";
import { openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

type ErrorBody = { error: { code: string; message: string } };
const PASSWORD = "correct horse battery";

/** Team members, roles and invitations over a real control plane and PGlite. */
describe("members, roles and invitations", () => {
  let t: TestDatabase;
  let fx: CpFixture;
  const newBrowser = (origin?: string) => new Browser(fx.url, origin);

  beforeAll(async () => {
    t = await openTestDatabase("pglite");
    fx = await startControlPlane(t.database);
  });
  afterAll(async () => {
    await fx?.close();
    await t?.dispose();
  });

  const owner = () => new Browser(fx.url);
  let own: Browser;
  let teamId: string;
  let member: Browser;
  let memberId: string;

  beforeAll(async () => {
    own = owner();
    teamId = (await own.signup("boss@example.com")).body.team.id;
  });

  it("an owner invites; the token is shown once; accepting without a session makes the account", async () => {
    const inv = await own.call<{ id: string; token: string; accept_url: string; role: string }>(
      "POST",
      "/v1/team/invitations",
      { email: "Mia@Example.com", role: "member" },
    );
    expect(inv.status).toBe(201);
    expect(inv.body.token).toMatch(/^wrni_/);
    expect(inv.body.accept_url).toBe(`${fx.url}/#/invite?token=${inv.body.token}`);
    const listed = await own.call<{ items: Record<string, unknown>[] }>("GET", "/v1/team/invitations");
    expect(listed.body.items).toEqual([
      expect.objectContaining({ id: inv.body.id, email: "mia@example.com" }),
    ]);
    expect(JSON.stringify(listed.body)).not.toContain(inv.body.token);
    member = new Browser(fx.url);
    const accepted = await member.call<{ team: { id: string }; role: string; user: { id: string } }>(
      "POST",
      "/v1/auth/invitations/accept",
      { token: inv.body.token, password: PASSWORD },
    );
    expect(accepted.status).toBe(200);
    expect(accepted.body.team.id).toBe(teamId);
    expect(accepted.body.role).toBe("member");
    memberId = accepted.body.user.id;
    // One use only.
    const reuse = await newBrowser().call<ErrorBody>("POST", "/v1/auth/invitations/accept", {
      token: inv.body.token,
      password: PASSWORD,
    });
    expect(reuse.status).toBe(404);
    expect((await member.signin("mia@example.com")).status).toBe(200);
  });

  it("a member uses sandboxes but manages neither keys, members, invitations nor channels", async () => {
    expect((await member.call("GET", "/v1/sandboxes")).status).toBe(200);
    expect((await member.call("GET", "/v1/team/members")).status).toBe(200);
    for (const [method, path, body] of [
      ["POST", "/v1/api-keys", { name: "m" }],
      ["GET", "/v1/api-keys", undefined],
      ["POST", "/v1/team/invitations", { email: "z@example.com" }],
      ["GET", "/v1/team/invitations", undefined],
      ["PATCH", `/v1/team/members/${memberId}`, { role: "admin" }],
      ["POST", "/v1/channels", { name: "c", url: "http://127.0.0.1:9/hook" }],
    ] as const) {
      const res = await member.call<ErrorBody>(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error.code).toBe("permission_denied");
    }
  });

  it("an owner promotes; an admin manages keys but cannot touch the owner role", async () => {
    const promoted = await own.call<{ role: string }>("PATCH", `/v1/team/members/${memberId}`, {
      role: "admin",
    });
    expect(promoted.status).toBe(200);
    expect(promoted.body.role).toBe("admin");
    expect((await member.call("POST", "/v1/api-keys", { name: "by-admin" })).status).toBe(201);
    const ownerId = (await own.call<{ user: { id: string } }>("GET", "/v1/auth/session")).body.user.id;
    expect((await member.call("PATCH", `/v1/team/members/${ownerId}`, { role: "member" })).status).toBe(403);
    expect((await member.call("PATCH", `/v1/team/members/${memberId}`, { role: "owner" })).status).toBe(403);
    expect((await member.call("DELETE", `/v1/team/members/${ownerId}`)).status).toBe(403);
  });

  it("the last owner can be neither demoted nor removed", async () => {
    const ownerId = (await own.call<{ user: { id: string } }>("GET", "/v1/auth/session")).body.user.id;
    const demote = await own.call<ErrorBody>("PATCH", `/v1/team/members/${ownerId}`, { role: "admin" });
    expect(demote.status).toBe(412);
    expect(demote.body.error.code).toBe("failed_precondition");
    expect((await own.call("DELETE", `/v1/team/members/${ownerId}`)).status).toBe(412);
    // With a second owner, the first may step down.
    expect((await own.call("PATCH", `/v1/team/members/${memberId}`, { role: "owner" })).status).toBe(200);
    expect((await own.call("PATCH", `/v1/team/members/${ownerId}`, { role: "admin" })).status).toBe(200);
  });

  it("an existing user accepts while signed in, then switches between teams", async () => {
    const carl = newBrowser();
    const carlTeam = (await carl.signup("carl@example.com")).body.team.id;
    const inv = await member.call<{ token: string }>("POST", "/v1/team/invitations", {
      email: "carl@example.com",
    });
    expect(inv.status).toBe(201);
    // Someone else's session cannot take Carl's invitation; nor can an anonymous caller.
    const other = newBrowser();
    await other.signup("other@example.com");
    expect((await other.call("POST", "/v1/auth/invitations/accept", { token: inv.body.token })).status).toBe(
      403,
    );
    const anon = await newBrowser().call("POST", "/v1/auth/invitations/accept", {
      token: inv.body.token,
      password: PASSWORD,
    });
    expect(anon.status).toBe(401);
    const accepted = await carl.call<{ team: { id: string }; teams: { id: string }[] }>(
      "POST",
      "/v1/auth/invitations/accept",
      { token: inv.body.token },
    );
    expect(accepted.status).toBe(200);
    expect(accepted.body.team.id).toBe(teamId);
    expect(accepted.body.teams.map((x) => x.id).sort()).toEqual([carlTeam, teamId].sort());
    const back = await carl.call<{ team: { id: string } }>("POST", "/v1/auth/switch-team", {
      teamId: carlTeam,
    });
    expect(back.body.team.id).toBe(carlTeam);
    expect((await carl.call<{ team: { id: string } }>("GET", "/v1/auth/session")).body.team.id).toBe(
      carlTeam,
    );
    const foreign = (await other.call<{ team: { id: string } }>("GET", "/v1/auth/session")).body.team.id;
    expect((await carl.call("POST", "/v1/auth/switch-team", { teamId: foreign })).status).toBe(404);
  });

  it("a revoked invitation cannot be accepted; a removed member's session loses the team", async () => {
    const inv = await own.call<{ id: string; token: string }>("POST", "/v1/team/invitations", {
      email: "late@example.com",
    });
    expect((await own.call("DELETE", `/v1/team/invitations/${inv.body.id}`)).status).toBe(204);
    const late = await newBrowser().call("POST", "/v1/auth/invitations/accept", {
      token: inv.body.token,
      password: PASSWORD,
    });
    expect(late.status).toBe(404);
    const members = (
      await own.call<{ items: { user_id: string; email: string }[] }>("GET", "/v1/team/members")
    ).body.items;
    const carlId = members.find((m) => m.email === "carl@example.com")?.user_id ?? "";
    expect((await own.call("DELETE", `/v1/team/members/${carlId}`)).status).toBe(204);
    expect((await own.call<{ items: unknown[] }>("GET", "/v1/team/members")).body.items).toHaveLength(2);
  });

  it("writes sign-in, sign-out, invitations and role changes to the audit log", async () => {
    const log = await own.call<{ items: { action: string; result: string; actor_type: string }[] }>(
      "GET",
      "/v1/audit-logs?limit=200",
    );
    const actions = log.body.items.map((r) => `${r.action}:${r.result}`);
    for (const a of [
      "invitation.create:success",
      "invitation.accept:success",
      "invitation.revoke:success",
      "team.member.role:success",
      "team.member.role:failure",
      "team.member.remove:success",
    ]) {
      expect(actions).toContain(a);
    }
    expect(log.body.items.some((r) => r.actor_type === "user")).toBe(true);
  });
});
