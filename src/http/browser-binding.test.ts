import express from 'express';
import request from 'supertest';
import { sha256Base64url } from '../digest.js';
import { bindBrowser, presentedBinding, type BrowserBinding } from './browser-binding.js';

const sso = (secure: boolean): BrowserBinding => ({
  name: 'gh_sso',
  sameSite: 'none',
  secure,
  ttlSeconds: 600,
});
const authz = (secure: boolean): BrowserBinding => ({
  name: 'gh_authz',
  sameSite: 'lax',
  secure,
  ttlSeconds: 60,
});

/** /bind sets the cookie and answers the stored hash; /presented answers what the browser shows. */
function appFor(binding: BrowserBinding) {
  const app = express();
  app.get('/bind', (req, res) => {
    res.json({ hash: bindBrowser(req, res, binding) });
  });
  app.get('/presented', (req, res) => {
    res.json({ hash: presentedBinding(req, binding) });
  });
  return app;
}

const setCookie = (res: request.Response): string[] =>
  (res.headers['set-cookie'] as string[] | undefined) ?? [];

describe('browser binding cookie', () => {
  it.each([
    [
      'cross-site (SSO) over https',
      sso(true),
      /^__Host-gh_sso=[\w-]{43}; Max-Age=600; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=None$/,
    ],
    [
      'cross-site (SSO) over http falls back to Lax',
      sso(false),
      /^gh_sso=[\w-]{43}; Max-Age=600; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/,
    ],
    [
      'same-site (authorization) over https',
      authz(true),
      /^__Host-gh_authz=[\w-]{43}; Max-Age=60; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/,
    ],
    [
      'same-site (authorization) over http',
      authz(false),
      /^gh_authz=[\w-]{43}; Max-Age=60; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/,
    ],
  ])('sets an HttpOnly cookie for a %s flow', async (_name, binding, expected) => {
    const res = await request(appFor(binding)).get('/bind');
    expect(setCookie(res)).toEqual([expect.stringMatching(expected)]);
  });

  it('stores only the SHA-256 of the value, and finds it again in the same browser', async () => {
    const agent = request.agent(appFor(authz(false)));
    const bound = await agent.get('/bind');
    const value = /^gh_authz=([\w-]{43});/.exec(setCookie(bound)[0] ?? '')?.[1] ?? '';
    expect(bound.body.hash).toBe(sha256Base64url(value));
    expect((await agent.get('/presented')).body.hash).toBe(bound.body.hash);
  });

  it('keeps the value of a browser already bound, so logins in two tabs both complete', async () => {
    const agent = request.agent(appFor(sso(false)));
    const first = await agent.get('/bind');
    const second = await agent.get('/bind');
    expect(second.body.hash).toBe(first.body.hash);
  });

  it('presents nothing for another browser, a malformed value or another binding cookie', async () => {
    const app = appFor(sso(true));
    expect((await request(app).get('/presented')).body.hash).toBeNull();
    const forged = await request(app).get('/presented').set('Cookie', '__Host-gh_sso=short');
    expect(forged.body.hash).toBeNull();
    const value = 'A'.repeat(43);
    const other = await request(app)
      .get('/presented')
      .set('Cookie', `__Host-gh_authz=${value}; gh_sso=${value}`);
    expect(other.body.hash).toBeNull();
    const fresh = await request(app).get('/bind').set('Cookie', '__Host-gh_sso=short');
    expect(setCookie(fresh)[0]).not.toContain('=short;');
  });
});
