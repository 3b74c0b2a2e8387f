/**
 * The dashboard's accounts in real headless chromium against a real control plane (no host
 * agent: nothing here needs a VM): sign up, sign out, sign in; a wrong password shows the
 * API's error; the sign-in form by keyboard alone; an invitation link accepted by a new
 * member; cross-site form posts refused.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "playwright-core";
import { beforeEach, describe, expect, it } from "vitest";
import { apiGet, newAccount, screenshot, signIn, signOut, signUp, waitForText } from "./browser-fixture.js";
import { useBrowserStack } from "./browser-stack.js";

/** A page on another origin whose HTML posts a form to `action` as soon as it loads. */
function attackerServer(): Promise<{ server: Server; port: number; set(html: string): void }> {
  let page = "<!doctype html><p>nothing yet</p>";
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page);
  });
  return new Promise((done) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      done({ server, port, set: (html) => (page = html) });
    });
  });
}

/**
 * An auto-submitting form. text/plain lets a form send a body that parses as JSON
 * (`{"name":"evil","x":"="}`): the attack that gets past a server reading JSON bodies only.
 */
function autoPostingForm(action: string): string {
  return `<!doctype html><html><body>
<form method="POST" action="${action}" enctype="text/plain">
<input type="hidden" name='{"name":"evil","x":"' value='"}'>
</form>
<script>document.forms[0].submit()</script>
</body></html>`;
}

describe("dashboard accounts in a browser", () => {
  const fx = useBrowserStack();
  let page: Page;
  beforeEach(async () => {
    page = await fx.newPage();
  });

  it("signs up, signs out and signs in again through the pages", async () => {
    const account = newAccount("Ada");
    await page.goto(`${fx.url}/`);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    expect(page.url()).toMatch(/#\/signin/);
    await screenshot(page, "sign-in", { phone: true });
    await page.getByRole("link", { name: "Sign up" }).click();
    await page.getByRole("button", { name: "Sign up" }).waitFor();
    await screenshot(page, "sign-up");

    await signUp(page, fx.url, account);
    const session = await apiGet<{ user: { email: string }; role: string }>(page, "/v1/auth/session");
    expect(session.status).toBe(200);
    expect(session.body.user.email).toBe(account.email);
    expect(session.body.role).toBe("owner");
    await waitForText(page.locator(".topbar"), account.email);

    await signOut(page);
    expect((await apiGet(page, "/v1/auth/session")).status).toBe(401);
    // A signed-in page now sends the browser to sign in.
    await page.goto(`${fx.url}/#/sandboxes`);
    await page.waitForURL(/#\/signin/);

    await signIn(page, fx.url, account);
    expect((await apiGet(page, "/v1/auth/session")).status).toBe(200);
  });

  it("a wrong password shows the API's error code and message", async () => {
    const account = newAccount("Bob");
    await signUp(page, fx.url, account);
    await signOut(page);
    // What the API itself answers to this sign-in.
    const res = await fetch(`${fx.url}/v1/auth/signin`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: account.email, password: "not the password" }),
    });
    expect(res.status).toBe(401);
    const { error } = (await res.json()) as { error: { code: string; message: string } };

    await page.getByLabel("Email").fill(account.email);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    const alert = page.getByRole("alert");
    await waitForText(alert, error.message);
    expect(await alert.locator(".error-code").textContent()).toBe(error.code);
    await screenshot(page, "sign-in-error");
    expect(page.url()).toMatch(/#\/signin/);
    expect((await apiGet(page, "/v1/auth/session")).status).toBe(401);
  });

  it("the sign-in form can be completed with Tab and Enter alone", async () => {
    const account = newAccount("Kim");
    await signUp(page, fx.url, account);
    await signOut(page);
    await page.goto(`${fx.url}/#/signin`);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    const focus = page.locator(":focus");
    const focused = async () => ((await focus.count()) > 0 ? ((await focus.getAttribute("name")) ?? "") : "");
    // From the top of the page, Tab reaches the email field first, then the password field.
    for (let i = 0; i < 5 && (await focused()) !== "email"; i++) await page.keyboard.press("Tab");
    expect(await focused()).toBe("email");
    await page.keyboard.type(account.email);
    await page.keyboard.press("Tab");
    expect(await focused()).toBe("password");
    await page.keyboard.type(account.password);
    await page.keyboard.press("Enter");
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    expect((await apiGet(page, "/v1/auth/session")).status).toBe(200);
  });

  it("an owner invites by email; the link makes the invitee's account, a member of that team", async () => {
    const owner = newAccount("Olga");
    const invitee = newAccount("Ivan");
    await signUp(page, fx.url, owner);
    const ownerTeam = (await apiGet<{ team: { id: string } }>(page, "/v1/auth/session")).body.team.id;
    await page.getByRole("link", { name: "Members" }).click();
    await page.getByRole("button", { name: "Invite" }).click();
    const dialog = page.getByRole("dialog", { name: "Invite member" });
    await dialog.getByLabel("Email").fill(invitee.email);
    await dialog.getByLabel("Role").selectOption("member");
    await dialog.getByRole("button", { name: "Send invitation" }).click();
    const link = (await dialog.locator('[data-testid="secret"]').textContent({ timeout: 10_000 })) ?? "";
    expect(link).toMatch(new RegExp(`^${fx.url}/#/invite\\?token=wrni_`));

    // The invitee opens the link in a browser of their own, signed out.
    const them = await fx.newPage();
    await them.goto(link);
    await them.getByRole("heading", { name: "Join a team" }).waitFor();
    await them.getByLabel("Name").fill(invitee.name);
    await them.getByLabel("Password").fill(invitee.password);
    await them.getByRole("button", { name: "Accept invitation" }).click();
    await them.getByRole("button", { name: "Sign out" }).waitFor();
    const session = await apiGet<{ user: { email: string }; team: { id: string }; role: string }>(
      them,
      "/v1/auth/session",
    );
    expect(session.body).toMatchObject({
      user: { email: invitee.email },
      team: { id: ownerTeam },
      role: "member",
    });
    // A member sees the team but may not invite or change roles.
    await them.getByRole("link", { name: "Members" }).click();
    await them.getByLabel(`Role for ${owner.email}`).waitFor();
    expect(await them.getByRole("button", { name: "Invite" }).count()).toBe(0);
    expect(await them.getByLabel(`Role for ${owner.email}`).isDisabled()).toBe(true);
    // The link worked once.
    const again = await them.context().newPage();
    await again.goto(link);
    await again.getByRole("button", { name: "Accept invitation" }).click();
    await again.getByRole("alert").waitFor();
    // The owner's Members page lists the new member.
    await page.reload();
    await page.getByLabel(`Role for ${invitee.email}`).waitFor();
    expect(await page.getByLabel(`Role for ${invitee.email}`).inputValue()).toBe("member");
  });

  it("refuses a cross-site form post while the browser holds a session", async () => {
    const account = newAccount("Eve");
    await signUp(page, fx.url, account);
    const keysBefore = await apiGet<{ items: unknown[] }>(page, "/v1/api-keys");
    expect(keysBefore.status).toBe(200);
    const attacker = await attackerServer();
    try {
      // Another origin on the same host (another port): same-site, so the SameSite=Lax
      // cookie goes along; the Origin check and the missing CSRF token must refuse it.
      attacker.set(autoPostingForm(`${fx.url}/v1/api-keys`));
      const answered = page.waitForResponse(
        (r) => r.url() === `${fx.url}/v1/api-keys` && r.request().method() === "POST",
      );
      await page.goto(`http://127.0.0.1:${attacker.port}/`);
      const response = await answered;
      const sentCookie = (await response.request().allHeaders()).cookie ?? "";
      expect(sentCookie).toContain("wrenn_session=");
      expect(response.status()).toBe(403);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("permission_denied");

      // Another site (localhost is not 127.0.0.1): the browser does not even send the cookie.
      attacker.set(autoPostingForm(`${fx.url}/v1/auth/signout`));
      const signout = page.waitForResponse((r) => r.url() === `${fx.url}/v1/auth/signout`);
      await page.goto(`http://localhost:${attacker.port}/`);
      const refused = await signout;
      expect([401, 403]).toContain(refused.status());
    } finally {
      await new Promise((r) => attacker.server.close(r));
    }
    // Neither post changed anything: still signed in, no new key.
    await page.goto(`${fx.url}/#/sandboxes`);
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    const keysAfter = await apiGet<{ items: unknown[] }>(page, "/v1/api-keys");
    expect(keysAfter.status).toBe(200);
    expect(keysAfter.body.items.length).toBe(keysBefore.body.items.length);
  });
});
