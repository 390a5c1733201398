import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { authorizeUrl, registerMainApp, startSsoServer, type SsoServer } from '../support/sso-app.js';

/**
 * Every browser page comes from one renderer (src/http/pages.ts): the sign-in
 * pages of src/sso and the error pages of src/tokens/authorize share a layout
 * and a Content-Security-Policy. Before, the authorize error pages had their
 * own template and fell back to helmet's default policy (frame-ancestors and
 * form-action 'self', default-src 'self').
 */
const CALLBACK = 'http://localhost:3000/callback';

let t: TestDatabase;
let gh: SsoServer;
let clientId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t);
  ({ clientId } = await registerMainApp(gh, CALLBACK));
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

const head = (html: string) => html.slice(0, html.indexOf('<title>'));
const style = (html: string) => /<style>[\s\S]*<\/style>/.exec(html)?.[0];
const withoutFormAction = (csp: string | null) => (csp ?? '').replace(/form-action [^;]*;/, '');

describe('browser pages', () => {
  it('renders the email form and an authorize error page with one layout and one policy', async () => {
    const form = await fetch(authorizeUrl(gh, clientId, CALLBACK, {}), { redirect: 'manual' });
    const error = await fetch(authorizeUrl(gh, randomUUID(), CALLBACK, {}), { redirect: 'manual' });
    const [formHtml, errorHtml] = [await form.text(), await error.text()];
    expect([form.status, error.status]).toEqual([200, 400]);
    expect(errorHtml).toContain('<code>unknown_client</code>');

    expect(head(errorHtml)).toBe(head(formHtml));
    expect(style(errorHtml)).toBe(style(formHtml));
    expect(withoutFormAction(error.headers.get('content-security-policy'))).toBe(
      withoutFormAction(form.headers.get('content-security-policy')),
    );
    for (const res of [form, error]) {
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    }
  });

  it('gives an authorize error page, which has no form, a policy that allows no form, frame or script', async () => {
    const res = await fetch(authorizeUrl(gh, randomUUID(), CALLBACK, {}), { redirect: 'manual' });
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("form-action 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('script-src');
    expect(await res.text()).not.toContain('<form');
  });
});
