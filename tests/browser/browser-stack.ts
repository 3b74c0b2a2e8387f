import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { findHostLeftovers, NO_LEFTOVERS } from "../e2e/host-leftovers.js";
import { type Stack, startStack } from "../e2e/stack-fixture.js";
import { type Account, ensureDashboardBuilt, launchChromium, newContext, signIn } from "./browser-fixture.js";

export interface BrowserStack {
  /** The control plane's URL: the dashboard's and the API's. */
  readonly url: string;
  readonly stack: Stack;
  /** A page in a browser context of its own (no cookies or cache), closed after the test. */
  newPage(): Promise<Page>;
  /** A new page, signed in as `account` through the sign-in page. */
  pageAs(account: Account): Promise<Page>;
}

/**
 * A test file's stack and browser, through vitest's hooks: the dashboard built, a real control
 * plane (with one real host agent when `agent` is given), headless chromium; each test's
 * contexts closed after it; at the end everything stopped and the agent's host checked for
 * leftovers.
 */
export function useBrowserStack(agent?: { prefix: string; firstSlot: number }): BrowserStack {
  let stack: Stack | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  beforeAll(async () => {
    ensureDashboardBuilt();
    stack = await startStack(
      agent ? { agents: [{ netNamePrefix: agent.prefix, firstSlot: agent.firstSlot, maxSlots: 4 }] } : {},
    );
    browser = await launchChromium();
  }, 180_000);
  afterEach(async () => {
    for (const c of contexts.splice(0)) await c.close();
  });
  afterAll(async () => {
    await browser?.close();
    const dataDir = stack?.agents[0]?.dataDir ?? "";
    await stack?.close();
    if (agent && dataDir) expect(findHostLeftovers(dataDir, agent.prefix)).toEqual(NO_LEFTOVERS);
  }, 120_000);
  const fx: BrowserStack = {
    get stack(): Stack {
      if (!stack) throw new Error("the stack did not start (see beforeAll)");
      return stack;
    },
    get url(): string {
      return fx.stack.url;
    },
    async newPage() {
      if (!browser) throw new Error("the browser did not start (see beforeAll)");
      const context = await newContext(browser);
      contexts.push(context);
      return context.newPage();
    },
    async pageAs(account) {
      const page = await fx.newPage();
      await signIn(page, fx.url, account);
      return page;
    },
  };
  return fx;
}
