import { Router, type Request } from 'express';
import { z } from 'zod';
import { listAuditEvents, type AuditEventView } from '../audit/audit-events.service.js';
import { checkpointKey } from '../audit/checkpoint-key.js';
import { listCheckpoints, verifyAuditTrail } from '../audit/checkpoints.service.js';
import { BadRequestError, NotFoundError } from '../errors.js';
import { portalTenant, sessionOf } from './forms.js';
import { html, type Html } from './html.js';
import { csrfField, sendPortalPage } from './layout.js';
import type { PortalDeps } from './portal.router.js';

/**
 * The audit log (intent `audit_log`): what happened in this tenant, newest
 * first, filtered and paged by keyset exactly as GET /admin/v1/tenants/{id}/
 * audit-events pages it (audit/audit-events.service.ts), one event with its
 * before and after, and "check the chain": the admin API's verification
 * (audit/checkpoints.service.ts verifyAuditTrail), shown in words.
 */

const PAGE = 50;
const DAY_MS = 86_400_000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), schema.optional());
const day = z
  .string()
  .regex(DATE, 'a date as YYYY-MM-DD')
  // 1970–9998: every such day, and the day after it, is a timestamp PostgreSQL and Date agree on.
  .refine((v) => {
    const t = Date.parse(`${v}T00:00:00Z`);
    return !Number.isNaN(t) && new Date(t).toISOString().startsWith(v) && v >= '1970' && v < '9999';
  }, 'not a calendar date between 1970 and 9998');
const id = z
  .string()
  .trim()
  .max(200)
  .refine((v) => !v.includes('\u0000'), 'no NUL characters');

const filtersQuery = z.object({
  // The admin API's action syntax: an exact action or a prefix ending in .*
  action: optional(
    z
      .string()
      .trim()
      .max(200)
      .regex(/^[a-z0-9_:-]+(?:\.[a-z0-9_:-]+)*(?:\.\*)?$/, 'an action such as domain.verified, or domain.*'),
  ),
  actor: optional(id),
  target: optional(id),
  from: optional(day),
  to: optional(day),
  before: optional(z.string().regex(/^\d{1,15}$/, 'not a position this page gave')),
});
type Filters = z.infer<typeof filtersQuery>;

function parseFilters(req: Request): Filters {
  // A parameter sent twice arrives as an array and is refused like any wrong type.
  const result = filtersQuery.safeParse(req.query);
  if (!result.success)
    throw new BadRequestError(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return result.data;
}

/** The page's own URL for the same filters, another position. */
function auditHref(tenantId: string, f: Filters, before?: number): string {
  const q = new URLSearchParams();
  for (const key of ['action', 'actor', 'target', 'from', 'to'] as const) {
    const v = f[key];
    if (v) q.set(key, v);
  }
  if (before !== undefined) q.set('before', String(before));
  const s = q.toString();
  return `/portal/t/${tenantId}/audit${s ? `?${s}` : ''}`;
}

const who = (e: AuditEventView) => (e.actor.id ? `${e.actor.type} ${e.actor.id}` : e.actor.type);
const what = (e: AuditEventView) => (e.target ? `${e.target.type} ${e.target.id ?? ''}` : '');

export function auditRoutes(deps: PortalDeps): Router {
  const router = Router();
  const base = '/portal/t/:tenantId/audit';

  router.get(base, async (req, res) => {
    const tenantId = portalTenant(req, res, 'audit_log');
    const f = parseFilters(req);
    const since = f.from ? new Date(`${f.from}T00:00:00Z`) : undefined;
    // "to" names a day: every event of that day counts (until is exclusive).
    const until = f.to ? new Date(Date.parse(`${f.to}T00:00:00Z`) + DAY_MS) : undefined;
    const page = await listAuditEvents(deps.db, tenantId, {
      limit: PAGE,
      offset: 0,
      order: 'desc',
      ...(f.before !== undefined && { afterSeq: Number(f.before) }),
      ...(f.action !== undefined && { action: f.action }),
      ...(f.actor !== undefined && { actorId: f.actor }),
      ...(f.target !== undefined && { targetId: f.target }),
      ...(since && { since }),
      ...(until && { until }),
    });
    const session = sessionOf(res);
    sendPortalPage(res, {
      title: 'Audit log',
      session,
      tenantId,
      body: html`<p>
          Every change to your organisation's setup, newest first. Each event is chained to the one before it,
          so a changed or missing event shows up when the chain is checked.
        </p>
        <form method="post" action="/portal/t/${tenantId}/audit/verify" class="card">
          ${csrfField(session)}
          <p>Recompute every event's hash and compare the chain with its signed checkpoints.</p>
          <button type="submit" id="verify-chain">Check the chain</button>
        </form>
        <form method="get" action="/portal/t/${tenantId}/audit" class="card" id="audit-filters">
          <label for="f-action">Action (exact, or a prefix such as <code>connection.*</code>)</label>
          <input type="text" id="f-action" name="action" value="${f.action ?? ''}" />
          <label for="f-actor">Actor id</label>
          <input type="text" id="f-actor" name="actor" value="${f.actor ?? ''}" />
          <label for="f-target">Target id</label>
          <input type="text" id="f-target" name="target" value="${f.target ?? ''}" />
          <label for="f-from">From (day, UTC)</label>
          <input type="date" id="f-from" name="from" value="${f.from ?? ''}" />
          <label for="f-to">To (day, UTC, included)</label>
          <input type="date" id="f-to" name="to" value="${f.to ?? ''}" />
          <button type="submit">Filter</button>
        </form>
        <p class="muted" id="audit-total">
          ${page.total_is_capped ? `More than ${page.total}` : page.total} matching events.
        </p>
        ${eventsTable(tenantId, page.data)}
        ${page.next_seq !== null ? html`<p><a id="audit-older" href="${auditHref(tenantId, f, page.next_seq)}">Older events</a></p>` : ''}`,
    });
  });

  router.get(`${base}/events/:seq`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'audit_log');
    const raw = String(req.params.seq);
    if (!/^\d{1,15}$/.test(raw)) throw new NotFoundError('Audit event');
    const seq = Number(raw);
    // The keyset read of the list, one row: the event just below seq + 1.
    const page = await listAuditEvents(deps.db, tenantId, {
      limit: 1,
      offset: 0,
      order: 'desc',
      afterSeq: seq + 1,
    });
    const event = page.data[0];
    if (!event || event.seq !== seq) throw new NotFoundError('Audit event');
    sendPortalPage(res, {
      title: `Event ${event.seq}: ${event.action}`,
      session: sessionOf(res),
      tenantId,
      body: html`<table id="audit-event">
          <tbody>
            ${row('When', event.occurred_at)} ${row('Action', event.action)} ${row('Actor', who(event))}
            ${row('Target', what(event))} ${row('Request id', event.request_id ?? '')}
            ${row('Source address', event.source_ip ?? '')} ${row('Hash', event.hash)}
            ${row('Previous hash', event.prev_hash)}
          </tbody>
        </table>
        ${event.erased ? html`<p class="muted">The personal fields of this event were erased.</p>` : ''}
        <h2>Before</h2>
        <pre class="value" id="audit-before">${json(event.before)}</pre>
        <h2>After</h2>
        <pre class="value" id="audit-after">${json(event.after)}</pre>
        <p><a href="/portal/t/${tenantId}/audit">Back to the audit log</a></p>`,
    });
  });

  router.post(`${base}/verify`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'audit_log');
    // The admin API's verify endpoint, the same function and key (docs/security.md §9).
    const result = await verifyAuditTrail(deps.db, await checkpointKey(deps.masterKey), tenantId);
    const first = await listCheckpoints(deps.db, tenantId, { limit: 1, offset: 0 });
    const latest =
      first.total > 1
        ? (await listCheckpoints(deps.db, tenantId, { limit: 1, offset: first.total - 1 })).data[0]
        : first.data[0];
    const problems: [string, number | null][] = [
      ['The first event whose hash does not match its content or its predecessor', result.first_broken_seq],
      ['A checkpoint whose signature or row was forged', result.forged_checkpoint_seq],
      ['A checkpoint that disagrees with the chain', result.checkpoint_mismatch_seq],
      ['The chain ends before a signed checkpoint; last event left', result.truncated_after_seq],
    ];
    sendPortalPage(res, {
      title: 'Audit chain check',
      session: sessionOf(res),
      tenantId,
      body: html`<div class="card ${result.valid ? 'notice' : 'error'}" id="chain-result">
          <p>
            <strong id="chain-status" class="${result.valid ? 'ok' : 'bad'}"
              >${result.valid ? 'valid' : 'broken'}</strong
            >
            — ${result.checked} events checked against ${result.checkpoints_checked} signed checkpoints
            ${latest ? html`(the latest at event <span id="chain-latest-checkpoint">${latest.seq}</span>, ${latest.created_at})` : ''}.
          </p>
          ${problems
            .filter(([, seq]) => seq !== null)
            .map(([label, seq]) => html`<p>${label}: <strong class="bad first-bad-seq">${seq}</strong></p>`)}
          ${
            result.erased_unverifiable_seqs.length
              ? html`<p class="muted">
                  Erased before chain version 2, so not recomputable:
                  ${result.erased_unverifiable_seqs.slice(0, 20).join(', ')}
                </p>`
              : ''
          }
        </div>
        <p><a href="/portal/t/${tenantId}/audit">Back to the audit log</a></p>`,
    });
  });

  return router;
}

function row(label: string, value: string): Html {
  return html`<tr>
    <th>${label}</th>
    <td class="value">${value}</td>
  </tr>`;
}

const json = (value: unknown) =>
  value === null || value === undefined ? '—' : JSON.stringify(value, null, 2);

function eventsTable(tenantId: string, events: AuditEventView[]): Html {
  if (events.length === 0) return html`<p class="muted" id="audit-empty">No events match.</p>`;
  return html`<table id="audit-events">
    <thead>
      <tr>
        <th>#</th>
        <th>When</th>
        <th>Action</th>
        <th>Actor</th>
        <th>Target</th>
      </tr>
    </thead>
    <tbody>
      ${events.map(
        (e) =>
          html`<tr>
            <td><a href="/portal/t/${tenantId}/audit/events/${e.seq}">${e.seq}</a></td>
            <td>${e.occurred_at}</td>
            <td>${e.action}</td>
            <td class="value">${who(e)}</td>
            <td class="value">${what(e)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}
