import sparticuz from '@sparticuz/chromium';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * A real headless Chromium for browser tests: `playwright-core` launching the
 * Chromium binary `@sparticuz/chromium` ships in npm, so `npm install && npm
 * test` needs no apt and no browser download. Cookies, SameSite, secure
 * contexts, redirects and auto-submitting forms are the browser's own. The
 * small API below (poll-until helpers with bounded waits) is what the e2e
 * tests read; each page has a fresh context, i.e. its own cookie jar.
 */
export class ChromiumPage {
  constructor(
    private readonly context: BrowserContext,
    private readonly page: Page,
  ) {}

  async goto(url: string): Promise<void> {
    await this.page.goto(url, { waitUntil: 'commit' });
  }

  /** The value of a JavaScript expression in the page (null while it navigates or when it throws). */
  async evaluate<T>(expression: string): Promise<T | null> {
    try {
      return ((await this.page.evaluate(expression)) as T | undefined) ?? null;
    } catch {
      return null;
    }
  }

  url(): Promise<string | null> {
    return this.evaluate<string>('document.readyState === "complete" ? location.href : null');
  }

  text(): Promise<string | null> {
    return this.evaluate<string>('document.body ? document.body.innerText : ""');
  }

  /** Waits until a loaded page's URL passes `test` (a bounded wait, not a timing check). */
  async waitForUrl(test: (url: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    let last: string | null = null;
    while (Date.now() < until) {
      last = await this.url();
      if (last !== null && test(last)) return last;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(
      `page never reached the URL expected; last at ${last}: ${(await this.text())?.slice(0, 500)}`,
    );
  }

  /** Waits until a loaded page's text holds `expected`; returns that text. */
  async waitForText(expected: string, timeoutMs = 20_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    let text: string | null = null;
    while (Date.now() < until) {
      text = (await this.url()) === null ? null : await this.text();
      if (text?.includes(expected)) return text;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`page never showed "${expected}"; at ${await this.url()}: ${text?.slice(0, 500)}`);
  }

  /** Clicks the first element matching `selector` (waiting for it to appear). */
  async click(selector: string, timeoutMs = 20_000): Promise<void> {
    await this.clickWhere(
      `(() => { const e = document.querySelector(${JSON.stringify(selector)}); if (!e) return false; e.click(); return true; })()`,
      `no ${selector}`,
      timeoutMs,
    );
  }

  /** Clicks the first link whose text is `text` (waiting for it to appear). */
  async clickLink(text: string, timeoutMs = 20_000): Promise<void> {
    await this.clickWhere(
      `(() => { const a = [...document.querySelectorAll('a')].find((e) => e.textContent.trim() === ${JSON.stringify(text)}); if (!a) return false; a.click(); return true; })()`,
      `no link "${text}"`,
      timeoutMs,
    );
  }

  private async clickWhere(js: string, missing: string, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if ((await this.evaluate<boolean>(js)) === true) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${missing} on ${await this.url()}: ${(await this.text())?.slice(0, 500)}`);
  }

  /** The browser's cookies for `url`, as it would send them. */
  async cookies(url: string): Promise<{ name: string; secure: boolean; sameSite?: string }[]> {
    return (await this.context.cookies(url)).map((c) => ({
      name: c.name,
      secure: c.secure,
      sameSite: c.sameSite,
    }));
  }
}

export class Chromium {
  private constructor(private readonly browser: Browser) {}

  static async launch(): Promise<Chromium> {
    const browser = await chromium.launch({
      executablePath: await sparticuz.executablePath(),
      args: sparticuz.args,
      headless: true,
    });
    return new Chromium(browser);
  }

  /** A new tab in a fresh browser context (its own cookie jar). */
  async newPage(): Promise<ChromiumPage> {
    const context = await this.browser.newContext();
    return new ChromiumPage(context, await context.newPage());
  }

  async close(): Promise<void> {
    await this.browser.close();
  }
}
