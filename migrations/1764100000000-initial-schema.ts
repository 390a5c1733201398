import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The initial model (DESIGN.md §3–4) and its isolation: every table with a
 * `tenant_id` has RLS enabled and forced, keys lead with `tenant_id`, and
 * child rows reference their parent by (tenant_id, id) so a row can never
 * point into another tenant, whatever ids it is given.
 */
export class InitialSchema1764100000000 implements MigrationInterface {
  name = 'InitialSchema1764100000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of [...TENANT_TABLES].reverse()) await q.query(`DROP TABLE IF EXISTS ${table} CASCADE`);
    await q.query(`DROP TABLE IF EXISTS app_secrets, apps, signing_keys, tenants CASCADE`);
    await q.query(`DROP FUNCTION IF EXISTS app_current_tenant() CASCADE`);
  }
}

/** Tables holding tenant data, in dependency order. Each gets RLS below. */
export const TENANT_TABLES = [
  'domains',
  'connections',
  'users',
  'identities',
  'groups',
  'group_members',
  'role_mappings',
  'sessions',
  'scim_tokens',
  'audit_events',
] as const;

const RESOLVER_FUNCTIONS = [
  'resolve_tenant_by_domain(text)',
  'domain_verified_by_other_tenant(text, uuid)',
  'resolve_tenant_by_connection(uuid)',
  'resolve_tenant_by_session(uuid)',
];

const UP: string[] = [
  // Roles: the runtime role (no BYPASSRLS, owns nothing) and the resolver role
  // that owns the SECURITY DEFINER lookups made before a tenant is known.
  `DO $$ BEGIN
     IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gatehouse_app') THEN
       CREATE ROLE gatehouse_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
     END IF;
     IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gatehouse_resolver') THEN
       CREATE ROLE gatehouse_resolver NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
     END IF;
   END $$`,
  `GRANT USAGE ON SCHEMA public TO gatehouse_app, gatehouse_resolver`,
  `GRANT SELECT ON gatehouse_migrations TO gatehouse_app`,

  // The tenant of the current transaction, set by withTenant(); NULL outside it.
  `CREATE FUNCTION app_current_tenant() RETURNS uuid LANGUAGE sql STABLE AS
     $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$`,

  // ---- platform tables (no tenant data) ----
  `CREATE TABLE tenants (
     id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
     slug text NOT NULL,
     name text NOT NULL,
     status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
     created_at timestamptz NOT NULL DEFAULT now(),
     updated_at timestamptz NOT NULL DEFAULT now(),
     deleted_at timestamptz,
     CONSTRAINT tenants_slug_key UNIQUE (slug)
   )`,
  `CREATE TABLE apps (
     id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
     name text NOT NULL,
     client_type text NOT NULL DEFAULT 'confidential' CHECK (client_type IN ('confidential', 'public')),
     redirect_uris text[] NOT NULL DEFAULT '{}',
     post_logout_redirect_uris text[] NOT NULL DEFAULT '{}',
     backchannel_logout_uri text,
     token_signing_alg text NOT NULL DEFAULT 'ES256' CHECK (token_signing_alg IN ('ES256', 'EdDSA', 'RS256')),
     created_at timestamptz NOT NULL DEFAULT now(),
     updated_at timestamptz NOT NULL DEFAULT now(),
     deleted_at timestamptz
   )`,
  `CREATE TABLE app_secrets (
     id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
     app_id uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
     secret_hash text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz
   )`,
  `CREATE INDEX app_secrets_app_idx ON app_secrets (app_id)`,
  `CREATE TABLE signing_keys (
     kid text PRIMARY KEY,
     alg text NOT NULL CHECK (alg IN ('ES256', 'EdDSA', 'RS256')),
     public_jwk jsonb NOT NULL,
     private_key_enc text NOT NULL,
     status text NOT NULL CHECK (status IN ('next', 'active', 'retired')),
     created_at timestamptz NOT NULL DEFAULT now(),
     activated_at timestamptz,
     retired_at timestamptz,
     expires_at timestamptz
   )`,

  // ---- tenant tables ----
  `CREATE TABLE domains (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     domain text NOT NULL,
     verification_token text NOT NULL,
     verified_at timestamptz,
     verification_method text CHECK (verification_method IN ('dns', 'manual')),
     created_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant_id, id),
     CONSTRAINT domains_tenant_domain_key UNIQUE (tenant_id, domain)
   )`,
  // A verified domain belongs to exactly one tenant, across all tenants: the one
  // index that cannot lead with tenant_id, by design.
  `CREATE UNIQUE INDEX domains_verified_domain_key ON domains (domain) WHERE verified_at IS NOT NULL`,

  `CREATE TABLE connections (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     type text NOT NULL CHECK (type IN ('saml', 'oidc')),
     name text NOT NULL,
     status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'inactive')),
     jit_enabled boolean NOT NULL DEFAULT true,
     default_role text NOT NULL DEFAULT 'member',
     allow_unverified_email boolean NOT NULL DEFAULT false,
     attribute_mapping jsonb NOT NULL DEFAULT '{}',
     saml_idp_entity_id text,
     saml_sso_url text,
     saml_sso_binding text,
     saml_certificates jsonb NOT NULL DEFAULT '[]',
     saml_allow_idp_initiated boolean NOT NULL DEFAULT false,
     saml_allow_sha1 boolean NOT NULL DEFAULT false,
     saml_sign_authn_requests boolean NOT NULL DEFAULT false,
     oidc_issuer text,
     oidc_client_id text,
     oidc_client_secret_enc text,
     oidc_scopes text[] NOT NULL DEFAULT '{openid,email,profile}',
     oidc_id_token_algs text[] NOT NULL DEFAULT '{RS256}',
     created_at timestamptz NOT NULL DEFAULT now(),
     updated_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant_id, id)
   )`,
  // Resolver lookup: connection id (from an ACS URL) -> tenant.
  `CREATE UNIQUE INDEX connections_id_key ON connections (id)`,

  `CREATE TABLE users (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     user_name text NOT NULL,
     email text,
     email_verified boolean NOT NULL DEFAULT false,
     given_name text,
     family_name text,
     display_name text,
     external_id text,
     status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
     attributes jsonb NOT NULL DEFAULT '{}',
     version integer NOT NULL DEFAULT 1,
     created_at timestamptz NOT NULL DEFAULT now(),
     updated_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant_id, id)
   )`,
  `CREATE UNIQUE INDEX users_tenant_user_name_key ON users (tenant_id, lower(user_name)) WHERE status <> 'deleted'`,
  `CREATE INDEX users_tenant_email_idx ON users (tenant_id, lower(email))`,
  `CREATE INDEX users_tenant_external_id_idx ON users (tenant_id, external_id)`,

  `CREATE TABLE identities (
     tenant_id uuid NOT NULL,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     user_id uuid NOT NULL,
     connection_id uuid NOT NULL,
     subject text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     last_login_at timestamptz,
     PRIMARY KEY (tenant_id, id),
     CONSTRAINT identities_connection_subject_key UNIQUE (tenant_id, connection_id, subject),
     FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
     FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX identities_tenant_user_idx ON identities (tenant_id, user_id)`,

  `CREATE TABLE groups (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     display_name text NOT NULL,
     external_id text,
     source text NOT NULL DEFAULT 'scim' CHECK (source IN ('scim', 'idp')),
     version integer NOT NULL DEFAULT 1,
     created_at timestamptz NOT NULL DEFAULT now(),
     updated_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant_id, id)
   )`,
  `CREATE INDEX groups_tenant_display_name_idx ON groups (tenant_id, lower(display_name))`,
  `CREATE INDEX groups_tenant_external_id_idx ON groups (tenant_id, external_id)`,

  `CREATE TABLE group_members (
     tenant_id uuid NOT NULL,
     group_id uuid NOT NULL,
     user_id uuid NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant_id, group_id, user_id),
     FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
     FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
   )`,
  `CREATE INDEX group_members_tenant_user_idx ON group_members (tenant_id, user_id)`,

  `CREATE TABLE role_mappings (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     group_attribute text NOT NULL CHECK (group_attribute IN ('display_name', 'external_id')),
     group_value text NOT NULL,
     role text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant_id, id),
     CONSTRAINT role_mappings_group_role_key UNIQUE (tenant_id, group_attribute, group_value, role)
   )`,

  `CREATE TABLE sessions (
     tenant_id uuid NOT NULL,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     user_id uuid NOT NULL,
     app_id uuid REFERENCES apps (id) ON DELETE CASCADE,
     connection_id uuid,
     auth_time timestamptz NOT NULL DEFAULT now(),
     created_at timestamptz NOT NULL DEFAULT now(),
     expires_at timestamptz NOT NULL,
     revoked_at timestamptz,
     revoked_reason text,
     PRIMARY KEY (tenant_id, id),
     FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
     FOREIGN KEY (tenant_id, connection_id) REFERENCES connections (tenant_id, id) ON DELETE SET NULL (connection_id)
   )`,
  `CREATE INDEX sessions_tenant_user_idx ON sessions (tenant_id, user_id) WHERE revoked_at IS NULL`,
  // Resolver lookup: session id (from a token) -> tenant.
  `CREATE UNIQUE INDEX sessions_id_key ON sessions (id)`,

  `CREATE TABLE scim_tokens (
     tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     description text NOT NULL DEFAULT '',
     token_hash text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now(),
     last_used_at timestamptz,
     revoked_at timestamptz,
     PRIMARY KEY (tenant_id, id)
   )`,

  // ---- audit: append-only, hash-chained per tenant ----
  // tenant_id has no foreign key: platform events (apps, keys) chain under the
  // nil UUID, and a tenant's trail outlives the tenant.
  `CREATE TABLE audit_events (
     tenant_id uuid NOT NULL,
     seq bigint NOT NULL,
     id uuid NOT NULL DEFAULT gen_random_uuid(),
     occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
     actor_type text NOT NULL CHECK (actor_type IN ('operator', 'user', 'scim', 'system')),
     actor_id text,
     action text NOT NULL,
     target_type text,
     target_id text,
     request_id text,
     source_ip text,
     before jsonb,
     after jsonb,
     prev_hash text NOT NULL,
     hash text NOT NULL,
     PRIMARY KEY (tenant_id, seq)
   )`,
  `CREATE INDEX audit_events_tenant_action_idx ON audit_events (tenant_id, action, occurred_at)`,
  `CREATE INDEX audit_events_tenant_time_idx ON audit_events (tenant_id, occurred_at)`,
  // The one definition of an event's hash, used when writing and when verifying.
  `CREATE FUNCTION audit_event_hash(e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
     SELECT encode(sha256(convert_to(jsonb_build_array(
       e.prev_hash, e.tenant_id, e.seq, e.id,
       to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       e.actor_type, e.actor_id, e.action, e.target_type, e.target_id,
       e.request_id, e.source_ip, e.before, e.after)::text, 'UTF8')), 'hex')
   $$`,
  `CREATE FUNCTION audit_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     last audit_events%ROWTYPE;
   BEGIN
     -- One writer per tenant chain at a time; released at commit.
     PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || NEW.tenant_id::text, 0));
     SELECT * INTO last FROM audit_events WHERE tenant_id = NEW.tenant_id ORDER BY seq DESC LIMIT 1;
     NEW.seq := COALESCE(last.seq, 0) + 1;
     NEW.prev_hash := COALESCE(last.hash, repeat('0', 64));
     NEW.hash := audit_event_hash(NEW);
     RETURN NEW;
   END $$`,
  `CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events
     FOR EACH ROW EXECUTE FUNCTION audit_events_chain()`,
  `CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
   END $$`,
  `CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
     FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change()`,
  `CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
     FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change()`,
  // Recomputes a tenant's chain; returns the first broken seq, or NULL when intact.
  `CREATE FUNCTION audit_verify_chain(p_tenant uuid) RETURNS TABLE (checked bigint, first_broken_seq bigint)
   LANGUAGE plpgsql STABLE AS $$
   DECLARE
     e audit_events%ROWTYPE;
     expected_prev text := repeat('0', 64);
     expected_seq bigint := 1;
   BEGIN
     checked := 0;
     first_broken_seq := NULL;
     FOR e IN SELECT * FROM audit_events WHERE tenant_id = p_tenant ORDER BY seq LOOP
       IF e.seq <> expected_seq OR e.prev_hash <> expected_prev OR e.hash <> audit_event_hash(e) THEN
         first_broken_seq := e.seq;
         RETURN NEXT;
         RETURN;
       END IF;
       checked := checked + 1;
       expected_prev := e.hash;
       expected_seq := e.seq + 1;
     END LOOP;
     RETURN NEXT;
   END $$`,

  // ---- row-level security, enabled and forced on every tenant table ----
  ...TENANT_TABLES.flatMap((table) => [
    `ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`,
    `ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`,
    `CREATE POLICY tenant_isolation ON ${table}
       USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
  ]),

  // ---- privileges of the runtime role ----
  `GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, apps, app_secrets, signing_keys,
     domains, connections, users, identities, groups, group_members, role_mappings, sessions, scim_tokens
     TO gatehouse_app`,
  `GRANT SELECT, INSERT ON audit_events TO gatehouse_app`,

  // ---- pre-tenant resolvers (DESIGN.md §2) ----
  // Owned by gatehouse_resolver, which may read only the columns they need,
  // through SELECT-only policies; each returns a tenant id and nothing else.
  `GRANT SELECT (id, status) ON tenants TO gatehouse_resolver`,
  `GRANT SELECT (tenant_id, domain, verified_at) ON domains TO gatehouse_resolver`,
  `GRANT SELECT (tenant_id, id) ON connections TO gatehouse_resolver`,
  `GRANT SELECT (tenant_id, id) ON sessions TO gatehouse_resolver`,
  `CREATE POLICY resolver_read ON domains FOR SELECT TO gatehouse_resolver USING (true)`,
  `CREATE POLICY resolver_read ON connections FOR SELECT TO gatehouse_resolver USING (true)`,
  `CREATE POLICY resolver_read ON sessions FOR SELECT TO gatehouse_resolver USING (true)`,
  `CREATE FUNCTION resolve_tenant_by_domain(p_domain text) RETURNS uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT d.tenant_id FROM public.domains d JOIN public.tenants t ON t.id = d.tenant_id
      WHERE d.domain = lower(p_domain) AND d.verified_at IS NOT NULL AND t.status = 'active'
   $$`,
  `CREATE FUNCTION domain_verified_by_other_tenant(p_domain text, p_tenant uuid) RETURNS boolean
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT EXISTS (SELECT 1 FROM public.domains d
                     WHERE d.domain = lower(p_domain) AND d.verified_at IS NOT NULL AND d.tenant_id <> p_tenant)
   $$`,
  `CREATE FUNCTION resolve_tenant_by_connection(p_connection uuid) RETURNS uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT c.tenant_id FROM public.connections c JOIN public.tenants t ON t.id = c.tenant_id
      WHERE c.id = p_connection AND t.status = 'active'
   $$`,
  `CREATE FUNCTION resolve_tenant_by_session(p_session uuid) RETURNS uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT s.tenant_id FROM public.sessions s WHERE s.id = p_session
   $$`,
  // ALTER ... OWNER needs membership in, and CREATE for, the new owner; both are
  // held only for the moment of the hand-over.
  `GRANT gatehouse_resolver TO CURRENT_USER`,
  `GRANT CREATE ON SCHEMA public TO gatehouse_resolver`,
  ...RESOLVER_FUNCTIONS.flatMap((fn) => [
    `ALTER FUNCTION ${fn} OWNER TO gatehouse_resolver`,
    `REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`,
    `GRANT EXECUTE ON FUNCTION ${fn} TO gatehouse_app`,
  ]),
  `REVOKE CREATE ON SCHEMA public FROM gatehouse_resolver`,
];
