/**
 * What the browser tests share: the dashboard's build, a headless Debian chromium driven by
 * playwright-core, a fresh context (cookies, storage, cache) per test, screenshots for the
 * README, and the sign-up/sign-in steps every test starts with.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { DASHBOARD_DIST_DIR } from "@wrenn/dashboard";
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../..");
export const SCREENSHOTS_DIR = join(ROOT, "docs", "screenshots");

/** Debian's chromium (`make test` installs it); WRENN_CHROMIUM names another binary. */
export const CHROMIUM_PATH = process.env.WRENN_CHROMIUM || "/usr/bin/chromium";

export const LAPTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

/** How a test reads an element's text (given how long it may wait for the element). */
export type TextReader = (locator: Locator, timeoutMs: number) => Promise<string>;

export const textOf: TextReader = async (locator, timeout) => (await locator.textContent({ timeout })) ?? "";

/** Line by line: xterm's DOM renderer draws each terminal row as one child element. */
export const linesOf: TextReader = (locator, timeout) =>
  locator.evaluate((el) => [...el.children].map((row) => row.textContent ?? "").join("\n"), undefined, {
    timeout,
  });

/**
 * Polls a locator's text until it matches (playwright-core has no web-first assertions);
 * resolves to the matching text, throws with the last text seen when time runs out.
 */
export async function waitForText(
  locator: Locator,
  want: string | RegExp,
  options: { timeoutMs?: number; read?: TextReader } = {},
): Promise<string> {
  const { timeoutMs = 15_000, read = textOf } = options;
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    last = await read(locator, Math.max(1, deadline - Date.now())).catch(() => last);
    if (typeof want === "string" ? last.includes(want) : want.test(last)) return last;
    if (Date.now() > deadline)
      throw new Error(`waited ${timeoutMs} ms for ${String(want)}; the text was: ${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The newest modification time under `path` (a file or a tree). */
function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/**
 * Builds the dashboard when its dist/ is missing or older than its sources (a bare
 * `vitest run` after an edit or a branch switch); `make test` builds it before the tests,
 * through `npm run build`.
 */
export function ensureDashboardBuilt(): void {
  const built = join(DASHBOARD_DIST_DIR, "index.html");
  const pkg = join(ROOT, "packages", "dashboard");
  const sources = Math.max(newestMtime(join(pkg, "web")), newestMtime(join(pkg, "vite.config.ts")));
  if (existsSync(built) && statSync(built).mtimeMs >= sources) return;
  execFileSync("npm", ["run", "build", "-w", "@wrenn/dashboard"], { cwd: ROOT, stdio: "ignore" });
}

/** Headless chromium; `--no-sandbox` because the suite runs as root, where its sandbox refuses to start. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no chromium at ${CHROMIUM_PATH}: run scripts/ensure-chromium.sh (make test does)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** A context of its own (no cookies, storage or cache from another test) at laptop width. */
export async function newContext(browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: LAPTOP, acceptDownloads: true });
  context.setDefaultTimeout(15_000);
  return context;
}

/**
 * Writes docs/screenshots/<name>.png at laptop width, and `<name>-phone.png` at phone width
 * too when asked; the page's viewport is back at laptop width afterwards.
 */
export async function screenshot(page: Page, name: string, options: { phone?: boolean } = {}): Promise<void> {
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  await page.setViewportSize(LAPTOP);
  await page.screenshot({ path: join(SCREENSHOTS_DIR, `${name}.png`), animations: "disabled" });
  if (options.phone) {
    await page.setViewportSize(PHONE);
    await page.screenshot({ path: join(SCREENSHOTS_DIR, `${name}-phone.png`), animations: "disabled" });
    await page.setViewportSize(LAPTOP);
  }
}

export interface Account {
  email: string;
  password: string;
  name: string;
}

let accounts = 0;
/** A new account's details, unique in this process. */
export function newAccount(name: string): Account {
  accounts++;
  const tag = `${Date.now().toString(36)}${accounts}`;
  return { email: `${name.toLowerCase()}-${tag}@example.test`, password: `correct horse ${tag}`, name };
}

/** Signs up through the sign-up page; resolves on the signed-in sandboxes page. */
export async function signUp(page: Page, baseUrl: string, account: Account): Promise<void> {
  await page.goto(`${baseUrl}/#/signup`);
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Name").fill(account.name);
  await page.getByLabel("Password").fill(account.password);
  await page.getByRole("button", { name: "Sign up" }).click();
  await signedIn(page);
}

/** Signs in through the sign-in page; resolves on the signed-in sandboxes page. */
export async function signIn(page: Page, baseUrl: string, account: Account): Promise<void> {
  await page.goto(`${baseUrl}/#/signin`);
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password").fill(account.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await signedIn(page);
}

/** Waits for the signed-in shell (its "Sign out" button) on the sandboxes page. */
export async function signedIn(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  await page.waitForURL(/#\/sandboxes/);
}

/** Signs out with the top bar's button; resolves on the sign-in page. */
export async function signOut(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  await page.waitForURL(/#\/signin/);
}

/** The API as the page's session sees it (the session cookie; GETs need no CSRF token). */
export async function apiGet<T>(page: Page, path: string): Promise<{ status: number; body: T }> {
  return page.evaluate(async (p) => {
    const res = await fetch(p, { credentials: "same-origin" });
    return { status: res.status, body: (await res.json().catch(() => null)) as never };
  }, path);
}
