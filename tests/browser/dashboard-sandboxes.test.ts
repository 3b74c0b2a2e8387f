/**
 * The dashboard's sandbox, file, key and template pages in real headless chromium, against
 * a real control plane with one real host agent (TCG VMs: slow, so one sandbox serves the
 * terminal, files and team tests, and it is killed before the template build boots its own).
 * The tests run in order and share the sandbox; each opens a fresh browser context.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  type Account,
  apiGet,
  linesOf,
  newAccount,
  screenshot,
  signOut,
  signUp,
  waitForText,
} from "./browser-fixture.js";
import { useBrowserStack } from "./browser-stack.js";

const PREFIX = "wbr";
const BOOT_MS = 240_000;

describe("dashboard sandboxes in a browser (real VMs)", () => {
  const fx = useBrowserStack({ prefix: PREFIX, firstSlot: 5600 });
  const owner: Account = newAccount("Owner");
  const outsider: Account = newAccount("Outsider");
  let sandboxId = "";

  const needSandbox = () => {
    if (!sandboxId) throw new Error("the sandbox was not created (see the first test)");
    return sandboxId;
  };

  it(
    "signs up and creates a sandbox from the Sandboxes page",
    async () => {
      const page = await fx.newPage();
      await signUp(page, fx.url, owner);
      await page.getByRole("heading", { level: 1, name: "Sandboxes" }).waitFor();
      await page.getByRole("button", { name: "New sandbox" }).click();
      const dialog = page.getByRole("dialog", { name: "New sandbox" });
      await dialog.waitFor();
      await dialog.getByLabel("Template").selectOption("base");
      await dialog.getByLabel("Timeout (seconds)").fill("900");
      await screenshot(page, "sandbox-new");
      await dialog.getByRole("button", { name: "Create" }).click();
      await page.waitForURL(/#\/sandboxes\/[^/?]+$/, { timeout: BOOT_MS });
      sandboxId = decodeURIComponent(new URL(page.url()).hash.replace(/^#\/sandboxes\//, ""));
      expect(sandboxId).not.toBe("");
      await page.getByRole("heading", { level: 1, name: sandboxId }).waitFor();
      await page.locator('.badge[data-state="running"]').first().waitFor({ timeout: BOOT_MS });

      await page.getByRole("link", { name: "Sandboxes", exact: true }).click();
      const row = page.locator(`tr[data-row="${sandboxId}"]`);
      await row.waitFor();
      await row.getByRole("link", { name: sandboxId }).waitFor();
      await screenshot(page, "sandboxes", { phone: true });
    },
    BOOT_MS + 60_000,
  );

  it("types `echo hi` in the Terminal tab, reads `hi` back and finds its shell in the Processes tab", async () => {
    const id = needSandbox();
    const page = await fx.pageAs(owner);
    await page.goto(`${fx.url}/#/sandboxes/${encodeURIComponent(id)}`);
    await page.getByRole("tab", { name: "Terminal" }).click();
    const terminal = page.locator('[data-testid="terminal"]');
    await terminal.waitFor();
    const rows = terminal.locator(".xterm-rows");
    // The shell's prompt first: what is typed before the PTY is attached would be lost.
    await waitForText(rows, /\S/, { timeoutMs: 60_000, read: linesOf });
    await terminal.click();
    await page.keyboard.type("echo hi");
    await page.keyboard.press("Enter");
    // "hi" alone on a line: the output, not the echoed command line.
    await waitForText(rows, /^hi\s*$/m, { timeoutMs: 30_000, read: linesOf });
    await screenshot(page, "sandbox-terminal");

    // The Processes tab lists the terminal's shell (it stays open while another tab shows).
    const status = await waitForText(page.locator(".terminal-status"), /shell pid \d+/);
    const pid = /shell pid (\d+)/.exec(status)?.[1] ?? "";
    await page.getByRole("tab", { name: "Processes" }).click();
    await page.locator(`tr[data-row="${pid}"]`).waitFor();
    await screenshot(page, "sandbox-processes");
  }, 120_000);

  it("uploads a file in the Files tab, lists it and downloads the same bytes", async () => {
    const id = needSandbox();
    const page = await fx.pageAs(owner);
    await page.goto(`${fx.url}/#/sandboxes/${encodeURIComponent(id)}`);
    await page.getByRole("tab", { name: "Files" }).click();
    const pathInput = page.getByLabel("Path");
    await pathInput.waitFor();
    const dir = (await pathInput.inputValue()).replace(/\/+$/, "");
    const bytes = randomBytes(200 * 1024);
    const name = "dashboard-upload.bin";
    await page
      .getByLabel("Upload files")
      .setInputFiles({ name, mimeType: "application/octet-stream", buffer: bytes });
    const row = page.locator(`tr[data-row="${dir}/${name}"]`);
    await row.waitFor({ timeout: 60_000 });
    await screenshot(page, "sandbox-files", { phone: true });

    const downloading = page.waitForEvent("download");
    await row.getByRole("link", { name: "Download" }).click();
    const download = await downloading;
    const saved = await download.path();
    expect(Buffer.compare(readFileSync(saved), bytes)).toBe(0);
    // Saved under the file's own name (the link's download attribute: the API sends no filename).
    expect(download.suggestedFilename()).toBe(name);
  }, 120_000);

  it("charts the sandbox's sampled CPU, memory and disk on the Overview tab", async () => {
    const id = needSandbox();
    const page = await fx.pageAs(owner);
    await page.goto(`${fx.url}/#/sandboxes/${encodeURIComponent(id)}`);
    const charts = page.locator("figure.chart svg[role=img]");
    // The control plane samples every second here; the page reloads its series every 10 s.
    await charts.nth(2).waitFor({ timeout: 30_000 });
    const labels = await charts.evaluateAll((els) => els.map((e) => e.getAttribute("aria-label") ?? ""));
    expect(labels).toEqual([
      expect.stringMatching(/^CPU.*latest used \d/),
      expect.stringMatching(/^Memory.*latest used \d.*total \d/),
      expect.stringMatching(/^Disk.*latest used \d.*total \d/),
    ]);
    await screenshot(page, "sandbox-overview", { phone: true });
  }, 60_000);

  it("a user of another team does not see the sandbox", async () => {
    const id = needSandbox();
    const page = await fx.newPage();
    await signUp(page, fx.url, outsider);
    await page.getByRole("heading", { level: 1, name: "Sandboxes" }).waitFor();
    await page.locator("p.loading").first().waitFor({ state: "detached" });
    expect(await page.locator(`tr[data-row="${id}"]`).count()).toBe(0);
    expect((await page.locator("main").textContent()) ?? "").not.toContain(id);
    const list = await apiGet<{ items: { id?: string; sandboxID?: string }[] }>(page, "/v1/sandboxes");
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toContain(id);
    expect((await apiGet(page, `/v1/sandboxes/${encodeURIComponent(id)}`)).status).toBe(404);
    // The detail page by its address shows the API's refusal, not the sandbox.
    await page.goto(`${fx.url}/#/sandboxes/${encodeURIComponent(id)}`);
    await waitForText(page.getByRole("alert").first(), "not_found");
    expect(await page.locator(".badge[data-state]").count()).toBe(0);
  }, 60_000);

  it("creates an API key (shown once) and revokes it; the revoked key gets 401", async () => {
    const page = await fx.pageAs(owner);
    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByRole("heading", { level: 1, name: "API keys" }).waitFor();
    await page.getByRole("button", { name: "New key" }).click();
    const dialog = page.getByRole("dialog", { name: "New key" });
    await dialog.getByLabel("Name").fill("browser-test");
    await dialog.getByRole("button", { name: "Create" }).click();
    const key = ((await page.locator('[data-testid="secret"]').textContent()) ?? "").trim();
    expect(key.length).toBeGreaterThan(20);
    const asKey = (k: string) =>
      fetch(`${fx.url}/v1/sandboxes`, { headers: { authorization: `Bearer ${k}` } });
    expect((await asKey(key)).status).toBe(200);

    const keys = await apiGet<{ items: { id: string; name: string }[] }>(page, "/v1/api-keys");
    const created = keys.body.items.find((k) => k.name === "browser-test");
    expect(created).toBeDefined();
    // The once-shown secret may sit in the dialog: close it before using the list.
    if (await dialog.isVisible()) await page.keyboard.press("Escape");
    const row = page.locator(`tr[data-row="${created?.id}"]`);
    await row.waitFor();
    await screenshot(page, "api-keys");
    await row.getByRole("button", { name: "Revoke" }).click();
    const confirm = page.getByRole("dialog", { name: "Revoke key?" });
    await confirm.getByRole("button", { name: "Revoke" }).click();
    // Gone from the list, or listed without a Revoke button (revoked).
    const revokeButton = row.getByRole("button", { name: "Revoke" });
    const deadline = Date.now() + 15_000;
    while ((await row.count()) > 0 && (await revokeButton.count()) > 0) {
      if (Date.now() > deadline) throw new Error("the key's row still offers Revoke after revoking");
      await page.waitForTimeout(200);
    }
    expect((await asKey(key)).status).toBe(401);
  }, 60_000);

  it("shows the audit log newest first", async () => {
    const page = await fx.pageAs(owner);
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByRole("heading", { level: 1, name: "Audit log" }).waitFor();
    await page.locator("main table tbody tr").first().waitFor();
    const actions = await page.locator('main td[data-label="Action"]').allTextContents();
    // This page's own sign-in on top, then the previous test's revocation, before the key's creation.
    expect(actions.slice(0, 2)).toEqual(["auth.signin", "api_key.revoke"]);
    expect(actions.indexOf("api_key.create")).toBeGreaterThan(1);
    await screenshot(page, "audit-log");
  }, 60_000);

  it("shows the usage and members pages", async () => {
    const page = await fx.pageAs(owner);
    await page.getByRole("link", { name: "Usage" }).click();
    await page.getByRole("heading", { level: 1, name: "Usage" }).waitFor();
    await page.locator("p.loading").first().waitFor({ state: "detached" });
    expect(await page.locator("main [role=alert]").count()).toBe(0);
    await screenshot(page, "usage");
    await page.getByRole("link", { name: "Members" }).click();
    await page.getByRole("heading", { level: 1, name: "Members" }).waitFor();
    await page.locator("p.loading").first().waitFor({ state: "detached" });
    // The owner's row (the top bar shows the email too: look in the page's main part only).
    await page.locator("main").getByText(owner.email).first().waitFor();
    await screenshot(page, "members", { phone: true });
  }, 60_000);

  it("kills the sandbox from the list after confirming", async () => {
    const id = needSandbox();
    const page = await fx.pageAs(owner);
    const row = page.locator(`tr[data-row="${id}"]`);
    await row.waitFor();
    await row.getByRole("button", { name: "Kill" }).click();
    await page.getByRole("dialog", { name: "Kill sandbox?" }).getByRole("button", { name: "Kill" }).click();
    // Gone from the list, or listed as killed: either way no longer running.
    const running = row.locator('.badge[data-state="running"]');
    const deadline = Date.now() + 60_000;
    while ((await row.count()) > 0 && (await running.count()) > 0) {
      if (Date.now() > deadline) throw new Error(`sandbox ${id} still listed as running a minute after Kill`);
      await page.waitForTimeout(250);
    }
    const after = await apiGet<{ state?: string }>(page, `/v1/sandboxes/${encodeURIComponent(id)}`);
    expect(after.status === 404 || after.body.state !== "running").toBe(true);
  }, 90_000);

  it("starts a template build from the Templates page and watches its log until ready", async () => {
    const page = await fx.pageAs(owner);
    await page.getByRole("link", { name: "Templates" }).click();
    await page.getByRole("heading", { level: 1, name: "Templates" }).waitFor();
    await page.getByRole("button", { name: "New build" }).click();
    const dialog = page.getByRole("dialog", { name: "New build" });
    await dialog.getByLabel("Name").fill("dash-hello");
    const spec = dialog.getByLabel("Build spec (JSON)");
    // The prefilled example must already be valid JSON; the test's own spec is one tiny step.
    JSON.parse(await spec.inputValue());
    await spec.fill(
      JSON.stringify(
        { from: { image: "base" }, steps: [{ type: "run", command: "echo built > /tmp/x" }] },
        null,
        2,
      ),
    );
    await screenshot(page, "template-new-build");
    await dialog.getByRole("button", { name: "Start build" }).click();
    await page.waitForURL(/#\/builds\/[^/?]+$/);
    const log = page.locator('[data-testid="build-log"]');
    await log.waitFor();
    expect(await log.getAttribute("aria-live")).toBe("polite");

    // The log grows while the build runs (sampled until the status is final).
    const lengths: number[] = [];
    const deadline = Date.now() + 600_000;
    let state = "";
    for (;;) {
      lengths.push(((await log.textContent()) ?? "").length);
      state = (await page.locator(".badge[data-state]").first().getAttribute("data-state")) ?? "";
      if (state === "ready" || state === "error" || Date.now() > deadline) break;
      await page.waitForTimeout(500);
    }
    const text = (await log.textContent()) ?? "";
    expect(state, text).toBe("ready");
    const distinct = [...new Set(lengths)];
    expect(distinct.length, `log lengths seen: ${distinct.join(",")}`).toBeGreaterThanOrEqual(2);
    expect(text).toContain("echo built");
    await screenshot(page, "build-log", { phone: true });

    await page.getByRole("link", { name: "Templates" }).click();
    await page.getByRole("link", { name: "dash-hello" }).waitFor();
    await screenshot(page, "templates");
  }, 720_000);

  it("signs out", async () => {
    const page = await fx.pageAs(owner);
    await signOut(page);
    expect((await apiGet(page, "/v1/auth/session")).status).toBe(401);
  });
});
