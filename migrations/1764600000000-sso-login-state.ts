import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * State of sign-ins at tenants' IdPs (src/sso), kept in Postgres so that any
 * node can finish a login another node started:
 *
 * - saml_requests: AuthnRequests sent and not yet answered (node-saml's
 *   InResponseTo cache), each bound to one browser (hash of a cookie value)
 *   and consumed once.
 * - saml_assertion_ids: assertion IDs already accepted, kept until the
 *   assertion expires, so a captured assertion cannot be replayed on any node.
 * - oidc_login_states: state, nonce and (sealed) PKCE verifier of OIDC
 *   authorization requests, bound to one browser and consumed once.
 *
 * All three are tenant tables (the connection in the ACS / callback URL names
 * the tenant first), with forced RLS like every other.
 */
export class SsoLoginState1764600000000 implements MigrationInterface {
  name = 'SsoLoginState1764600000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS oidc_login_states, saml_assertion_ids, saml_requests CASCADE`);
  }
}

const TENANT_TABLES = ['saml_requests', 'saml_assertion_ids', 'oidc_login_states'] as const;

const UP: string[] = [
  `CREATE TABLE saml_requests (
     tenant_id uuid NOT NULL,
     id text NOT NULL,
     connection_id uuid NOT NULL,
     login_id text NOT NULL,
     browser_hash text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, id),
     FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX saml_requests_tenant_expires_idx ON saml_requests (tenant_id, expires_at)`,

  `CREATE TABLE saml_assertion_ids (
     tenant_id uuid NOT NULL,
     connection_id uuid NOT NULL,
     assertion_id text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, connection_id, assertion_id),
     FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX saml_assertion_ids_tenant_expires_idx ON saml_assertion_ids (tenant_id, expires_at)`,

  `CREATE TABLE oidc_login_states (
     tenant_id uuid NOT NULL,
     state text NOT NULL,
     connection_id uuid NOT NULL,
     login_id text NOT NULL,
     browser_hash text NOT NULL,
     nonce text NOT NULL,
     code_verifier_enc text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, state),
     FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX oidc_login_states_tenant_expires_idx ON oidc_login_states (tenant_id, expires_at)`,

  ...TENANT_TABLES.flatMap((table) => [
    `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`,
    `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`,
    `CREATE POLICY tenant_isolation ON ${table}
       USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  ]),
  `GRANT SELECT, INSERT, UPDATE, DELETE ON saml_requests, saml_assertion_ids, oidc_login_states TO gatehouse_app`,
];
