/**
 * The dashboard's live sandbox list, snapshots and forks in real headless chromium, against a
 * real control plane with one real host agent (TCG VMs: slow, so one sandbox serves every
 * test, and the sandboxes started from it are killed as soon as they are checked).
 * The tests run in order and share the sandbox; each opens fresh browser contexts.
 */
import type { Locator, Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import {
  type Account,
  apiGet,
  newAccount,
  screenshot,
  signIn,
  signUp,
  waitForText,
} from "./browser-fixture.js";
import { useBrowserStack } from "./browser-stack.js";

const PREFIX = "wbs";
const BOOT_MS = 240_000;
const SNAPSHOT = "dash-snap";
const FOLDER = "before-snapshot";

describe("dashboard live list, snapshots and forks in a browser (real VMs)", () => {
  const fx = useBrowserStack({ prefix: PREFIX, firstSlot: 5700 });
  const owner: Account = newAccount("Owner");
  let sandboxId = "";

  const newPage = () => fx.newPage();
  /** A fresh context's page, signed in as the owner (signed up by the first test). */
  const ownerPage = async (): Promise<Page> => {
    const page = await newPage();
    await signIn(page, fx.url, owner);
    return page;
  };
  const needSandbox = () => {
    if (!sandboxId) throw new Error("the sandbox was not created (see the first test)");
    return sandboxId;
  };
  const detailPath = (id: string) => `${fx.url}/#/sandboxes/${encodeURIComponent(id)}`;
  const badge = (scope: Page | Locator, state: string) =>
    scope.locator(`.badge[data-state="${state}"]`).first();
  /** The sandbox id a detail page's address names. */
  const idOf = (page: Page) => decodeURIComponent(new URL(page.url()).hash.replace(/^#\/sandboxes\//, ""));

  /** Kills the sandbox shown on the page with its Kill button; resolves back on the list. */
  const killFromDetail = async (page: Page) => {
    await page.getByRole("button", { name: "Kill", exact: true }).click();
    await page.getByRole("dialog", { name: "Kill sandbox?" }).getByRole("button", { name: "Kill" }).click();
    await page.waitForURL(/#\/sandboxes$/, { timeout: 60_000 });
  };

  /** The Files tab's current directory, once the tab shows it. */
  const openFiles = async (page: Page): Promise<string> => {
    await page.getByRole("tab", { name: "Files" }).click();
    const pathInput = page.getByLabel("Path");
    await pathInput.waitFor();
    return (await pathInput.inputValue()).replace(/\/+$/, "");
  };

  it(
    "signs up and creates a sandbox",
    async () => {
      const page = await newPage();
      await signUp(page, fx.url, owner);
      await page.getByRole("button", { name: "New sandbox" }).click();
      const dialog = page.getByRole("dialog", { name: "New sandbox" });
      await dialog.getByLabel("Template").selectOption("base");
      await dialog.getByLabel("Timeout (seconds)").fill("1800");
      await dialog.getByRole("button", { name: "Create" }).click();
      await page.waitForURL(/#\/sandboxes\/[^/?]+$/, { timeout: BOOT_MS });
      sandboxId = idOf(page);
      await badge(page, "running").waitFor({ timeout: BOOT_MS });
    },
    BOOT_MS + 60_000,
  );

  it("the list follows another page's Pause live (no reload), and its row resumes the sandbox", async () => {
    const id = needSandbox();
    const list = await ownerPage();
    const row = list.locator(`tr[data-row="${id}"]`);
    await badge(row, "running").waitFor();
    // Only the events stream may update the list now: the page's 10 s refresh runs only while
    // the document is visible, so the test makes it look hidden; a marker shows no reload.
    // (A string: the tests' TypeScript has no DOM types.)
    await list.evaluate(`(() => {
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
      window.noReload = true;
    })()`);
    const listUrl = list.url();

    const detail = await ownerPage();
    await detail.goto(detailPath(id));
    await badge(detail, "running").waitFor();
    await detail.getByRole("button", { name: "Pause", exact: true }).click();
    await badge(detail, "paused").waitFor({ timeout: 120_000 });

    await badge(row, "paused").waitFor({ timeout: 15_000 });
    expect(await list.evaluate("window.noReload === true")).toBe(true);
    expect(list.url()).toBe(listUrl);

    await row.getByRole("button", { name: "Resume" }).click();
    await badge(row, "running").waitFor({ timeout: 120_000 });
  }, 300_000);

  it(
    "snapshots the sandbox from its page and starts a sandbox from the snapshot with the same files",
    async () => {
      const id = needSandbox();
      const page = await ownerPage();
      await page.goto(detailPath(id));
      await badge(page, "running").waitFor();
      // A folder made before the snapshot must be in the sandbox started from it.
      const dir = await openFiles(page);
      await page.getByRole("button", { name: "New folder" }).click();
      const folderDialog = page.getByRole("dialog", { name: "New folder" });
      await folderDialog.getByLabel("Folder name").fill(FOLDER);
      await folderDialog.getByRole("button", { name: "Create" }).click();
      await page.locator(`tr[data-row="${dir}/${FOLDER}"]`).waitFor({ timeout: 30_000 });

      await page.getByRole("button", { name: "Snapshot", exact: true }).click();
      const dialog = page.getByRole("dialog", { name: "Snapshot sandbox" });
      await dialog.getByLabel("Snapshot name").fill(SNAPSHOT);
      await dialog.getByRole("button", { name: "Create snapshot" }).click();
      await waitForText(dialog.getByRole("status"), SNAPSHOT, { timeoutMs: 180_000 });
      expect(await dialog.getByRole("link", { name: "Snapshots page" }).getAttribute("href")).toBe(
        "#/snapshots",
      );
      await dialog.getByRole("button", { name: "New sandbox from it" }).click();
      await page.waitForURL((url) => /#\/sandboxes\/[^/?]+$/.test(url.hash) && !url.hash.endsWith(id), {
        timeout: BOOT_MS,
      });
      const fromSnapshot = idOf(page);
      await page.getByRole("heading", { level: 1, name: fromSnapshot }).waitFor();
      await badge(page, "running").waitFor({ timeout: BOOT_MS });
      expect(await openFiles(page)).toBe(dir);
      await page.locator(`tr[data-row="${dir}/${FOLDER}"]`).waitFor({ timeout: 30_000 });
      await killFromDetail(page);

      await page.getByRole("link", { name: "Snapshots", exact: true }).click();
      await page.getByRole("heading", { level: 1, name: "Snapshots" }).waitFor();
      const row = page.locator(`tr[data-row="${SNAPSHOT}"]`);
      await row.getByRole("link", { name: id }).waitFor();
      await screenshot(page, "snapshots");
    },
    BOOT_MS + 300_000,
  );

  it(
    "forks the running sandbox and links the fork",
    async () => {
      const id = needSandbox();
      const page = await ownerPage();
      await page.goto(detailPath(id));
      await badge(page, "running").waitFor();
      await page.getByRole("button", { name: "Fork", exact: true }).click();
      const dialog = page.getByRole("dialog", { name: "Fork sandbox" });
      await dialog.getByLabel("Count").fill("1");
      await dialog.getByRole("button", { name: "Fork" }).click();
      const link = dialog.locator(".fork-list a");
      await link.first().waitFor({ timeout: BOOT_MS });
      expect(await link.count()).toBe(1);
      const fork = ((await link.first().textContent()) ?? "").trim();
      expect(fork).not.toBe(id);
      await link.first().click();
      await page.getByRole("heading", { level: 1, name: fork }).waitFor();
      await badge(page, "running").waitFor({ timeout: 60_000 });
      await killFromDetail(page);
    },
    BOOT_MS + 120_000,
  );

  it("kills the sandbox, then deletes the snapshot after confirming", async () => {
    const id = needSandbox();
    const page = await ownerPage();
    await page.goto(detailPath(id));
    await badge(page, "running").waitFor();
    await killFromDetail(page);

    await page.getByRole("link", { name: "Snapshots", exact: true }).click();
    const row = page.locator(`tr[data-row="${SNAPSHOT}"]`);
    await row.getByRole("button", { name: "Delete" }).click();
    await page
      .getByRole("dialog", { name: "Delete snapshot?" })
      .getByRole("button", { name: "Delete" })
      .click();
    await row.waitFor({ state: "detached", timeout: 60_000 });
    expect((await apiGet(page, `/v1/snapshots/${SNAPSHOT}`)).status).toBe(404);
  }, 120_000);
});
