/**
 * The web dashboard's first load on this host, each load in a new browser context (an empty
 * HTTP cache, no cookies) of one headless chromium, the control plane on this machine:
 * - sign-in page: until its "Sign in" button is rendered and enabled (the form is usable):
 *   the page's own `performance.now()` (ms since navigation start) at the first animation
 *   frame that shows it, checked every frame from the document's start; beside it the
 *   navigation's `domInteractive`, and the bytes transferred (CDP `Network.loadingFinished`
 *   encodedDataLength: compressed bodies plus headers);
 * - the baseline, in the same run and browser: a static HTML sign-in form (the same labels
 *   and button, no script, no stylesheet) from a plain Node HTTP server on this machine,
 *   so the figures show what the app's bundle, its boot and its session check cost on top
 *   of the browser's own page load;
 * - the signed-in sandboxes page (a session cookie set in the new context): until its
 *   heading is shown and no `p.loading` is left, with the API calls it makes.
 * `WRENN_BENCH_DASHBOARD_LOADS` (default 10) loads of each, interleaved, after one warm-up each.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createControlPlane } from "@wrenn/control-plane";
import { createSilentLogger } from "@wrenn/shared";
import type { Browser } from "playwright-core";
import { ensureDashboardBuilt, launchChromium } from "../../tests/browser/browser-fixture.js";
import type { SuiteContext } from "../lib/suite.js";

export const name = "dashboard";

const LOADS = Number(process.env.WRENN_BENCH_DASHBOARD_LOADS || 10);

const STATIC_SIGN_IN = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in</title></head>
<body><main><h1>Sign in</h1><form method="post" action="/signin">
<label>Email <input type="email" name="email" required></label>
<label>Password <input type="password" name="password" required></label>
<button type="submit">Sign in</button></form></main></body></html>`;

interface Load {
  /** The page's performance.now() when the awaited element was usable: ms from navigation start. */
  readyMs: number;
  domInteractiveMs: number;
  /** Bytes on the wire for every response finished by then (bodies as sent, headers included). */
  transferred: number;
}

/**
 * Loads `url` in a fresh context. `readyCheck` (a JavaScript expression, true once the page
 * is usable) is evaluated in the page on every animation frame from the document's start,
 * so the time recorded is the first frame that shows the usable page, with no round trip
 * to this process in it.
 */
async function coldLoad(
  browser: Browser,
  url: string,
  readyCheck: string,
  cookie?: { name: string; value: string; url: string },
): Promise<Load> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    if (cookie) await context.addCookies([cookie]);
    await context.addInitScript(
      `(() => { const tick = () => { if (${readyCheck}) { window.__readyAt = performance.now(); return; } requestAnimationFrame(tick); }; requestAnimationFrame(tick); })()`,
    );
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    let transferred = 0;
    cdp.on("Network.loadingFinished", (e) => {
      transferred += e.encodedDataLength;
    });
    await cdp.send("Network.enable");
    await page.goto(url, { waitUntil: "commit" });
    // Strings: these run in the page (the repository's TypeScript has no DOM types).
    // Polled with evaluate (the dashboard's CSP refuses waitForFunction's string eval).
    const deadline = Date.now() + 30_000;
    while ((await page.evaluate("window.__readyAt")) === undefined) {
      if (Date.now() > deadline) throw new Error(`${url}: not ready after 30 s (${readyCheck})`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const [readyMs, domInteractiveMs] = (await page.evaluate(
      "[window.__readyAt, performance.getEntriesByType('navigation')[0]?.domInteractive ?? NaN]",
    )) as [number, number];
    // CDP events arrive in order: after this round trip every response finished by now has reported.
    await cdp.send("Runtime.evaluate", { expression: "0" });
    return { readyMs, domInteractiveMs, transferred };
  } finally {
    await context.close();
  }
}

const SIGN_IN_USABLE =
  "[...document.querySelectorAll('button')].some((b) => b.textContent.trim() === 'Sign in' && !b.disabled)";
const SANDBOXES_SHOWN =
  "[...document.querySelectorAll('h1')].some((h) => h.textContent.trim() === 'Sandboxes') && !document.querySelector('p.loading')";

function staticServer(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    // Only the page: the browser's own favicon request gets an empty 404, as anywhere else.
    if (req.url !== "/") {
      res.writeHead(404, { "content-length": "0" });
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" });
    res.end(STATIC_SIGN_IN);
  });
  return new Promise((done) =>
    server.listen(0, "127.0.0.1", () =>
      done({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` }),
    ),
  );
}

export async function run(ctx: SuiteContext): Promise<void> {
  // Measures the dashboard as its sources are now (rebuilt when dist/ is older).
  ensureDashboardBuilt();
  const cp = await createControlPlane({
    config: { port: 0, pgliteDir: "memory", templateFilesDir: join(ctx.scratchDir, "template-files") },
    logger: createSilentLogger(),
  });
  await cp.start();
  const plain = await staticServer();
  let browser: Browser | undefined;
  try {
    const signup = await fetch(`${cp.url}/v1/auth/signup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "bench@example.test", password: "bench password 1234", name: "Bench" }),
    });
    if (signup.status !== 201) throw new Error(`sign-up: ${signup.status} ${await signup.text()}`);
    const setCookie = signup.headers.get("set-cookie") ?? "";
    const value = /wrenn_session=([^;]+)/.exec(setCookie)?.[1];
    if (!value) throw new Error(`sign-up set no session cookie: ${setCookie}`);
    const cookie = { name: "wrenn_session", value, url: cp.url };

    browser = await launchChromium();
    const b = browser;
    const variants = {
      static: () => coldLoad(b, plain.url, SIGN_IN_USABLE),
      signIn: () => coldLoad(b, `${cp.url}/`, SIGN_IN_USABLE),
      sandboxes: () => coldLoad(b, `${cp.url}/#/sandboxes`, SANDBOXES_SHOWN, cookie),
    } as const;
    type Variant = keyof typeof variants;
    const loads: Record<Variant, Load[]> = { static: [], signIn: [], sandboxes: [] };
    const keys = Object.keys(variants) as Variant[];
    for (const k of keys) await variants[k]();
    for (let i = 0; i < LOADS; i++) {
      for (const k of keys) loads[k].push(await variants[k]());
      ctx.log(`cold load round ${i + 1}/${LOADS}`);
    }

    const m = ctx.measurements;
    const ms = (k: Variant, f: (l: Load) => number) => loads[k].map(f);
    const kib = (k: Variant) => loads[k].map((l) => l.transferred / 1024);
    m.record(
      "static HTML sign-in form usable (baseline)",
      "ms",
      ms("static", (l) => l.readyMs),
    );
    m.record(
      "static HTML domInteractive",
      "ms",
      ms("static", (l) => l.domInteractiveMs),
    );
    m.record("static HTML transferred", "KiB", kib("static"));
    m.record(
      "dashboard sign-in form usable, cold cache",
      "ms",
      ms("signIn", (l) => l.readyMs),
      {
        baseline: "static HTML sign-in form usable (baseline)",
      },
    );
    m.record(
      "dashboard domInteractive, cold cache",
      "ms",
      ms("signIn", (l) => l.domInteractiveMs),
      {
        baseline: "static HTML domInteractive",
      },
    );
    m.record("dashboard sign-in page transferred", "KiB", kib("signIn"), {
      baseline: "static HTML transferred",
      notes: "index.html and its assets (brotli as served) and GET /v1/auth/session, headers included",
    });
    m.record(
      "signed-in sandboxes page shown, cold cache",
      "ms",
      ms("sandboxes", (l) => l.readyMs),
      {
        baseline: "dashboard sign-in form usable, cold cache",
        notes: "a team with no sandboxes; until the page's heading and no loading marker",
      },
    );
    m.record("signed-in sandboxes page transferred", "KiB", kib("sandboxes"), {
      baseline: "dashboard sign-in page transferred",
      notes: "finished responses only: the live events stream (SSE) is open, not counted",
    });
  } finally {
    await browser?.close();
    await new Promise((r) => plain.server.close(r));
    await cp.stop();
  }
}
