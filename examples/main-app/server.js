// The main app of the README, whole: sign in through Gatehouse (openid-client), show the ID token's
// claims and roles, an API route that verifies the access token with the JWKS (jose), back-channel
// logout (OIDC Back-Channel Logout 1.0) ending its own session, and RP-initiated logout.
// Run from the Gatehouse clone: node examples/main-app/server.js (after `dev-idp --setup`).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import express from 'express';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';

const APP_URL = process.env.APP_URL ?? 'http://localhost:3000';
const GATEHOUSE_URL = process.env.GATEHOUSE_URL ?? 'http://localhost:8080';
const DATA_DIR = process.env.GATEHOUSE_DATA_DIR ?? '.gatehouse';
const kept = () => JSON.parse(readFileSync(`${DATA_DIR}/dev-idp/setup.json`, 'utf8')).app; // written by --setup
const CLIENT_ID = process.env.CLIENT_ID ?? kept().client_id;
const CLIENT_SECRET = process.env.CLIENT_SECRET ?? kept().client_secret;
// openid-client refuses http unless told: only for a local Gatehouse.
const insecure = GATEHOUSE_URL.startsWith('http://') ? { execute: [oidc.allowInsecureRequests] } : undefined;
const config = await oidc.discovery(new URL(GATEHOUSE_URL), CLIENT_ID, CLIENT_SECRET, undefined, insecure);
const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
const verify = (token, typ) => jwtVerify(token, jwks, { issuer: GATEHOUSE_URL, audience: CLIENT_ID, typ });

const sessions = new Map(); // our session id -> { pending } or { claims, tokens }
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const app = express();
const session = (req) => sessions.get(/(?:^|; )app_session=([\w-]+)/.exec(req.headers.cookie ?? '')?.[1]);
const start = (res, value) => {
  const id = randomBytes(24).toString('base64url');
  sessions.set(id, value);
  res.cookie('app_session', id, { httpOnly: true, sameSite: 'lax' });
};

app.get('/', (req, res) => {
  const s = session(req);
  if (!s?.claims)
    return res.send(`<h1>Example app</h1><p>Signed out.</p><form action="/login"><input name="email" value="alice@example.test">
      <button>Sign in</button></form>`);
  res.send(`<h1>Example app</h1><p id="who">Signed in as ${esc(s.claims.email)}, roles: <b id="roles">${esc(s.claims.roles.join(', '))}</b></p>
    <pre>${esc(JSON.stringify(s.claims, null, 2))}</pre><a href="/call-api">Call the API</a> · <a href="/logout">Sign out</a>`);
});

app.get('/login', async (req, res) => {
  const pending = {
    verifier: oidc.randomPKCECodeVerifier(),
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
  };
  start(res, { pending });
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: `${APP_URL}/callback`,
    scope: 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
    code_challenge_method: 'S256',
    state: pending.state,
    nonce: pending.nonce,
    ...(req.query.email ? { login_hint: String(req.query.email) } : {}),
  });
  res.redirect(url.href);
});

app.get('/callback', async (req, res) => {
  const { pending } = session(req) ?? {};
  if (!pending) return res.status(400).send('No sign-in in progress: <a href="/">start again</a>');
  const tokens = await oidc.authorizationCodeGrant(config, new URL(req.originalUrl, APP_URL), {
    pkceCodeVerifier: pending.verifier,
    expectedState: pending.state,
    expectedNonce: pending.nonce,
  });
  start(res, { claims: tokens.claims(), tokens });
  res.redirect('/');
});

// The protected API: any caller with a Gatehouse access token (RFC 9068), checked against the JWKS.
app.get('/api/me', async (req, res) => {
  try {
    const { payload } = await verify(
      /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '',
      'at+jwt',
    );
    res.json({ sub: payload.sub, tid: payload.tid, roles: payload.roles });
  } catch {
    res.status(401).json({ error: 'invalid_token' });
  }
});
app.get('/call-api', async (req, res) => {
  const s = session(req);
  if (!s?.tokens) return res.redirect('/');
  const answer = await fetch(`${APP_URL}/api/me`, {
    headers: { authorization: `Bearer ${s.tokens.access_token}` },
  });
  res.send(`<p id="api">${answer.status} ${esc(await answer.text())}</p><a href="/">Back</a>`);
});

// Gatehouse POSTs a signed logout token when the person is deprovisioned or signed out elsewhere.
app.post('/backchannel-logout', express.urlencoded({ extended: false }), async (req, res) => {
  try {
    const { payload } = await verify(String(req.body.logout_token ?? ''), 'logout+jwt');
    for (const [id, s] of sessions) if (s.claims?.sid === payload.sid) sessions.delete(id);
    res.status(200).end();
  } catch {
    res.status(400).json({ error: 'invalid_request' });
  }
});

app.get('/logout', (req, res) => {
  const s = session(req);
  res.clearCookie('app_session');
  if (!s?.tokens) return res.redirect('/');
  sessions.forEach((v, k) => v === s && sessions.delete(k));
  res.redirect(
    oidc.buildEndSessionUrl(config, {
      id_token_hint: s.tokens.id_token,
      post_logout_redirect_uri: `${APP_URL}/`,
    }).href,
  );
});

app.listen(new URL(APP_URL).port || 3000, '127.0.0.1', () => console.log(`Example app on ${APP_URL}`));
