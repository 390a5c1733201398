import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Gatehouse as the main app's OpenID Provider (DESIGN.md §4).
 *
 * - authorization_requests: a platform table, because the tenant is not known
 *   while the person is still at discovery / their IdP. It holds the app's
 *   validated request, bound to one browser (hash of a cookie value), and the
 *   session the login produced.
 * - authorization_codes, refresh_tokens: tenant tables (forced RLS), each row
 *   tied to the session it belongs to; only hashes of the secrets are stored.
 * - signing_keys: at most one active and one next key per algorithm.
 */
export class OAuthProvider1764500000000 implements MigrationInterface {
  name = 'OAuthProvider1764500000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS refresh_tokens, authorization_codes, authorization_requests CASCADE`);
    await q.query(`DROP INDEX IF EXISTS signing_keys_active_alg_key, signing_keys_next_alg_key`);
  }
}

const TENANT_TABLES = ['authorization_codes', 'refresh_tokens'] as const;

const UP: string[] = [
  `CREATE TABLE authorization_requests (
     id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
     app_id uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
     redirect_uri text NOT NULL,
     scope text NOT NULL,
     state text,
     nonce text,
     code_challenge text,
     code_challenge_method text CHECK (code_challenge_method IN ('S256')),
     login_hint text,
     organization text,
     connection_id uuid,
     browser_hash text NOT NULL,
     session_id uuid,
     completion_hash text,
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     authenticated_at timestamptz,
     completed_at timestamptz
   )`,
  `CREATE INDEX authorization_requests_expires_idx ON authorization_requests (expires_at)`,

  `CREATE TABLE authorization_codes (
     tenant_id uuid NOT NULL,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     session_id uuid NOT NULL,
     app_id uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
     code_hash text NOT NULL,
     redirect_uri text NOT NULL,
     scope text NOT NULL,
     nonce text,
     code_challenge text,
     code_challenge_method text CHECK (code_challenge_method IN ('S256')),
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     used_at timestamptz,
     PRIMARY KEY (tenant_id, id),
     CONSTRAINT authorization_codes_code_hash_key UNIQUE (tenant_id, code_hash),
     FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX authorization_codes_tenant_session_idx ON authorization_codes (tenant_id, session_id)`,

  `CREATE TABLE refresh_tokens (
     tenant_id uuid NOT NULL,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     session_id uuid NOT NULL,
     app_id uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
     token_hash text NOT NULL,
     scope text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     used_at timestamptz,
     PRIMARY KEY (tenant_id, id),
     CONSTRAINT refresh_tokens_token_hash_key UNIQUE (tenant_id, token_hash),
     FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX refresh_tokens_tenant_session_idx ON refresh_tokens (tenant_id, session_id)`,

  // One active and one next key per algorithm, even when two nodes rotate at once.
  `CREATE UNIQUE INDEX signing_keys_active_alg_key ON signing_keys (alg) WHERE status = 'active'`,
  `CREATE UNIQUE INDEX signing_keys_next_alg_key ON signing_keys (alg) WHERE status = 'next'`,

  ...TENANT_TABLES.flatMap((table) => [
    `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`,
    `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`,
    `CREATE POLICY tenant_isolation ON ${table}
       USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  ]),
  `GRANT SELECT, INSERT, UPDATE, DELETE ON authorization_requests, authorization_codes, refresh_tokens
     TO gatehouse_app`,
];
