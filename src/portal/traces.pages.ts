import { Router, type Request } from 'express';
import { z } from 'zod';
import { listConnections } from '../connections/connections.service.js';
import { BadRequestError, NotFoundError } from '../errors.js';
import { listLoginTraces, viewRawResponse, type LoginTraceView } from '../sso/login-trace-store.js';
import { getTenant, updateTenant } from '../tenants/tenants.service.js';
import { parseForm, portalTenant, sessionOf, uuidParam } from './forms.js';
import { html, type Html } from './html.js';
import { csrfField, sendPortalPage } from './layout.js';
import { portalAuditContext } from './portal-sessions.js';
import { connectionDeps } from './sso.pages.js';
import type { PortalDeps } from './portal.router.js';
import { STEP_LABELS, hintFor } from './reason-hints.js';

/**
 * Why did this person's sign-in fail? Login traces for the IT admin and
 * support (intent `sso`): a tenant's recent traces with filters, one login by
 * the support reference its error page showed (src/sso/login-trace-store.ts,
 * the same reads as GET /admin/v1/tenants/{id}/login-traces), each step with
 * pass/fail, reason code and hint; the tenant's opt-in to keep failed
 * logins' raw responses, and viewing one (audited, as the admin API does).
 */

const PAGE = 50;
const REF = /^[A-Za-z0-9._:-]{1,128}$/;
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), schema.optional());

const filtersQuery = z.object({
  connection: optional(z.uuid()),
  outcome: optional(z.string().regex(/^[a-z0-9_]{1,64}$/, 'success, failure or a reason code')),
  ref: optional(z.string().trim().regex(REF, 'a support reference as the error page shows it')),
  cursor: optional(z.string().max(200)),
});
const keepForm = z.object({ keep: z.enum(['on', 'off']) });

function parseFilters(req: Request): z.infer<typeof filtersQuery> {
  // A parameter sent twice arrives as an array and is refused like any wrong type.
  const result = filtersQuery.safeParse(req.query);
  if (!result.success)
    throw new BadRequestError(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return result.data;
}

const outcomeClass = (t: LoginTraceView) => (t.outcome === 'success' ? 'ok' : 'bad');

/** One login's steps: passed, failed (with its code and hint), or not reached. */
export function traceSection(tenantId: string, t: LoginTraceView): Html {
  return html`<h2>Login trace</h2>
    <p>
      Support reference
      <a href="/portal/t/${tenantId}/sso/traces/${t.support_ref}"
        ><code id="trace-ref">${t.support_ref}</code></a
      >
      · ${t.protocol.toUpperCase()} · ${t.kind.replace('_', '-')} · ${t.created_at}
    </p>
    <table id="login-trace">
      <thead>
        <tr>
          <th>Step</th>
          <th>Result</th>
          <th>Reason</th>
        </tr>
      </thead>
      <tbody>
        ${t.steps.map(
          (s) =>
            html`<tr>
              <td>${STEP_LABELS[s.step] ?? s.step}</td>
              <td class="${s.ok === true ? 'ok' : s.ok === false ? 'bad' : 'muted'}">
                ${s.ok === true ? 'passed' : s.ok === false ? 'failed' : 'not run'}
              </td>
              <td>${s.reason ? html`<code>${s.reason}</code> ${hintFor(s.reason).hint}` : ''}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${t.profile ? profileTable(t) : ''}`;
}

function profileTable(t: LoginTraceView): Html {
  const p = t.profile;
  if (!p) return html``;
  const rows: [string, string][] = [
    ['subject', p.subject ?? ''],
    ['email', p.email ?? ''],
    ['given_name', p.given_name ?? ''],
    ['family_name', p.family_name ?? ''],
    ['display_name', p.display_name ?? ''],
    ['groups', p.groups.join(', ')],
    ['attributes sent', p.attribute_names.join(', ')],
    ['roles granted', t.roles.join(', ')],
  ];
  return html`<h3>Profile received and mapped</h3>
    <table id="trace-profile">
      <tbody>
        ${rows.map(
          ([k, v]) =>
            html`<tr>
              <th>${k}</th>
              <td>${v}</td>
            </tr>`,
        )}
      </tbody>
    </table>`;
}

export function traceRoutes(deps: PortalDeps): Router {
  const router = Router();
  const base = '/portal/t/:tenantId/sso/traces';

  router.get(base, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const session = sessionOf(res);
    const f = parseFilters(req);
    if (f.ref) return void res.redirect(303, `/portal/t/${tenantId}/sso/traces/${encodeURIComponent(f.ref)}`);
    const [tenant, connections, page] = await Promise.all([
      getTenant(deps.db, tenantId),
      listConnections(connectionDeps(deps), tenantId, { limit: 100, offset: 0 }),
      listLoginTraces(deps.db, tenantId, {
        limit: PAGE,
        cursor: f.cursor,
        connectionId: f.connection,
        outcome: f.outcome,
      }),
    ]);
    const names = new Map(connections.data.map((c) => [c.id, c.name]));
    const more = new URLSearchParams();
    if (f.connection) more.set('connection', f.connection);
    if (f.outcome) more.set('outcome', f.outcome);
    if (page.next_cursor) more.set('cursor', page.next_cursor);
    sendPortalPage(res, {
      title: 'Login traces',
      session,
      tenantId,
      body: html`<p>Every sign-in through your connections, step by step, for ${tenant.name}.</p>
        <form method="get" action="/portal/t/${tenantId}/sso/traces" class="card">
          <label for="ref">Support reference</label>
          <input id="ref" name="ref" type="search" maxlength="128" />
          <button type="submit">Find</button>
        </form>
        <form method="get" action="/portal/t/${tenantId}/sso/traces" class="card">
          <label for="connection">Connection</label>
          <select id="connection" name="connection">
            <option value="">All</option>
            ${connections.data.map(
              (c) =>
                html`<option value="${c.id}" ${c.id === f.connection ? 'selected' : ''}>${c.name}</option>`,
            )}
          </select>
          <label for="outcome">Outcome</label>
          <input
            id="outcome"
            name="outcome"
            value="${f.outcome ?? ''}"
            placeholder="success, failure or a code"
          />
          <button type="submit">Filter</button>
        </form>
        <table id="traces">
          <thead>
            <tr>
              <th>When</th>
              <th>Connection</th>
              <th>Kind</th>
              <th>Outcome</th>
              <th>Support reference</th>
            </tr>
          </thead>
          <tbody>
            ${page.data.map(
              (t) =>
                html`<tr>
                  <td>${t.created_at}</td>
                  <td>${names.get(t.connection_id) ?? t.connection_id}</td>
                  <td>${t.kind.replace('_', '-')}</td>
                  <td class="${outcomeClass(t)}"><code>${t.outcome}</code></td>
                  <td><a href="/portal/t/${tenantId}/sso/traces/${t.support_ref}">${t.support_ref}</a></td>
                </tr>`,
            )}
          </tbody>
        </table>
        ${page.next_cursor ? html`<p><a href="/portal/t/${tenantId}/sso/traces?${more.toString()}">Older</a></p>` : ''}
        <h2>Raw answers of failed sign-ins</h2>
        <form method="post" action="/portal/t/${tenantId}/sso/traces/settings" class="card">
          ${csrfField(session)}
          <p id="keep-raw-state">
            ${
              tenant.keep_failed_login_responses
                ? 'On: a failed SAML sign-in keeps its raw answer, encrypted, for 24 hours.'
                : 'Off: no raw answer is kept.'
            }
          </p>
          <input type="hidden" name="keep" value="${tenant.keep_failed_login_responses ? 'off' : 'on'}" />
          <button type="submit" id="keep-raw-toggle">
            ${tenant.keep_failed_login_responses ? 'Stop keeping raw answers' : 'Keep raw answers for 24 hours'}
          </button>
        </form>`,
    });
  });

  router.post(`${base}/settings`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const { keep } = parseForm(keepForm, req);
    await updateTenant(
      deps.db,
      tenantId,
      { keepFailedLoginResponses: keep === 'on' },
      portalAuditContext(sessionOf(res), req),
    );
    res.redirect(303, `/portal/t/${tenantId}/sso/traces`);
  });

  router.get(`${base}/:ref`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const session = sessionOf(res);
    const ref = typeof req.params.ref === 'string' && REF.test(req.params.ref) ? req.params.ref : null;
    if (!ref) throw new NotFoundError('Login trace');
    const { data } = await listLoginTraces(deps.db, tenantId, { limit: 10, supportRef: ref });
    if (data.length === 0) throw new NotFoundError('Login trace');
    sendPortalPage(res, {
      title: `Sign-in ${ref}`,
      session,
      tenantId,
      body: html`${data.map(
          (t) =>
            html`<div class="card ${t.outcome === 'success' ? 'notice' : 'error'}">
                <p>
                  Outcome: <code class="trace-outcome">${t.outcome}</code>${
                    t.outcome === 'success' ? '' : html` — ${hintFor(t.outcome).hint}`
                  }
                </p>
              </div>
              ${traceSection(tenantId, t)}
              ${
                t.raw_response_expires_at
                  ? html`<form method="post" action="/portal/t/${tenantId}/sso/traces/${ref}/raw/${t.id}">
                      ${csrfField(session)}
                      <button type="submit" class="secondary">
                        Show the raw answer (recorded in the audit log)
                      </button>
                    </form>`
                  : ''
              }`,
        )}
        <p><a href="/portal/t/${tenantId}/sso/traces">All login traces</a></p>`,
    });
  });

  // A POST: viewing writes an audit event, so it is a state change behind the CSRF token.
  router.post(`${base}/:ref/raw/:traceId`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const session = sessionOf(res);
    const traceId = uuidParam(req.params.traceId, 'Login trace');
    const xml = await viewRawResponse(
      deps.db,
      deps.masterKey,
      tenantId,
      traceId,
      portalAuditContext(session, req),
    );
    if (xml === null) throw new NotFoundError('Raw answer');
    sendPortalPage(res, {
      title: 'Raw answer of a failed sign-in',
      session,
      tenantId,
      body: html`<p>As the identity provider posted it. This viewing is recorded in the audit log.</p>
        <pre id="raw-response">${xml}</pre>`,
    });
  });

  return router;
}
