import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Federation extras (issue 16, helper slice 2):
 *
 * - connection_client_keys.certificate_pem: a self-signed X.509 certificate
 *   around each private_key_jwt client key, published as `x5c` in the
 *   connection's JWKS and named by `x5t` in the client assertion header, so
 *   Entra ID (which takes client keys only as uploaded certificates) accepts
 *   the assertion. Keys made before this get theirs on first need: a
 *   certificate is signed with the private key, which only the code can open.
 * - sp_key_rollover_due(): which (tenant, connection) pairs have an SP
 *   encryption key step due under GATEHOUSE_SP_KEY_ROLLOVER (rotate a current
 *   key created before $1 when no next waits; activate a next created before
 *   $2; retire a previous whose successor was activated before $2).
 *   SECURITY DEFINER, owned by gatehouse_resolver, which reads only the
 *   columns granted here (never a key or certificate); returns ids only.
 */
export class ClientKeyCertificates1766700000000 implements MigrationInterface {
  name = 'ClientKeyCertificates1766700000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS ${ROLLOVER_DUE}`);
    await q.query(`DROP POLICY IF EXISTS resolver_read ON connection_sp_keys`);
    await q.query(`REVOKE SELECT ON connection_sp_keys FROM gatehouse_resolver`);
    await q.query(`ALTER TABLE connection_client_keys DROP COLUMN IF EXISTS certificate_pem`);
  }
}

const ROLLOVER_DUE = 'sp_key_rollover_due(timestamptz, timestamptz, integer)';

const UP: string[] = [
  `ALTER TABLE connection_client_keys
     ADD COLUMN certificate_pem text CHECK (length(certificate_pem) <= 16384)`,

  `GRANT SELECT (tenant_id, connection_id, use, status, created_at, activated_at)
     ON connection_sp_keys TO gatehouse_resolver`,
  `CREATE POLICY resolver_read ON connection_sp_keys FOR SELECT TO gatehouse_resolver USING (true)`,
  `CREATE FUNCTION ${ROLLOVER_DUE}
     RETURNS TABLE (tenant_id uuid, connection_id uuid)
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT DISTINCT k.tenant_id, k.connection_id
       FROM public.connection_sp_keys k JOIN public.tenants t ON t.id = k.tenant_id
      WHERE k.use = 'encryption' AND t.status = 'active'
        AND ((k.status = 'current' AND k.created_at < $1
              AND NOT EXISTS (SELECT 1 FROM public.connection_sp_keys n
                               WHERE n.tenant_id = k.tenant_id AND n.connection_id = k.connection_id
                                 AND n.use = 'encryption' AND n.status = 'next'))
          OR (k.status = 'next' AND k.created_at < $2)
          OR (k.status = 'previous'
              AND EXISTS (SELECT 1 FROM public.connection_sp_keys c
                           WHERE c.tenant_id = k.tenant_id AND c.connection_id = k.connection_id
                             AND c.use = 'encryption' AND c.status = 'current'
                             AND c.activated_at < $2)))
      LIMIT $3
   $$`,
  `GRANT CREATE ON SCHEMA public TO gatehouse_resolver`,
  `ALTER FUNCTION ${ROLLOVER_DUE} OWNER TO gatehouse_resolver`,
  `REVOKE ALL ON FUNCTION ${ROLLOVER_DUE} FROM PUBLIC`,
  `GRANT EXECUTE ON FUNCTION ${ROLLOVER_DUE} TO gatehouse_app`,
  `REVOKE CREATE ON SCHEMA public FROM gatehouse_resolver`,
];
