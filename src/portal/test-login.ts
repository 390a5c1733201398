import { randomBytes } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { open, seal } from '../config/secret-box.js';
import { getConnection, type ConnectionDeps } from '../connections/connections.service.js';
import { groupsOfUsers } from '../directory/groups.service.js';
import { rolesForLogin } from '../directory/roles.service.js';
import { findUser } from '../directory/users.service.js';
import type { FailureReturn, UnsolicitedLoginCompleter } from '../sso/outcome.js';
import type { AuthorizationCompleter, LoginFlow } from '../sso/login-handoff.js';
import { portalTenant, sessionOf, uuidParam } from './forms.js';
import { html } from './html.js';
import { sendPortalPage } from './layout.js';
import { hintFor, traceOf } from './reason-hints.js';

/**
 * How does an IT admin see a real sign-in through their connection, and why
 * it failed? "Test sign-in" starts an SP-initiated login through the same
 * LoginFlow the main app's /oauth/authorize uses (src/sso), with a login id
 * of the portal's own. The completer sso answers to is wrapped (app.ts): a
 * login id of the portal ends on the portal's result page instead of an app,
 * with the outcome sealed under the master key and bound to the tenant and
 * connection; every other login id goes to the main app's completer as
 * before. The person is provisioned just as a real sign-in would (JIT).
 */

const PREFIX = 'portaltest';
/** `portaltest.<tenant hex>.<connection hex>.<random>`: within sso's login id shape ([A-Za-z0-9._~-]{1,128}). */
const TEST_ID = /^portaltest\.([0-9a-f]{32})\.([0-9a-f]{32})\.[A-Za-z0-9_-]{22}$/;
const RESULT_TTL_MS = 10 * 60_000;

const hex = (uuid: string) => uuid.replace(/-/g, '');
const uuid = (h: string) =>
  `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
const context = (tenantId: string, connectionId: string) => `portal-test-login:${tenantId}:${connectionId}`;

type Outcome = { ok: true; userId: string; exp: number } | { ok: false; reason: string; exp: number };

function resultUrl(masterKey: Buffer, loginId: string, outcome: Outcome): string | null {
  const m = TEST_ID.exec(loginId);
  if (!m?.[1] || !m[2]) return null;
  const tenantId = uuid(m[1]);
  const connectionId = uuid(m[2]);
  const sealed = seal(masterKey, JSON.stringify(outcome), context(tenantId, connectionId));
  return `/portal/t/${tenantId}/sso/connections/${connectionId}/test-result?r=${encodeURIComponent(sealed)}`;
}

type Completer = AuthorizationCompleter & Partial<UnsolicitedLoginCompleter> & Partial<FailureReturn>;

/** The completer sso answers to: portal test logins end on the portal, every other login as before. */
export function withPortalTestLogins(inner: Completer, masterKey: Buffer): Completer {
  const isTest = (loginId: string) => loginId.startsWith(`${PREFIX}.`);
  const answer = (res: Response, loginId: string, outcome: Outcome) => {
    const url = resultUrl(masterKey, loginId, outcome);
    if (url) res.redirect(303, url);
    else res.status(400).type('text/plain').send('Not a test sign-in');
  };
  return {
    complete: (req, res, loginId, result) =>
      isTest(loginId)
        ? Promise.resolve(
            answer(res, loginId, { ok: true, userId: result.userId, exp: Date.now() + RESULT_TTL_MS }),
          )
        : inner.complete(req, res, loginId, result),
    fail: (req, res, loginId, failure) =>
      isTest(loginId)
        ? Promise.resolve(
            answer(res, loginId, { ok: false, reason: failure.reason, exp: Date.now() + RESULT_TTL_MS }),
          )
        : inner.fail(req, res, loginId, failure),
    // A refused test login returns through /sso/continue (sealed, bound to this browser) like an app's.
    // Only when the inner completer can tell too: sso/outcome.ts offers the way back to the app
    // without asking when it cannot, and a wrapper that always answered would take that away.
    ...(inner.acceptsFailure
      ? {
          acceptsFailure: (loginId: string) =>
            isTest(loginId) ? Promise.resolve(TEST_ID.test(loginId)) : inner.acceptsFailure!(loginId),
        }
      : {}),
    ...(inner.completeUnsolicited ? { completeUnsolicited: inner.completeUnsolicited.bind(inner) } : {}),
  };
}

export function testLoginRoutes(deps: {
  cdeps: ConnectionDeps;
  masterKey: Buffer;
  loginFlow?: LoginFlow;
}): Router {
  const router = Router();
  const base = '/portal/t/:tenantId/sso/connections/:connectionId';

  // A GET link opened in a new tab: the answer redirects to the IdP, which a form's CSP
  // form-action 'self' would refuse; starting a test writes only a pending AuthnRequest.
  router.get(`${base}/test`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const connection = await getConnection(
      deps.cdeps,
      tenantId,
      uuidParam(req.params.connectionId, 'Connection'),
    );
    if (!deps.loginFlow) throw new Error('the portal was built without a login flow');
    const loginId = `${PREFIX}.${hex(tenantId)}.${hex(connection.id)}.${randomBytes(16).toString('base64url')}`;
    await deps.loginFlow.start(req, res, {
      loginId,
      appId: '',
      loginHint: null,
      organization: null,
      connectionId: connection.id,
    });
  });

  router.get(`${base}/test-result`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const connectionId = uuidParam(req.params.connectionId, 'Connection');
    const connection = await getConnection(deps.cdeps, tenantId, connectionId);
    const outcome = readOutcome(deps.masterKey, req, tenantId, connectionId);
    const back = html`<p>
      <a href="/portal/t/${tenantId}/sso/connections/${connectionId}">Back to ${connection.name}</a>
    </p>`;
    const trace = (reason: string | null) =>
      html`<table id="login-trace">
        <thead>
          <tr>
            <th>Step</th>
            <th>Result</th>
          </tr>
        </thead>
        <tbody>
          ${traceOf(reason).map(
            (s) =>
              html`<tr>
                <td>${s.step}</td>
                <td class="${s.outcome === 'passed' ? 'ok' : s.outcome === 'failed' ? 'bad' : 'muted'}">
                  ${s.outcome}
                </td>
              </tr>`,
          )}
        </tbody>
      </table>`;
    if (!outcome.ok) {
      const hint = hintFor(outcome.reason);
      return void sendPortalPage(res, {
        title: 'Test sign-in failed',
        session: sessionOf(res),
        tenantId,
        body: html`<div class="card error" id="test-failure">
            <p><strong>${hint.step}</strong> failed: <code id="reason-code">${outcome.reason}</code></p>
            <p id="reason-hint">${hint.hint}</p>
          </div>
          ${trace(outcome.reason)}${back}`,
      });
    }
    const view = await deps.cdeps.db.withTenant(tenantId, async (em) => {
      const user = await findUser(em, outcome.userId);
      if (!user) return null;
      const groups = (await groupsOfUsers(em, [user.id])).get(user.id) ?? [];
      return { user, groups, roles: await rolesForLogin(em, user.id, connectionId) };
    });
    const rows: [string, string][] = view
      ? [
          ['userName', view.user.userName],
          ['email', view.user.email ?? ''],
          ['given_name', view.user.givenName ?? ''],
          ['family_name', view.user.familyName ?? ''],
          ['display_name', view.user.displayName ?? ''],
          ['groups', view.groups.map((g) => g.displayName).join(', ')],
        ]
      : [];
    sendPortalPage(res, {
      title: 'Test sign-in succeeded',
      session: sessionOf(res),
      tenantId,
      body: html`<div class="card notice" id="test-success">
          <p>Your identity provider signed you in and Gatehouse accepted it.</p>
        </div>
        <h2>Profile received</h2>
        <table id="test-profile">
          <tbody>
            ${rows.map(
              ([k, v]) =>
                html`<tr>
                  <th>${k}</th>
                  <td>${v}</td>
                </tr>`,
            )}
          </tbody>
        </table>
        <h2>Roles that would be granted</h2>
        <p id="test-roles">${view?.roles.join(', ') || 'none'}</p>
        ${trace(null)}${back}`,
    });
  });

  return router;
}

function readOutcome(masterKey: Buffer, req: Request, tenantId: string, connectionId: string): Outcome {
  const sealed = typeof req.query.r === 'string' ? req.query.r : '';
  let outcome: Outcome | null;
  try {
    outcome = JSON.parse(open(masterKey, sealed, context(tenantId, connectionId))) as Outcome;
  } catch {
    outcome = null;
  }
  // Sealed for another tenant or connection, tampered with, or stale: as if there were no result.
  if (!outcome || typeof outcome.exp !== 'number' || outcome.exp < Date.now())
    return { ok: false, reason: 'handoff_invalid', exp: 0 };
  return outcome;
}
