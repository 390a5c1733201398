import type { CacheItem, CacheProvider } from '@node-saml/node-saml';
import type { EntityManager } from 'typeorm';
import type { Database } from '../../db/database.js';

/**
 * node-saml's InResponseTo cache, in Postgres (so any node can take the
 * answer to a request another node sent) and stricter than the interface
 * suggests: a request id is found only by the browser that started it (hash
 * of its SSO cookie) and only once — the first lookup deletes the row
 * atomically (`DELETE … RETURNING`), so a second POST of the same answer, on
 * any node, finds nothing. One instance serves one HTTP request; it remembers
 * what it consumed. node-saml uses it only to save request ids when a login
 * starts; the ACS looks up the signed InResponseTo itself (saml-flow.ts).
 */
export class SamlRequestCache implements CacheProvider {
  private readonly consumed = new Map<string, { loginId: string; createdAt: Date }>();

  constructor(
    private readonly db: Database,
    private readonly scope: {
      tenantId: string;
      connectionId: string;
      /** Hash of the browser binding presented (null: none, so nothing is found). */
      browserHash: string | null;
      /** For SP-initiated starts: the app's pending login and how long the request lives. */
      pending?: { loginId: string; ttlMs: number };
    },
  ) {}

  async saveAsync(key: string, value: string): Promise<CacheItem | null> {
    const { tenantId, connectionId, browserHash, pending } = this.scope;
    if (!pending || !browserHash) throw new Error('an AuthnRequest is saved only when a login starts');
    const now = new Date();
    await this.db.withTenant(tenantId, async (em) => {
      await em.query('DELETE FROM saml_requests WHERE expires_at < now()');
      await em.query(
        `INSERT INTO saml_requests (tenant_id, id, connection_id, login_id, browser_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          tenantId,
          key,
          connectionId,
          pending.loginId,
          browserHash,
          now,
          new Date(now.getTime() + pending.ttlMs),
        ],
      );
    });
    return { value, createdAt: now.getTime() };
  }

  async getAsync(key: string): Promise<string | null> {
    const memo = this.consumed.get(key);
    if (memo) return memo.createdAt.toISOString();
    if (!this.scope.browserHash) return null;
    return this.db.withTenant(this.scope.tenantId, (em) => this.consumeIn(em, key));
  }

  /**
   * getAsync inside the caller's transaction of this tenant (the ACS's, which
   * also remembers the assertion id: one transaction, issue 9). The row is
   * deleted when the transaction commits.
   */
  async consumeIn(em: EntityManager, key: string): Promise<string | null> {
    const memo = this.consumed.get(key);
    if (memo) return memo.createdAt.toISOString();
    const { connectionId, browserHash } = this.scope;
    if (!browserHash) return null;
    const rows = await em.query<[{ login_id: string; created_at: Date }[], number]>(
      `DELETE FROM saml_requests
        WHERE id = $1 AND connection_id = $2 AND browser_hash = $3 AND expires_at > now()
        RETURNING login_id, created_at`,
      [key, connectionId, browserHash],
    );
    const row = rows[0][0];
    if (!row) return null;
    this.consumed.set(key, { loginId: row.login_id, createdAt: row.created_at });
    return row.created_at.toISOString();
  }

  /**
   * consumeIn as a CTE named `consumed` for a composed statement (the ACS's,
   * saml-acs-statement.ts), its DELETE guarded by `onlyIf` (SQL); null when
   * this browser presented no binding (nothing can be found). The row it
   * returns goes to noteConsumed.
   */
  consumeSql(key: string, p: (value: unknown) => string, onlyIf: string): string | null {
    const { connectionId, browserHash } = this.scope;
    if (!browserHash) return null;
    return `consumed AS (
      DELETE FROM saml_requests
       WHERE id = ${p(key)}::text AND connection_id = ${p(connectionId)}::uuid
         AND browser_hash = ${p(browserHash)}::text AND expires_at > now() AND ${onlyIf}
      RETURNING login_id, created_at)`;
  }

  /** What consumeSql's statement consumed (so consumedLoginId and getAsync know it). */
  noteConsumed(key: string, row: { loginId: string; createdAt: Date }): void {
    this.consumed.set(key, row);
  }

  async removeAsync(key: string | null): Promise<string | null> {
    const { tenantId, connectionId, browserHash } = this.scope;
    if (key === null || !browserHash) return null;
    // Only this browser's request: a forged answer from elsewhere cannot cancel someone's login.
    await this.db.withTenant(tenantId, (em) =>
      em.query('DELETE FROM saml_requests WHERE id = $1 AND connection_id = $2 AND browser_hash = $3', [
        key,
        connectionId,
        browserHash,
      ]),
    );
    return key;
  }

  /** The app's pending login of the (one) request this cache consumed, if any. */
  consumedLoginId(): string | null {
    for (const { loginId } of this.consumed.values()) return loginId;
    return null;
  }

  /** The app's pending login of a request this cache consumed, if any. */
  loginIdOf(key: string): string | null {
    return this.consumed.get(key)?.loginId ?? null;
  }
}
