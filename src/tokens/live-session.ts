import type { EntityManager } from 'typeorm';
import type { Database, TenantResolver } from '../db/database.js';
import { finalStatement } from '../db/pipelined-transaction.js';
import { connectionDefaultRoleSql } from '../connections/connections.service.js';
import {
  personWithRoleInputsSql,
  personWithRolesFromRow,
  type PersonWithRoleInputsRow,
} from '../directory/roles.service.js';
import type { User } from '../directory/user.entity.js';
import {
  liveGrantFromRow,
  liveGrantSql,
  type GrantRow,
  type LiveGrantInput,
  type NotLiveReason,
} from '../sessions/live-grant.js';
import type { Session } from '../sessions/session.entity.js';

/**
 * "Still true?" as every token path needs it (docs/architecture.md, the four
 * questions): sessions/live-grant.ts answers it; this adds what a token
 * carries about the person — their record and their roles now. Shared by
 * grants/ (refresh, code exchange) and status/ (introspection, userinfo,
 * tenant admins), so neither pipeline imports the other for it.
 */

export interface LiveSession {
  tenantId: string;
  session: Session;
  user: User;
  roles: string[];
}

/**
 * The session behind a token, if it is live (sessions/live-grant.ts: not
 * revoked or expired, the person active, the tenant live, neither the token's
 * app — `client_id` — nor the session's app deleted), belongs to `tid` and to
 * `sub`; with the person and their roles now.
 */
export async function liveSession(
  db: Database,
  claims: { tid: string; sid: string; sub: string; client_id?: string },
  now: Date,
): Promise<LiveSession | null> {
  // The session's tenant is resolved inside the transaction that reads it (issue 13: no round trip of its own).
  return db.withResolvedTenant(async (em, enterTenant) => {
    const [tenantId, { grant }] = await inSessionTenant(enterTenant, claims.sid, () =>
      liveGrantWithPerson(
        em,
        { sessionId: claims.sid, userId: claims.sub, appId: claims.client_id, now },
        {
          final: true,
        },
      ),
    );
    // idor check: the session must live in the tenant the token names
    if (!tenantId || tenantId !== claims.tid) return null;
    return grant.live ? { tenantId, session: grant.session, user: grant.user, roles: grant.roles } : null;
  });
}

/**
 * Enters the session's tenant and runs `read` behind it without waiting in between (issue 13): in
 * pipeline mode (db/pipelined-transaction.ts) the tenant setting and the statement `read` sends are
 * written back to back and PostgreSQL runs them in that order, so the statement still runs after the
 * setting, as row-level security needs, and both cost one round trip. When the session names no tenant
 * the setting is empty and every tenant table reads empty to `read` (writes find no row); the caller
 * refuses on the null tenant and ignores what `read` saw.
 */
export async function inSessionTenant<T>(
  enterTenant: (resolver: TenantResolver, key: string) => Promise<string | null>,
  sessionId: string,
  read: () => Promise<T>,
): Promise<[string | null, T]> {
  const entering = enterTenant('session', sessionId);
  entering.catch(() => undefined); // awaited below; its failure is the caller's error
  // Everything between the call and the setting's write is promise continuations (no I/O), so one
  // macrotask turn later it has been written, whatever path `read` takes to the connection. Were the
  // order ever reversed, `read` would run with no tenant and see nothing: a refusal, never a leak.
  await new Promise((resolve) => setImmediate(resolve));
  return Promise.all([entering, read()]);
}

export type LiveGrantWithPerson =
  { live: true; session: Session; user: User; roles: string[] } | { live: false; reason: NotLiveReason };

/** What a caller adds to liveGrantWithPerson's statement: CTEs (`name AS (…)`, placeholders from $3) and columns. */
export interface AlongsideGrant {
  ctes?: string;
  columns?: string;
  params?: unknown[];
  /** The transaction's last statement: sent with its COMMIT (db/pipelined-transaction.ts finalStatement). */
  final?: boolean;
}

/**
 * liveGrant (the one "still true?" answer) plus what a token carries about the
 * person: their record and their roles now. In the caller's tenant
 * transaction, on the primary, as ONE statement (issue 13: it was four): the
 * grant row (sessions/live-grant.ts), the person and the inputs of the role
 * rule (directory/roles.service.ts) and the fallback role of the session's
 * connection (connections/), each owner handing out its SQL as text. All of it
 * reads one snapshot, so the person seen active by the grant is the person
 * returned. `alongside` lets the grant's caller put its own work in the same
 * statement (the token endpoint consumes the code there); its columns come
 * back in `row`.
 */
export async function liveGrantWithPerson<Row extends object = object>(
  em: EntityManager,
  input: LiveGrantInput,
  alongside: AlongsideGrant = {},
): Promise<{ grant: LiveGrantWithPerson; row: Row }> {
  const sql = `WITH ${alongside.ctes ? `${alongside.ctes},` : ''}
          live_grant AS (${liveGrantSql('$1', '$2')})
     SELECT lg.*, ${personWithRoleInputsSql('lg.user_id', connectionDefaultRoleSql('lg.connection_id'))}
            ${alongside.columns ? `, ${alongside.columns}` : ''}
       -- one row even when the session is gone, so the caller's columns still come back
       FROM (VALUES (1)) AS one(x) LEFT JOIN live_grant lg ON true`;
  const params = [input.sessionId, input.appId ?? null, ...(alongside.params ?? [])];
  const rows = alongside.final
    ? (await finalStatement(em, sql, params)).rows
    : await em.query<Record<string, unknown>[]>(sql, params);
  const row = rows[0] as (GrantRow & PersonWithRoleInputsRow & Row) | undefined;
  if (!row) throw new Error('liveGrantWithPerson: the statement returned no row');
  const grant = liveGrantFromRow(row, input);
  if (!grant.live) return { grant, row };
  const person = personWithRolesFromRow(em, row);
  // The grant saw the person active in this snapshot; a row gone is not.
  if (!person) return { grant: { live: false, reason: 'person_not_active' }, row };
  return { grant: { live: true, session: grant.session, user: person.user, roles: person.roles }, row };
}
