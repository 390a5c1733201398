import { Router, type ErrorRequestHandler, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { STATUS_BY_CODE, logFailure, toDomainError } from '../http/error-handler.js';
import type { OutboundPolicy } from '../outbound/pinned-request.js';
import type { LoginFlow } from '../sso/login-handoff.js';
import type { TxtResolver } from '../tenants/dns-verifier.js';
import { getTenant, listTenants } from '../tenants/tenants.service.js';
import { portalAssetsRouter } from './assets.js';
import { auditRoutes } from './audit.pages.js';
import { certificateRoutes } from './certificates.pages.js';
import { dsyncRoutes } from './dsync.pages.js';
import { domainRoutes } from './domains.pages.js';
import { checkCsrf, parseForm, portalTenant, requireOperator, sessionOf, uuidParam } from './forms.js';
import { html } from './html.js';
import { INTENTS, INTENT_LABELS, isIntent, type Intent } from './intents.js';
import { copyable, csrfField, intentList, sendPortalPage } from './layout.js';
import {
  createSetupLink,
  findUsableSetupLink,
  listSetupLinks,
  redeemPortalLink,
  revokeSetupLink,
} from './links.service.js';
import {
  type PortalPrincipal,
  currentPortalSession,
  endPortalSession,
  portalAuditContext,
  startPortalSession,
} from './portal-sessions.js';
import { roleRoutes } from './roles.pages.js';
import { connectionDeps, ssoRoutes } from './sso.pages.js';
import { testLoginRoutes } from './test-login.js';
import { traceRoutes } from './traces.pages.js';
import { adminSigninRoutes, tenantAdminLogoutRoute } from './admin-signin.js';

/**
 * /portal: the Admin Portal (issue 15). The operator and a customer's IT admin
 * set up SSO, directory sync and domains from a browser, through the same
 * services (and audit trail) as /admin/v1. This file: opening a link, the
 * session gate, the home pages and the operator's setup links; the sections
 * are in sso.pages.ts, dsync.pages.ts, domains.pages.ts, audit.pages.ts,
 * certificates.pages.ts and roles.pages.ts.
 */

export interface PortalDeps {
  config: Config;
  db: Database;
  masterKey: Buffer;
  fetch: OutboundPolicy;
  dns: TxtResolver;
  /** The IdP side of sign-in (src/sso), for test sign-ins. */
  loginFlow?: LoginFlow;
}

const INVALID_LINK =
  'This link is not valid: it may have expired, been revoked or already been used. Ask for a new one.';

const startForm = z.object({ token: z.string().max(200) });
const setupLinkForm = z.object({
  intents: z.union([z.string(), z.array(z.string()).max(INTENTS.length)]),
  ttl_days: z.coerce.number().int().min(1).max(365).optional(),
});

export function portalRouter(deps: PortalDeps): Router {
  const router = Router();
  const sessionDeps = { db: deps.db, baseUrl: deps.config.baseUrl };
  router.use(portalAssetsRouter());
  router.use(adminSigninRoutes(deps));

  // A GET only shows a button: mail scanners and link previews that fetch the URL do not use the link up.
  router.get('/portal/start', (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token.slice(0, 200) : '';
    sendPortalPage(res, {
      title: 'Open the Gatehouse portal',
      session: null,
      body: html`<div class="card">
        <p>You were sent a link to set up sign-in for your organisation.</p>
        <form method="post" action="/portal/start">
          <input type="hidden" name="token" value="${token}" /> <button type="submit">Continue</button>
        </form>
      </div>`,
    });
  });

  router.post('/portal/start', async (req, res) => {
    const { token } = parseForm(startForm, req);
    const now = new Date();
    if (token.startsWith('gh_portal_') && (await redeemPortalLink(deps.db, token, now))) {
      await startPortalSession(sessionDeps, res, { kind: 'operator' }, now);
      return void res.redirect(303, '/portal');
    }
    const link = token.startsWith('gh_setup_') ? await findUsableSetupLink(deps.db, token, now) : null;
    if (!link) {
      return void sendPortalPage(res, {
        status: 403,
        title: 'This link cannot be used',
        session: null,
        body: html`<div class="card error"><p>${INVALID_LINK}</p></div>`,
      });
    }
    await startPortalSession(
      sessionDeps,
      res,
      {
        kind: 'setup_link',
        tenantId: link.tenantId,
        setupLinkId: link.id,
        intents: link.intents,
        linkExpiresAt: link.expiresAt,
      },
      now,
    );
    res.redirect(303, `/portal/t/${link.tenantId}`);
  });

  // Everything below needs a live session; every POST its CSRF token.
  router.use('/portal', async (req, res, next) => {
    const session = await currentPortalSession(sessionDeps, req, new Date());
    if (!session) {
      return void sendPortalPage(res, {
        status: 401,
        title: 'Please open your link again',
        session: null,
        body: html`<div class="card">
          <p>
            Your portal session has ended, or this browser has none. Open the link you were sent again, or ask
            for a new one.
          </p>
          <p>
            <a href="/portal/signin"
              >Administrators of your organisation: sign in with your company account</a
            >
          </p>
        </div>`,
      });
    }
    res.locals.portalSession = session;
    next();
  });
  router.use('/portal', checkCsrf);
  router.use(tenantAdminLogoutRoute(deps));

  router.post('/portal/logout', async (req, res) => {
    await endPortalSession(sessionDeps, req, res);
    sendPortalPage(res, {
      title: 'Signed out',
      session: null,
      body: html`<p>You are signed out of the portal.</p>`,
    });
  });

  router.get('/portal', async (_req, res) => {
    const session = sessionOf(res);
    if (session.kind !== 'operator') return void res.redirect(303, `/portal/t/${session.tenantId}`);
    const tenants = await listTenants(deps.db, { limit: 100, offset: 0 });
    sendPortalPage(res, {
      title: 'Tenants',
      session,
      body: html`<p>Pick a tenant to set it up yourself, or to send its IT admin a setup link.</p>
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Slug</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            ${tenants.data.map(
              (t) =>
                html`<tr>
                  <td><a href="/portal/t/${t.id}">${t.name}</a></td>
                  <td>${t.slug}</td>
                  <td>${t.status}</td>
                </tr>`,
            )}
          </tbody>
        </table>
        ${tenants.total > tenants.data.length ? html`<p class="muted">Showing the first ${tenants.data.length} of ${tenants.total}.</p>` : ''}`,
    });
  });

  router.get('/portal/t/:tenantId', async (req, res) => {
    const tenantId = portalTenant(req, res, 'home');
    const session = sessionOf(res);
    const tenant = await getTenant(deps.db, tenantId);
    const sections = [
      {
        intent: 'sso' as Intent,
        href: 'sso',
        text: 'Connect your identity provider (Okta, Entra ID, Google, …)',
      },
      { intent: 'dsync' as Intent, href: 'dsync', text: 'Provision people and groups with SCIM' },
      { intent: 'domain_verification' as Intent, href: 'domains', text: 'Prove you own your email domains' },
      { intent: 'sso' as Intent, href: 'roles', text: 'Map groups to roles, and preview the effect' },
      {
        intent: 'certificate_renewal' as Intent,
        href: 'certificates',
        text: 'Renew your IdP signing certificate',
      },
      { intent: 'audit_log' as Intent, href: 'audit', text: 'Read the audit log and check its chain' },
    ].filter((s) => session.intents.includes(s.intent));
    sendPortalPage(res, {
      title: tenant.name,
      session,
      tenantId,
      body: html`<div class="card">
          <p>
            ${session.kind === 'operator' ? 'As the operator you may do everything for this tenant:' : session.kind === 'tenant_admin' ? 'As an administrator of your organisation you may set up:' : 'This link lets you set up:'}
          </p>
          ${intentList(session.intents)}
        </div>
        <ul>
          ${sections.map((s) => html`<li><a href="/portal/t/${tenantId}/${s.href}">${s.text}</a></li>`)}
        </ul>
        ${session.kind === 'operator' ? await setupLinksSection(deps, req, res, tenantId) : ''}`,
    });
  });

  router.post('/portal/t/:tenantId/setup-links', async (req, res) => {
    const tenantId = portalTenant(req, res, 'home');
    requireOperator(res);
    const form = parseForm(setupLinkForm, req);
    const given = typeof form.intents === 'string' ? [form.intents] : form.intents;
    const intents = given.filter(isIntent);
    if (intents.length === 0 || intents.length !== given.length) {
      return void sendPortalPage(res, {
        status: 400,
        title: 'Choose what the link allows',
        session: sessionOf(res),
        tenantId,
        body: html`<div class="card error">
          <p>Pick at least one of the listed intents.</p>
          <p><a href="/portal/t/${tenantId}">Back</a></p>
        </div>`,
      });
    }
    const ttlSeconds = form.ttl_days ? form.ttl_days * 86400 : deps.config.portal.setupLinkTtlSeconds;
    const link = await createSetupLink(
      deps.db,
      deps.config.baseUrl,
      tenantId,
      { intents, ttlSeconds },
      portalAuditContext(sessionOf(res), req),
    );
    sendPortalPage(res, {
      status: 201,
      title: 'Setup link created',
      session: sessionOf(res),
      tenantId,
      body: html`<div class="card notice">
          <p>
            Send this link to the customer's IT admin. It is shown only now; it works until ${link.expires_at}
            unless you revoke it.
          </p>
          <p class="secret">${copyable('setup-link-url', link.url)}</p>
          ${intentList(link.intents)}
        </div>
        <p><a href="/portal/t/${tenantId}">Back to the tenant</a></p>`,
    });
  });

  router.post('/portal/t/:tenantId/setup-links/:linkId/revoke', async (req, res) => {
    const tenantId = portalTenant(req, res, 'home');
    requireOperator(res);
    await revokeSetupLink(
      deps.db,
      tenantId,
      uuidParam(req.params.linkId, 'Setup link'),
      portalAuditContext(sessionOf(res), req),
    );
    res.redirect(303, `/portal/t/${tenantId}`);
  });

  router.use(traceRoutes(deps)); // issue 15: login traces by support reference
  router.use(ssoRoutes(deps));
  router.use(
    testLoginRoutes({ cdeps: connectionDeps(deps), masterKey: deps.masterKey, loginFlow: deps.loginFlow }),
  );
  router.use(domainRoutes(deps));
  router.use(dsyncRoutes(deps));
  router.use(auditRoutes(deps), certificateRoutes(deps), roleRoutes(deps));
  router.use('/portal', (_req, res) => {
    sendPortalPage(res, {
      status: 404,
      title: 'Not found',
      session: (res.locals.portalSession as PortalPrincipal | undefined) ?? null,
      body: html`<p>No such page.</p>`,
    });
  });
  router.use('/portal', portalErrorHandler);
  return router;
}

async function setupLinksSection(deps: PortalDeps, req: Request, res: Response, tenantId: string) {
  const session = sessionOf(res);
  const links = await listSetupLinks(deps.db, tenantId, { limit: 20, offset: 0 });
  void req;
  return html`<h2>Setup links</h2>
    <form method="post" action="/portal/t/${tenantId}/setup-links" class="card">
      ${csrfField(session)}
      <fieldset>
        <legend>The customer's IT admin may set up</legend>
        ${INTENTS.map((i) => html`<label><input type="checkbox" name="intents" value="${i}" ${i === 'sso' ? html` checked` : ''} /> ${INTENT_LABELS[i]}</label>`)}
      </fieldset>
      <label for="ttl_days">Valid for (days)</label>
      <input
        type="text"
        inputmode="numeric"
        id="ttl_days"
        name="ttl_days"
        value="${Math.round(deps.config.portal.setupLinkTtlSeconds / 86400) || 1}"
      />
      <button type="submit">Create setup link</button>
    </form>
    <table>
      <thead>
        <tr>
          <th>Created</th>
          <th>Allows</th>
          <th>Expires</th>
          <th>Status</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${links.data.map(
          (l) =>
            html`<tr>
              <td>${l.created_at}</td>
              <td>${l.intents.join(', ')}</td>
              <td>${l.expires_at}</td>
              <td>${l.status}</td>
              <td>
                ${l.status === 'active' ? html`<form method="post" action="/portal/t/${tenantId}/setup-links/${l.id}/revoke">${csrfField(session)}<button class="secondary" type="submit">Revoke</button></form>` : ''}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>`;
}

/** Errors as a portal page: the message of a domain error, a generic one (and the request id) otherwise. */
const portalErrorHandler: ErrorRequestHandler = (error: unknown, req, res, _next) => {
  const domainError = toDomainError(error);
  logFailure(req, domainError);
  if (res.headersSent) return;
  const status = STATUS_BY_CODE[domainError.code];
  const message =
    domainError.code === 'internal'
      ? 'Something went wrong on our side. Try again in a moment.'
      : domainError.message;
  sendPortalPage(res, {
    status,
    title: status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'That did not work',
    session:
      (res.locals.portalSession as Parameters<typeof sendPortalPage>[1]['session'] | undefined) ?? null,
    body: html`<div class="card error">
      <p>${message}</p>
      <p class="muted">Reference: ${req.requestId}</p>
      <p><a href="/portal">Portal home</a></p>
    </div>`,
  });
};
