import { createHash } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import type { LoginResult } from '../login-handoff.js';

/**
 * SAML Single Logout's rows (migrations/1766500000000, owned by sso): which
 * Gatehouse sessions does an IdP's NameID + SessionIndex name, what do we send
 * back in our own LogoutRequest, and which of our LogoutRequests is a
 * LogoutResponse allowed to answer? Every function runs in the caller's
 * withTenant transaction: RLS scopes each statement to that tenant.
 */

/** The signed assertion's subject, as SAML core §3.7.1 wants it back in a LogoutRequest. */
export interface SamlLogoutSubject {
  nameId: string;
  nameIdFormat: string | null;
  nameQualifier: string | null;
  spNameQualifier: string | null;
  sessionIndex: string | null;
}

/** Column bounds of saml_sessions: a longer value is not stored (that session gets no SLO), never a 500. */
const LIMITS = {
  nameId: 1024,
  nameIdFormat: 256,
  nameQualifier: 1024,
  spNameQualifier: 1024,
  sessionIndex: 256,
};

function fits(subject: SamlLogoutSubject): boolean {
  return (Object.keys(LIMITS) as (keyof typeof LIMITS)[]).every(
    (k) => (subject[k]?.length ?? 0) <= LIMITS[k],
  );
}

/**
 * The lookup key of an IdP's LogoutRequest: SHA-256 over the connection and
 * the NameID value (SAML core §3.7.3.2 matches the principal by NameID), so
 * the index is compact and equality-only (LEAKPROOF under RLS).
 */
export function nameIdKey(connectionId: string, nameId: string): string {
  return createHash('sha256').update(`${connectionId}\n${nameId}`, 'utf8').digest('base64url');
}

/**
 * The login's result with what the completer runs in the transaction that
 * creates the session (login-handoff.ts `sessionCreated`): the SLO row.
 */
export function withSamlSession(result: LoginResult, subject: SamlLogoutSubject | null): LoginResult {
  if (!subject || !fits(subject)) return result;
  return {
    ...result,
    sessionCreated: (em, session) =>
      recordSamlSession(em, {
        tenantId: result.tenantId,
        sessionId: session.id,
        userId: result.userId,
        connectionId: result.connectionId,
        expiresAt: session.expiresAt,
        subject,
      }),
  };
}

export async function recordSamlSession(
  em: EntityManager,
  input: {
    tenantId: string;
    sessionId: string;
    userId: string;
    connectionId: string;
    expiresAt: Date;
    subject: SamlLogoutSubject;
  },
): Promise<void> {
  const { subject } = input;
  await em.query(
    `INSERT INTO saml_sessions (tenant_id, session_id, user_id, connection_id, name_id_key, name_id,
                                name_id_format, name_qualifier, sp_name_qualifier, session_index, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (tenant_id, session_id) DO NOTHING`,
    [
      input.tenantId,
      input.sessionId,
      input.userId,
      input.connectionId,
      nameIdKey(input.connectionId, subject.nameId),
      subject.nameId,
      subject.nameIdFormat,
      subject.nameQualifier,
      subject.spNameQualifier,
      subject.sessionIndex,
      input.expiresAt,
    ],
  );
}

/**
 * The sessions an IdP's LogoutRequest names (SAML core §3.7.3.2): this
 * connection's NameID, and one of the SessionIndex values when it gives any
 * (none: every session of that NameID at this connection).
 */
export async function sessionsOfSubject(
  em: EntityManager,
  input: { connectionId: string; nameId: string; sessionIndexes: readonly string[] },
): Promise<string[]> {
  // idor check: RLS scopes to the connection's tenant; the connection id is part of the key and the WHERE.
  const rows = await em.query<{ session_id: string; session_index: string | null; name_id: string }[]>(
    `SELECT session_id, session_index, name_id FROM saml_sessions
      WHERE connection_id = $1 AND name_id_key = $2`,
    [input.connectionId, nameIdKey(input.connectionId, input.nameId)],
  );
  return rows
    .filter((r) => r.name_id === input.nameId)
    .filter(
      (r) =>
        input.sessionIndexes.length === 0 ||
        (r.session_index !== null && input.sessionIndexes.includes(r.session_index)),
    )
    .map((r) => r.session_id);
}

/** The SLO row of one session, when a SAML login created it. */
export async function samlSessionOf(
  em: EntityManager,
  sessionId: string,
): Promise<(SamlLogoutSubject & { connectionId: string }) | null> {
  const rows = await em.query<
    {
      connection_id: string;
      name_id: string;
      name_id_format: string | null;
      name_qualifier: string | null;
      sp_name_qualifier: string | null;
      session_index: string | null;
    }[]
  >(
    `SELECT connection_id, name_id, name_id_format, name_qualifier, sp_name_qualifier, session_index
       FROM saml_sessions WHERE session_id = $1`,
    [sessionId],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    connectionId: row.connection_id,
    nameId: row.name_id,
    nameIdFormat: row.name_id_format,
    nameQualifier: row.name_qualifier,
    spNameQualifier: row.sp_name_qualifier,
    sessionIndex: row.session_index,
  };
}

/** Remembers our LogoutRequest until its answer (or expiry); cleanup.ts removes the expired ones. */
export async function savePendingLogout(
  em: EntityManager,
  input: {
    tenantId: string;
    id: string;
    connectionId: string;
    returnUrl: string | null;
    now: Date;
    ttlMs: number;
  },
): Promise<void> {
  await em.query(
    `INSERT INTO saml_logout_requests (tenant_id, id, connection_id, return_url, created_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      input.tenantId,
      input.id,
      input.connectionId,
      input.returnUrl,
      input.now,
      new Date(input.now.getTime() + input.ttlMs),
    ],
  );
}

/**
 * The LogoutRequest a signed LogoutResponse's InResponseTo names, consumed
 * once (DELETE … RETURNING): on this connection, not expired. Null: none.
 */
export async function consumePendingLogout(
  em: EntityManager,
  input: { id: string; connectionId: string; now: Date },
): Promise<{ returnUrl: string | null } | null> {
  const [rows] = await em.query<[{ return_url: string | null }[], number]>(
    `DELETE FROM saml_logout_requests WHERE id = $1 AND connection_id = $2 AND expires_at > $3
     RETURNING return_url`,
    [input.id, input.connectionId, input.now],
  );
  const row = rows[0];
  return row ? { returnUrl: row.return_url } : null;
}
