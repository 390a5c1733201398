import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Can every tenant table be sharded by tenant_id (issue 11, "Past one
 * PostgreSQL"; docs/scaling.md)? A sharded PostgreSQL (Citus) enforces a
 * unique key only when it contains the distribution column. Three unique
 * indexes of tenant tables did not:
 *
 * - domains_verified_domain_key (domain) WHERE verified: "a verified domain
 *   belongs to one tenant", across tenants. That claim moves to a platform
 *   table, domain_claims (domain → tenant), whose primary key keeps the name
 *   domains_verified_domain_key, so a second tenant verifying the same domain
 *   still fails with that unique violation (tenants/domains.service.ts). A
 *   trigger on domains writes it in the verifying transaction, so the race
 *   between two tenants is decided by the database exactly as before. Its
 *   tenant column is not called tenant_id on purpose: tenant_id marks a
 *   tenant table (forced RLS, sharded); this is a small reference table that
 *   maps a global key to its tenant, read only by the SECURITY DEFINER
 *   resolvers (the runtime role gets no grant on it).
 * - connections_id_key (id), sessions_id_key (id): the resolvers' id → tenant
 *   lookups. Ids are server-generated v4 UUIDs, unique in practice; the
 *   lookups keep a plain index, and the resolvers now fail closed (NULL) should
 *   one id ever exist in two tenants, instead of picking one.
 *
 * Every primary key, other unique key and tenant-to-tenant foreign key already
 * includes tenant_id (test/db/distributable-schema.test.ts keeps it so).
 */
export class DistributableKeys1765600000000 implements MigrationInterface {
  name = 'DistributableKeys1765600000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const RESOLVER_OWNED = [
  'resolve_tenant_by_domain(text)',
  'domain_verified_by_other_tenant(text, uuid)',
  'resolve_tenant_by_connection(uuid)',
  'resolve_tenant_by_session(uuid)',
] as const;

/** CREATE OR REPLACE keeps owner (gatehouse_resolver) and grants; restated all the same. */
const RESOLVER_GRANTS = RESOLVER_OWNED.flatMap((fn) => [
  `ALTER FUNCTION ${fn} OWNER TO gatehouse_resolver`,
  `REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`,
  `GRANT EXECUTE ON FUNCTION ${fn} TO gatehouse_app`,
]);

const definer = (signature: string, returns: string, body: string) =>
  `CREATE OR REPLACE FUNCTION ${signature} RETURNS ${returns}
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$${body}$$`;

const UP: string[] = [
  // ---- the verified-domain claim: a reference table instead of a cross-tenant index ----
  // Dropped first: its name passes to the claims' primary key. One transaction, so no
  // verification lands in between.
  `DROP INDEX domains_verified_domain_key`,
  `CREATE TABLE domain_claims (
     domain text NOT NULL,
     tenant uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     claimed_at timestamptz NOT NULL DEFAULT now(),
     CONSTRAINT domains_verified_domain_key PRIMARY KEY (domain)
   )`,
  `REVOKE ALL ON domain_claims FROM PUBLIC`,
  `GRANT SELECT (domain, tenant) ON domain_claims TO gatehouse_resolver`,
  // Runs as the owner (no RLS on domain_claims) whoever changes domains; it
  // reads only OLD and NEW. (tenant, domain) names one domains row
  // (domains_tenant_domain_key).
  `CREATE FUNCTION domains_claim_verified() RETURNS trigger
     LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
   BEGIN
     IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.verified_at IS NOT NULL THEN
       DELETE FROM public.domain_claims WHERE domain = OLD.domain AND tenant = OLD.tenant_id;
     END IF;
     IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.verified_at IS NOT NULL THEN
       INSERT INTO public.domain_claims (domain, tenant) VALUES (NEW.domain, NEW.tenant_id);
     END IF;
     RETURN NULL;
   END $$`,
  `REVOKE ALL ON FUNCTION domains_claim_verified() FROM PUBLIC`,
  // The owner is subject to the forced policy too; for the copy only, inside this
  // migration's transaction, it reads domains as the table owner.
  `ALTER TABLE domains NO FORCE ROW LEVEL SECURITY`,
  `INSERT INTO domain_claims (domain, tenant, claimed_at)
     SELECT domain, tenant_id, verified_at FROM domains WHERE verified_at IS NOT NULL`,
  `ALTER TABLE domains FORCE ROW LEVEL SECURITY`,
  `CREATE TRIGGER domains_claim_verified AFTER INSERT OR DELETE OR UPDATE OF domain, verified_at, tenant_id
     ON domains FOR EACH ROW EXECUTE FUNCTION domains_claim_verified()`,

  // ---- id lookups: a plain index instead of a unique one ----
  `DROP INDEX connections_id_key`,
  `CREATE INDEX connections_id_idx ON connections (id)`,
  `DROP INDEX sessions_id_key`,
  `CREATE INDEX sessions_id_idx ON sessions (id)`,

  // ---- the resolvers: claims for domains; ambiguous ids resolve to nothing ----
  definer(
    'resolve_tenant_by_domain(p_domain text)',
    'uuid',
    `
     SELECT c.tenant FROM public.domain_claims c JOIN public.tenants t ON t.id = c.tenant
      WHERE c.domain = lower(p_domain) AND t.status = 'active'
   `,
  ),
  definer(
    'domain_verified_by_other_tenant(p_domain text, p_tenant uuid)',
    'boolean',
    `
     SELECT EXISTS (SELECT 1 FROM public.domain_claims c WHERE c.domain = lower(p_domain) AND c.tenant <> p_tenant)
   `,
  ),
  definer(
    'resolve_tenant_by_connection(p_connection uuid)',
    'uuid',
    `
     SELECT c.tenant_id FROM public.connections c JOIN public.tenants t ON t.id = c.tenant_id
      WHERE c.id = p_connection AND t.status = 'active'
        AND NOT EXISTS (SELECT 1 FROM public.connections o WHERE o.id = p_connection AND o.tenant_id <> c.tenant_id)
   `,
  ),
  definer(
    'resolve_tenant_by_session(p_session uuid)',
    'uuid',
    `
     SELECT s.tenant_id FROM public.sessions s
      WHERE s.id = p_session
        AND NOT EXISTS (SELECT 1 FROM public.sessions o WHERE o.id = p_session AND o.tenant_id <> s.tenant_id)
   `,
  ),
  ...RESOLVER_GRANTS,
];

/** The keys and resolvers as 1764100000000 created them. */
const DOWN: string[] = [
  definer(
    'resolve_tenant_by_domain(p_domain text)',
    'uuid',
    `
     SELECT d.tenant_id FROM public.domains d JOIN public.tenants t ON t.id = d.tenant_id
      WHERE d.domain = lower(p_domain) AND d.verified_at IS NOT NULL AND t.status = 'active'
   `,
  ),
  definer(
    'domain_verified_by_other_tenant(p_domain text, p_tenant uuid)',
    'boolean',
    `
     SELECT EXISTS (SELECT 1 FROM public.domains d
                     WHERE d.domain = lower(p_domain) AND d.verified_at IS NOT NULL AND d.tenant_id <> p_tenant)
   `,
  ),
  definer(
    'resolve_tenant_by_connection(p_connection uuid)',
    'uuid',
    `
     SELECT c.tenant_id FROM public.connections c JOIN public.tenants t ON t.id = c.tenant_id
      WHERE c.id = p_connection AND t.status = 'active'
   `,
  ),
  definer(
    'resolve_tenant_by_session(p_session uuid)',
    'uuid',
    `
     SELECT s.tenant_id FROM public.sessions s WHERE s.id = p_session
   `,
  ),
  ...RESOLVER_GRANTS,
  `DROP INDEX IF EXISTS sessions_id_idx`,
  `CREATE UNIQUE INDEX sessions_id_key ON sessions (id)`,
  `DROP INDEX IF EXISTS connections_id_idx`,
  `CREATE UNIQUE INDEX connections_id_key ON connections (id)`,
  `DROP TRIGGER IF EXISTS domains_claim_verified ON domains`,
  `DROP FUNCTION IF EXISTS domains_claim_verified()`,
  `DROP TABLE IF EXISTS domain_claims`,
  `CREATE UNIQUE INDEX domains_verified_domain_key ON domains (domain) WHERE verified_at IS NOT NULL`,
];
