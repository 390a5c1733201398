import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Federation lifecycle, part "certificates that renew themselves" and
 * "private_key_jwt" (issue 16):
 *
 * - connections.metadata_url and its conditional-GET state (metadata_etag,
 *   metadata_last_modified), the last attempt (metadata_refreshed_at) and its
 *   failure (metadata_refresh_error, null after a success). Only connections
 *   created or re-imported from a URL have one; the sweep
 *   (src/connections/metadata-refresh-sweep.ts) re-fetches them.
 * - saml_certificates stays jsonb; its items gain optional fields, written by
 *   the code (no backfill needed: absent means "seen since the connection was
 *   created, still published, nothing announced"): `firstSeenAt` (ISO),
 *   `removedAt` (ISO, when the IdP's metadata stopped listing it; kept for the
 *   overlap period, then dropped) and `expiryNotices` (the thresholds,
 *   `30d` `7d` `expired`, already announced by webhook: once each).
 * - connections.oidc_client_auth_method: how Gatehouse authenticates at the
 *   IdP's token endpoint (null: as before, client_secret_basic when the IdP
 *   supports it, else client_secret_post).
 * - connection_client_keys: per-connection key pairs for private_key_jwt
 *   (RFC 7523 §2.2), private keys sealed under the master key; RLS like every
 *   tenant table.
 * - metadata_refresh_due(), certificate_expiry_due(): which (tenant,
 *   connection) pairs the sweep visits; connection_certificate_expiry_stats():
 *   counts per status for /metrics. SECURITY DEFINER, owned by
 *   gatehouse_resolver, which reads only the columns granted here; they return
 *   ids and counts, never a certificate or a URL.
 */
export class MetadataRefresh1766400000000 implements MigrationInterface {
  name = 'MetadataRefresh1766400000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const fn of FUNCTIONS) await q.query(`DROP FUNCTION IF EXISTS ${fn}`);
    await q.query(
      `REVOKE SELECT (metadata_url, metadata_refreshed_at, saml_certificates, type) ON connections FROM gatehouse_resolver`,
    );
    await q.query(`DROP TABLE IF EXISTS connection_client_keys`);
    for (const column of [
      'metadata_url',
      'metadata_etag',
      'metadata_last_modified',
      'metadata_refreshed_at',
      'metadata_refresh_error',
      'oidc_client_auth_method',
    ])
      await q.query(`ALTER TABLE connections DROP COLUMN IF EXISTS ${column}`);
  }
}

const REFRESH_DUE = 'metadata_refresh_due(timestamptz, integer)';
const EXPIRY_DUE = 'certificate_expiry_due(timestamptz, integer)';
const EXPIRY_STATS = 'connection_certificate_expiry_stats()';
const FUNCTIONS = [REFRESH_DUE, EXPIRY_DUE, EXPIRY_STATS];

const UP: string[] = [
  `ALTER TABLE connections
     ADD COLUMN metadata_url text CHECK (length(metadata_url) <= 2048),
     ADD COLUMN metadata_etag text CHECK (length(metadata_etag) <= 512),
     ADD COLUMN metadata_last_modified text CHECK (length(metadata_last_modified) <= 128),
     ADD COLUMN metadata_refreshed_at timestamptz,
     ADD COLUMN metadata_refresh_error text CHECK (length(metadata_refresh_error) <= 1000),
     ADD COLUMN oidc_client_auth_method text CHECK (oidc_client_auth_method IN
       ('client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'))`,

  `CREATE TABLE connection_client_keys (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     connection_id uuid NOT NULL,
     kid text NOT NULL CHECK (length(kid) <= 128),
     alg text NOT NULL CHECK (alg IN ('RS256', 'ES256')),
     public_jwk jsonb NOT NULL,
     private_key_enc text NOT NULL,
     status text NOT NULL CHECK (status IN ('current', 'next', 'previous')),
     created_at timestamptz NOT NULL DEFAULT now(),
     activated_at timestamptz,
     PRIMARY KEY (tenant_id, id),
     FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE,
     CONSTRAINT connection_client_keys_kid_key UNIQUE (tenant_id, connection_id, kid)
   )`,
  // One current and at most one next key per connection, whatever two nodes do at once.
  `CREATE UNIQUE INDEX connection_client_keys_one_per_status ON connection_client_keys (tenant_id, connection_id, status)
     WHERE status IN ('current', 'next')`,
  `ALTER TABLE connection_client_keys ENABLE ROW LEVEL SECURITY`,
  `ALTER TABLE connection_client_keys FORCE ROW LEVEL SECURITY`,
  `CREATE POLICY tenant_isolation ON connection_client_keys
     USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON connection_client_keys TO gatehouse_app`,

  // The sweep's lookups read these columns across tenants (connections already has resolver_read).
  `GRANT SELECT (metadata_url, metadata_refreshed_at, saml_certificates, type) ON connections TO gatehouse_resolver`,
  `CREATE FUNCTION ${REFRESH_DUE}
     RETURNS TABLE (tenant_id uuid, connection_id uuid)
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT c.tenant_id, c.id FROM public.connections c JOIN public.tenants t ON t.id = c.tenant_id
      WHERE c.metadata_url IS NOT NULL AND t.status = 'active'
        AND (c.metadata_refreshed_at IS NULL OR c.metadata_refreshed_at < $1)
      ORDER BY c.metadata_refreshed_at NULLS FIRST LIMIT $2
   $$`,
  // Connections holding a certificate that expires before the horizon and has not had its last notice.
  `CREATE FUNCTION ${EXPIRY_DUE}
     RETURNS TABLE (tenant_id uuid, connection_id uuid)
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT c.tenant_id, c.id FROM public.connections c JOIN public.tenants t ON t.id = c.tenant_id
      WHERE c.type = 'saml' AND t.status = 'active'
        AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.saml_certificates) cert
                     WHERE (cert->>'notAfter')::timestamptz < $1
                       AND NOT COALESCE(cert->'expiryNotices', '[]'::jsonb) ? 'expired')
      LIMIT $2
   $$`,
  `CREATE FUNCTION ${EXPIRY_STATS}
     RETURNS TABLE (status text, certificates bigint)
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT s.status, count(cert.*) FROM
       (VALUES ('expired'), ('within_7d'), ('within_30d')) AS s (status)
       LEFT JOIN (
         SELECT CASE
                  WHEN (e->>'notAfter')::timestamptz <= now() THEN 'expired'
                  WHEN (e->>'notAfter')::timestamptz <= now() + interval '7 days' THEN 'within_7d'
                  ELSE 'within_30d'
                END AS status
           FROM public.connections c, jsonb_array_elements(c.saml_certificates) e
          WHERE c.type = 'saml' AND (e->>'notAfter')::timestamptz <= now() + interval '30 days'
       ) cert ON cert.status = s.status
      GROUP BY s.status
   $$`,
  // As in the earlier resolver migrations: CREATE on the schema only for the hand-over.
  `GRANT CREATE ON SCHEMA public TO gatehouse_resolver`,
  ...FUNCTIONS.flatMap((fn) => [
    `ALTER FUNCTION ${fn} OWNER TO gatehouse_resolver`,
    `REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`,
    `GRANT EXECUTE ON FUNCTION ${fn} TO gatehouse_app`,
  ]),
  `REVOKE CREATE ON SCHEMA public FROM gatehouse_resolver`,
];
