import { open, seal } from '../../config/secret-box.js';
import type { Database } from '../../db/database.js';

/**
 * The state of an OIDC authorization request to a tenant's IdP: `state`
 * (the row's key), `nonce` and the PKCE verifier (sealed), bound to the
 * browser. Consumed once, atomically, and only by that browser.
 */
export interface OidcPending {
  tenantId: string;
  connectionId: string;
  loginId: string;
  browserHash: string;
  state: string;
  nonce: string;
  codeVerifier: string;
}

function verifierContext(tenantId: string, state: string): string {
  return `oidc_state:${tenantId}:${state}`;
}

export async function saveOidcState(
  db: Database,
  masterKey: Buffer,
  pending: OidcPending,
  ttlMs: number,
  now: Date,
): Promise<void> {
  await db.withTenant(pending.tenantId, async (em) => {
    await em.query('DELETE FROM oidc_login_states WHERE expires_at < $1', [now]);
    await em.query(
      `INSERT INTO oidc_login_states (tenant_id, state, connection_id, login_id, browser_hash, nonce,
                                      code_verifier_enc, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        pending.tenantId,
        pending.state,
        pending.connectionId,
        pending.loginId,
        pending.browserHash,
        pending.nonce,
        seal(masterKey, pending.codeVerifier, verifierContext(pending.tenantId, pending.state)),
        now,
        new Date(now.getTime() + ttlMs),
      ],
    );
  });
}

/** The pending request for this state, connection and browser, deleted as it is read; null when none. */
export async function consumeOidcState(
  db: Database,
  masterKey: Buffer,
  input: { tenantId: string; connectionId: string; state: string; browserHash: string | null; now: Date },
): Promise<OidcPending | null> {
  if (!input.browserHash) return null;
  const rows = await db.withTenant(input.tenantId, (em) =>
    em.query<[{ login_id: string; nonce: string; code_verifier_enc: string }[], number]>(
      `DELETE FROM oidc_login_states
        WHERE state = $1 AND connection_id = $2 AND browser_hash = $3 AND expires_at > $4
        RETURNING login_id, nonce, code_verifier_enc`,
      [input.state, input.connectionId, input.browserHash, input.now],
    ),
  );
  const row = rows[0][0];
  if (!row) return null;
  return {
    tenantId: input.tenantId,
    connectionId: input.connectionId,
    loginId: row.login_id,
    browserHash: input.browserHash,
    state: input.state,
    nonce: row.nonce,
    codeVerifier: open(masterKey, row.code_verifier_enc, verifierContext(input.tenantId, input.state)),
  };
}
