import request from 'supertest';
import { buildAdminTestApp, type AdminTestApp } from '../support/admin.js';
import type { TestDatabase } from '../support/database.js';
import { tenantSnapshot } from '../support/tenant-admin-token.js';

/**
 * The portal as a browser drives it, over real HTTP (supertest against the
 * real app): links created through the admin API, opened with the confirm
 * page's POST, the session cookie carried by hand (the test base URL is https,
 * so the cookie is `__Host-gh_portal; Secure`, which a cookie jar would not
 * send over supertest's plain http), and the CSRF token read from a page.
 */
export interface PortalBrowser {
  cookie: string;
  get: (path: string) => request.Test;
  /** A form POST; `_csrf` is added unless `csrf: null` (or a wrong one) is given. */
  post: (path: string, form: Record<string, string | string[]>, csrf?: string | null) => request.Test;
  csrf: string;
}

export const COOKIE = '__Host-gh_portal';

export async function setupLink(
  a: AdminTestApp,
  tenantId: string,
  intents: string[],
  ttl?: number,
): Promise<{ id: string; url: string; token: string }> {
  const res = await a
    .op()
    .post(`/admin/v1/tenants/${tenantId}/setup-links`)
    .send({ intents, ...(ttl ? { ttl } : {}) });
  if (res.status !== 201) throw new Error(`setup link: ${res.status} ${res.text}`);
  const body = res.body as { id: string; url: string };
  return { ...body, token: new URL(body.url).searchParams.get('token') ?? '' };
}

export async function portalLink(a: AdminTestApp): Promise<string> {
  const res = await a.op().post('/admin/v1/portal-links').send({});
  if (res.status !== 201) throw new Error(`portal link: ${res.status} ${res.text}`);
  return new URL((res.body as { url: string }).url).searchParams.get('token') ?? '';
}

/** POST /portal/start with the token; the answer, untouched. */
export function start(a: AdminTestApp, token: string): request.Test {
  return request(a.app).post('/portal/start').type('form').send({ token });
}

/** Opens a link and reads the CSRF token from the first portal page; throws when the link is refused. */
export async function openPortal(a: AdminTestApp, token: string): Promise<PortalBrowser> {
  const res = await start(a, token);
  if (res.status !== 303) throw new Error(`start: ${res.status} ${res.text.slice(0, 300)}`);
  const setCookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  const cookie = setCookie.find((c) => c.startsWith(`${COOKIE}=`))?.split(';')[0] ?? '';
  const get = (path: string) => request(a.app).get(path).set('Cookie', cookie);
  const home = await get(String(res.headers.location));
  const csrf = /name="_csrf" value="([^"]+)"/.exec(home.text)?.[1] ?? '';
  const post = (path: string, form: Record<string, string | string[]>, token: string | null = csrf) =>
    request(a.app)
      .post(path)
      .set('Cookie', cookie)
      .type('form')
      .send(token === null ? form : { ...form, _csrf: token });
  return { cookie, get, post, csrf };
}

export function buildPortalApp(t: TestDatabase, env: Record<string, string> = {}): AdminTestApp {
  return buildAdminTestApp(t, env);
}

/**
 * Every row a tenant owns, as its runtime role reads it inside the tenant
 * (tenant tables force RLS, even for their owner): test/support's snapshot,
 * plus counts the portal tests name.
 */
export async function portalSnapshot(t: TestDatabase, tenantId: string): Promise<Record<string, unknown>> {
  const counts = await t.db.withTenant(tenantId, async (em) => {
    const [row] = await em.query<Record<string, number>[]>(
      `SELECT (SELECT count(*) FROM connections)::int AS connections,
              (SELECT count(*) FROM domains)::int AS domains,
              (SELECT count(*) FROM scim_tokens)::int AS scim_tokens,
              (SELECT count(*) FROM setup_links)::int AS setup_links`,
    );
    return row ?? {};
  });
  return { ...counts, rows: await tenantSnapshot(t, tenantId) };
}
