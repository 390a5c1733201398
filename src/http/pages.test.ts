import express from 'express';
import fc from 'fast-check';
import request from 'supertest';
import { escapeHtml, sendPage, type PageOptions } from './pages.js';

function appServing(page: PageOptions) {
  const app = express();
  app.get('/', (_req, res) => sendPage(res, page));
  return app;
}

const unescape = (html: string) =>
  html
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');

describe('the page renderer', () => {
  it('escapes text so that it can end neither an element nor a quoted attribute, and loses nothing', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        const html = escapeHtml(text);
        expect(html).not.toMatch(/[<>"']/);
        expect(unescape(html)).toBe(text);
      }),
      { seed: 9, numRuns: 500 },
    );
  });

  it.each<[string, boolean | undefined, string]>([
    ['a page without a form allows no form target', undefined, "form-action 'none'"],
    ['a sign-in form may end at an https IdP', false, "form-action 'self' https:;"],
    ['a sign-in form may end at an http IdP in development', true, "form-action 'self' https: http:;"],
  ])('%s', async (_case, allowHttpForms, formAction) => {
    const res = await request(appServing({ status: 200, title: 'T', body: '<p>x</p>', allowHttpForms })).get(
      '/',
    );
    const csp = res.headers['content-security-policy'] ?? '';
    expect(csp).toContain(formAction);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("base-uri 'none'");
    expect(csp).not.toContain('script-src');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  });

  it('allows only the auto-submit script, by its hash, and only when asked', async () => {
    const res = await request(
      appServing({ status: 200, title: 'T', body: '', allowHttpForms: false, autoSubmit: true }),
    ).get('/');
    expect(res.headers['content-security-policy']).toMatch(/; script-src 'sha256-[A-Za-z0-9+/]+=*'$/);
  });

  it('escapes the title and sends the status it is given', async () => {
    const res = await request(appServing({ status: 400, title: '</title><script>x</script>', body: '' })).get(
      '/',
    );
    expect(res.status).toBe(400);
    expect(res.text).toContain('<title>&lt;/title&gt;&lt;script&gt;x&lt;/script&gt;</title>');
  });
});
