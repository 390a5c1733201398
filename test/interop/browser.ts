/**
 * What does a browser send when a sign-in's steps land on different nodes?
 * One browser, cookies kept per host name and not per port (RFC 6265 §8.5:
 * "cookies do not provide isolation by port"), so the binding cookie node A
 * set at /oauth/authorize reaches node B's ACS as it reaches any node behind
 * the one public host. Follows redirects one at a time and stops at the first
 * that leaves for `stopAt`, without requesting it; `trail` is every URL asked.
 */
export class HostBrowser {
  private readonly jar = new Map<string, Map<string, string>>();

  private store(url: URL, headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const cookies = this.jar.get(url.hostname) ?? new Map<string, string>();
      this.jar.set(url.hostname, cookies);
      const name = pair.slice(0, eq).trim();
      if (attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))) cookies.delete(name);
      else cookies.set(name, pair.slice(eq + 1).trim());
    }
  }

  async visit(
    start: string,
    stopAt: readonly string[],
    init: { method?: string; form?: Record<string, string> } = {},
  ): Promise<{ redirectedTo: string | null; status: number; body: string; trail: string[] }> {
    const trail: string[] = [];
    let url = new URL(start);
    let method = init.method ?? 'GET';
    let body = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hop = 0; hop < 15; hop++) {
      trail.push(url.toString());
      const cookies = this.jar.get(url.hostname);
      const headers: Record<string, string> = {};
      if (cookies?.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const res = await fetch(url, { method, headers, body, redirect: 'manual' });
      this.store(url, res.headers);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        const next = new URL(location, url);
        if (stopAt.some((prefix) => next.toString().startsWith(prefix)))
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
