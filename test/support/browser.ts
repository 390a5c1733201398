/**
 * A browser for tests: keeps cookies per host and follows redirects one by
 * one, stopping at the first one that leaves for `stopAt` (the app's
 * redirect_uri, or any of several prefixes), whose URL it returns without
 * requesting it.
 */
export interface Visit {
  /** The URL the chain stopped at (the app's callback), or null when a page answered. */
  redirectedTo: string | null;
  status: number;
  body: string;
  /** Every URL requested, in order. */
  trail: string[];
}

export class TestBrowser {
  private readonly jar = new Map<string, Map<string, string>>();

  cookie(host: string, name: string): string | undefined {
    return this.jar.get(host)?.get(name);
  }

  private store(url: URL, headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const cookies = this.jar.get(url.host) ?? new Map<string, string>();
      this.jar.set(url.host, cookies);
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired) cookies.delete(name);
      else cookies.set(name, value);
    }
  }

  private header(url: URL): Record<string, string> {
    const cookies = this.jar.get(url.host);
    if (!cookies || cookies.size === 0) return {};
    return { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  }

  async visit(
    start: string,
    stopAt: string | readonly string[],
    init: { method?: string; form?: Record<string, string> } = {},
  ): Promise<Visit> {
    const trail: string[] = [];
    let url = new URL(start);
    let method = init.method ?? 'GET';
    let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hop = 0; hop < 15; hop++) {
      trail.push(url.toString());
      const headers: Record<string, string> = this.header(url);
      if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const res = await fetch(url, { method, headers, body, redirect: 'manual' });
      this.store(url, res.headers);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        const next = new URL(location, url);
        const stops = typeof stopAt === 'string' ? [stopAt] : stopAt;
        if (stops.some((prefix) => next.toString().startsWith(prefix)))
          return { redirectedTo: next.toString(), status: res.status, body: '', trail };
        url = next;
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        continue;
      }
      return { redirectedTo: null, status: res.status, body: await res.text(), trail };
    }
    throw new Error(`too many redirects from ${start}`);
  }
}
