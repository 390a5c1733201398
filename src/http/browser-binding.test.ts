import express from 'express';
import request from 'supertest';
import { sha256Base64url } from '../digest.js';
import {
  bindBrowser,
  browserTransportOf,
  plainHttpWarning,
  presentedBinding,
  type BrowserBinding,
  type BrowserTransport,
} from './browser-binding.js';

const sso = (transport: BrowserTransport): BrowserBinding => ({
  name: 'gh_sso',
  sameSite: 'none',
  transport,
  ttlSeconds: 600,
});
const authz = (transport: BrowserTransport): BrowserBinding => ({
  name: 'gh_authz',
  sameSite: 'lax',
  transport,
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
      sso('https'),
      /^__Host-gh_sso=[\w-]{43}; Max-Age=600; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=None$/,
    ],
    [
      'cross-site (SSO) over http://localhost (a secure context)',
      sso('localhost'),
      /^gh_sso=[\w-]{43}; Max-Age=600; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=None$/,
    ],
    [
      'cross-site (SSO) over other plain http falls back to Lax',
      sso('http'),
      /^gh_sso=[\w-]{43}; Max-Age=600; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/,
    ],
    [
      'same-site (authorization) over https',
      authz('https'),
      /^__Host-gh_authz=[\w-]{43}; Max-Age=60; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/,
    ],
    [
      'same-site (authorization) over http://localhost',
      authz('localhost'),
      /^gh_authz=[\w-]{43}; Max-Age=60; Path=\/; Expires=[^;]+; HttpOnly; Secure; SameSite=Lax$/,
    ],
    [
      'same-site (authorization) over other plain http',
      authz('http'),
      /^gh_authz=[\w-]{43}; Max-Age=60; Path=\/; Expires=[^;]+; HttpOnly; SameSite=Lax$/,
    ],
  ])('sets an HttpOnly cookie for a %s flow', async (_name, binding, expected) => {
    const res = await request(appFor(binding)).get('/bind');
    expect(setCookie(res)).toEqual([expect.stringMatching(expected)]);
  });

  it('stores only the SHA-256 of the value, and finds it again in the same browser', async () => {
    const agent = request.agent(appFor(authz('http')));
    const bound = await agent.get('/bind');
    const value = /^gh_authz=([\w-]{43});/.exec(setCookie(bound)[0] ?? '')?.[1] ?? '';
    expect(bound.body.hash).toBe(sha256Base64url(value));
    expect((await agent.get('/presented')).body.hash).toBe(bound.body.hash);
  });

  it('keeps the value of a browser already bound, so logins in two tabs both complete', async () => {
    const agent = request.agent(appFor(sso('http')));
    const first = await agent.get('/bind');
    const second = await agent.get('/bind');
    expect(second.body.hash).toBe(first.body.hash);
  });

  it('presents nothing for another browser, a malformed value or another binding cookie', async () => {
    const app = appFor(sso('https'));
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

describe('browser transport of a base URL', () => {
  it.each([
    ['https://gatehouse.example.com', 'https'],
    ['http://localhost:8080', 'localhost'],
    ['http://LOCALHOST', 'localhost'],
    ['http://gatehouse.localhost:8080', 'localhost'],
    ['http://127.0.0.1:8080', 'http'],
    ['http://gatehouse.example.com', 'http'],
    ['http://localhost.example.com', 'http'],
  ])('%s is %s', (baseUrl, transport) => {
    expect(browserTransportOf(baseUrl)).toBe(transport);
  });

  it('warns at start only for plain http other than localhost, naming the failure and the fix', () => {
    expect(plainHttpWarning('https://gatehouse.example.com')).toBeNull();
    expect(plainHttpWarning('http://localhost:8080')).toBeNull();
    const warning = plainHttpWarning('http://gatehouse.internal:8080');
    expect(warning).toContain('http://gatehouse.internal:8080');
    expect(warning).toContain('saml_in_response_to_invalid');
    expect(warning).toContain('http://localhost');
  });
});
