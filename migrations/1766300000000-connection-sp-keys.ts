import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Per-connection SP keys (issue 16): which key pair does Gatehouse sign
 * AuthnRequests with, and decrypt EncryptedAssertions with, for one SAML
 * connection?
 *
 * - connection_sp_keys: a tenant table (forced RLS), one row per key. `use` is
 *   'signing' or 'encryption'; `status` walks next → current → previous →
 *   retired. At most one next, one current and one previous per connection and
 *   use (partial unique indexes), so a rotation can never leave two keys in a
 *   role. private_key_enc is the PKCS#8 PEM sealed with the master key
 *   (config/secret-box.ts, the row's tenant, connection and id as associated
 *   data); a retired row keeps only its certificate (private key NULL).
 * - connections.saml_require_encrypted_assertions: a plaintext assertion is
 *   refused (saml_assertion_not_encrypted). Default off.
 */
export class ConnectionSpKeys1766300000000 implements MigrationInterface {
  name = 'ConnectionSpKeys1766300000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS connection_sp_keys CASCADE`);
    await q.query(`ALTER TABLE connections DROP COLUMN IF EXISTS saml_require_encrypted_assertions`);
  }
}

const UP: string[] = [
  `ALTER TABLE connections ADD COLUMN saml_require_encrypted_assertions boolean NOT NULL DEFAULT false`,
  `CREATE TABLE connection_sp_keys (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     connection_id uuid NOT NULL,
     use text NOT NULL CHECK (use IN ('signing', 'encryption')),
     status text NOT NULL CHECK (status IN ('next', 'current', 'previous', 'retired')),
     certificate_pem text NOT NULL CHECK (length(certificate_pem) <= 16384),
     private_key_enc text CHECK (length(private_key_enc) <= 16384),
     not_after timestamptz NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     activated_at timestamptz,
     retired_at timestamptz,
     PRIMARY KEY (tenant_id, id),
     FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE,
     -- A key that can still be used holds its private key; a retired one holds none.
     CHECK ((status = 'retired') = (private_key_enc IS NULL))
   )`,
  `CREATE UNIQUE INDEX connection_sp_keys_one_per_role_idx ON connection_sp_keys (tenant_id, connection_id, use, status)
     WHERE status <> 'retired'`,
  `CREATE INDEX connection_sp_keys_connection_idx ON connection_sp_keys (tenant_id, connection_id, created_at)`,
  `ALTER TABLE connection_sp_keys ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE connection_sp_keys FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY tenant_isolation ON connection_sp_keys
     USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON connection_sp_keys TO gatehouse_app`,
];
