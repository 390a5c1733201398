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
import { looksLikeTestLoginId, newTestLoginId, openTestLoginId } from '../sso/login-trace-kind.js';
import { listLoginTraces } from '../sso/login-trace-store.js';
import { hintFor } from './reason-hints.js';
import { traceSection } from './traces.pages.js';

/**
 * How does an IT admin see a real sign-in through their connection, and why
 * it failed? "Test sign-in" starts an SP-initiated login through the same
 * LoginFlow the main app's /oauth/authorize uses (src/sso), with a login id
 * of the portal's own. The completer sso answers to is wrapped (app.ts): a
 * login id of the portal ends on the portal's result page instead of an app,
 * with the outcome sealed under the master key and bound to the tenant and
 * connection; every other login id goes to the main app's completer as
 * before. The person is provisioned just as a real sign-in would (JIT).
 * The login id is bound to tenant and connection by an HMAC under the master
 * key (sso/login-trace-kind.ts), which lets the test run before the
 * connection is activated; the result page shows the login's stored trace
 * (sso/login-trace-store.ts), found by its support reference.
 */

const RESULT_TTL_MS = 10 * 60_000;

const context = (tenantId: string, connectionId: string) => `portal-test-login:${tenantId}:${connectionId}`;

/** `ref`: the support reference of the login's last request, where its stored trace is found. */
type Outcome =
  | { ok: true; userId: string; exp: number; ref?: string }
  | { ok: false; reason: string; exp: number; ref?: string };

function resultUrl(masterKey: Buffer, loginId: string, outcome: Outcome): string | null {
  // Only a genuine test id (MAC under the master key, src/sso/login-trace-kind.ts) names where to go.
  const bound = openTestLoginId(masterKey, loginId);
  if (!bound) return null;
  const { tenantId, connectionId } = bound;
  const sealed = seal(masterKey, JSON.stringify(outcome), context(tenantId, connectionId));
  return `/portal/t/${tenantId}/sso/connections/${connectionId}/test-result?r=${encodeURIComponent(sealed)}`;
}

type Completer = AuthorizationCompleter & Partial<UnsolicitedLoginCompleter> & Partial<FailureReturn>;

/** The completer sso answers to: portal test logins end on the portal, every other login as before. */
export function withPortalTestLogins(inner: Completer, masterKey: Buffer): Completer {
  const isTest = looksLikeTestLoginId;
  const answer = (res: Response, loginId: string, outcome: Outcome) => {
    const url = resultUrl(masterKey, loginId, outcome);
    if (url) res.redirect(303, url);
    else res.status(400).type('text/plain').send('Not a test sign-in');
  };
  return {
    complete: (req, res, loginId, result) =>
      isTest(loginId)
        ? Promise.resolve(
            answer(res, loginId, {
              ok: true,
              userId: result.userId,
              exp: Date.now() + RESULT_TTL_MS,
              ref: req.requestId,
            }),
          )
        : inner.complete(req, res, loginId, result),
    fail: (req, res, loginId, failure) =>
      isTest(loginId)
        ? Promise.resolve(
            answer(res, loginId, {
              ok: false,
              reason: failure.reason,
              exp: Date.now() + RESULT_TTL_MS,
              ref: failure.supportRef,
            }),
          )
        : inner.fail(req, res, loginId, failure),
    // A refused test login returns through /sso/continue (sealed, bound to this browser) like an app's.
    // Only when the inner completer can tell too: sso/outcome.ts offers the way back to the app
    // without asking when it cannot, and a wrapper that always answered would take that away.
    ...(inner.acceptsFailure
      ? {
          acceptsFailure: (loginId: string) =>
            isTest(loginId)
              ? Promise.resolve(openTestLoginId(masterKey, loginId) !== null)
              : inner.acceptsFailure!(loginId),
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
    const tenantId = portalTenant(req, res, ['sso', 'certificate_renewal']);
    const connection = await getConnection(
      deps.cdeps,
      tenantId,
      uuidParam(req.params.connectionId, 'Connection'),
    );
    if (!deps.loginFlow) throw new Error('the portal was built without a login flow');
    // Bound to this tenant and connection: the only kind of login an inactive connection answers.
    const loginId = newTestLoginId(deps.masterKey, tenantId, connection.id);
    await deps.loginFlow.start(req, res, {
      loginId,
      appId: '',
      loginHint: null,
      organization: null,
      connectionId: connection.id,
    });
  });

  router.get(`${base}/test-result`, async (req, res) => {
    const tenantId = portalTenant(req, res, ['sso', 'certificate_renewal']);
    const connectionId = uuidParam(req.params.connectionId, 'Connection');
    const connection = await getConnection(deps.cdeps, tenantId, connectionId);
    const outcome = readOutcome(deps.masterKey, req, tenantId, connectionId);
    const back = html`<p>
      <a href="/portal/t/${tenantId}/sso/connections/${connectionId}">Back to ${connection.name}</a>
    </p>`;
    // The stored trace of this very login (src/sso/login-trace-store.ts), found by its support reference.
    const stored = outcome.ref
      ? (
          await listLoginTraces(deps.cdeps.db, tenantId, {
            limit: 1,
            supportRef: outcome.ref,
            connectionId,
          })
        ).data[0]
      : undefined;
    const trace = stored ? traceSection(tenantId, stored) : html`<p class="muted">No trace was stored.</p>`;
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
          ${trace}${back}`,
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
        ${trace}${back}`,
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
