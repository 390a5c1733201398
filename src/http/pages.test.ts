import express from 'express';
import fc from 'fast-check';
import request from 'supertest';
import { ASSET_PATHS, assetsRouter } from './assets.js';
import { escapeHtml, sendPage, usePageBrand, type PageOptions } from './pages.js';

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

  it('allows scripts only from this origin, and only on the page that auto-submits its form', async () => {
    const res = await request(
      appServing({ status: 200, title: 'T', body: '', allowHttpForms: false, autoSubmit: true }),
    ).get('/');
    const csp = res.headers['content-security-policy'] ?? '';
    expect(csp).toMatch(/; script-src 'self'$/);
    expect(csp).not.toMatch(/unsafe-inline|sha256-/);
    expect(res.text).toMatch(/<script src="\/assets\/gatehouse-[0-9a-f]{12}\.js" defer><\/script>/);
    expect(res.text).not.toMatch(/<script>|<style/);
  });

  it('escapes the title, adds the app name, and sends the status it is given', async () => {
    const res = await request(appServing({ status: 400, title: '</title><script>x</script>', body: '' })).get(
      '/',
    );
    expect(res.status).toBe(400);
    expect(res.text).toContain('<title>&lt;/title&gt;&lt;script&gt;x&lt;/script&gt; · Gatehouse</title>');
  });

  it("shows the configured app name (escaped) and logo, and allows images from exactly the logo's origin", async () => {
    const app = express();
    app.use(
      usePageBrand({
        appName: '<Acme & Co>',
        logoUrl: 'https://cdn.example/logo.svg?a=1&b=2',
        basePath: '/sso',
      }),
    );
    app.get('/', (_req, res) => sendPage(res, { status: 200, title: 'T', body: '<h1>x</h1>' }));
    const res = await request(app).get('/');
    expect(res.text).toContain(
      '<img src="https://cdn.example/logo.svg?a=1&amp;b=2" alt="">&lt;Acme &amp; Co&gt;</a>',
    );
    expect(res.text).toMatch(/<link rel="stylesheet" href="\/sso\/assets\/gatehouse-[0-9a-f]{12}\.css">/);
    expect(res.headers['content-security-policy']).toContain("img-src 'self' https://cdn.example;");
    expect(res.text).toMatch(/<html lang="en">/);
    expect(res.text).toMatch(/<main class="narrow">/);
  });

  it('allows images only from this origin when the logo is a path here', async () => {
    const app = express();
    app.use(usePageBrand({ appName: 'A', logoUrl: '/static/logo.png', basePath: '' }));
    app.get('/', (_req, res) => sendPage(res, { status: 200, title: 'T', body: '' }));
    const res = await request(app).get('/');
    expect(res.headers['content-security-policy']).toContain("img-src 'self';");
  });

  it('serves the stylesheet and script its pages name, with a long cache, and nothing else under /assets', async () => {
    const app = express();
    app.use(assetsRouter());
    for (const [path, type] of [
      [ASSET_PATHS.stylesheet, 'text/css; charset=utf-8'],
      [ASSET_PATHS.script, 'text/javascript; charset=utf-8'],
    ] as const) {
      const res = await request(app).get(path);
      expect([res.status, res.headers['content-type']]).toEqual([200, type]);
      expect(res.headers['cache-control']).toContain('immutable');
    }
    expect((await request(app).get('/assets/gatehouse-000000000000.css')).status).toBe(404);
  });
});
