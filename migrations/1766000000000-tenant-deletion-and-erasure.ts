import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Offboarding (issue 12): how is a tenant deleted with a record and purged
 * after its retention, and how is one person erased, without letting the
 * runtime role rewrite the audit trail?
 *
 * - tenants: `purge_after` (deleted_at + GATEHOUSE_TENANT_RETENTION),
 *   `purge_forced_at` (the operator's `?force=true`), `purged_at` and
 *   `final_checkpoint` (the signed head kept on the tombstone); status gains
 *   'purged'. The row stays so the slug is never silently reused.
 * - audit chain v2: every new event commits to a salted digest of its
 *   personal fields (actor_id, target_id, source_ip, before, after) instead of
 *   their clear values: `content_digest = sha256(pii_salt || digest_input)`,
 *   and the v2 hash covers `content_digest`. Erasure drops the salt and
 *   replaces the clear values by a marker; the stored digest keeps the chain
 *   verifiable. Events written before this migration stay v1 (their hash
 *   covers clear values): erasing one is reported by verification as
 *   `erased_unverifiable_seqs`, not as tampering.
 * - the append-only guard gets one exception: an UPDATE that leaves every
 *   chained column as it was, or a DELETE, run by the tables' owner while
 *   `gatehouse.audit_rewrite` is on. Only two SECURITY DEFINER functions
 *   owned by the owner turn it on, and off again before they return: audit_erase_subject
 *   (the current tenant's events that name given values) and tenant_purge
 *   (every row of a deleted tenant past its retention, or forced). The
 *   runtime role may set the flag but is never the owner, so it still cannot
 *   UPDATE or DELETE an event directly.
 */
export class TenantDeletionAndErasure1766000000000 implements MigrationInterface {
  name = 'TenantDeletionAndErasure1766000000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const TIME = `to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const V1_INPUT = `jsonb_build_array(
       e.prev_hash, e.tenant_id, e.seq, e.id, ${TIME},
       e.actor_type, e.actor_id, e.action, e.target_type, e.target_id,
       e.request_id, e.source_ip, e.before, e.after)::text`;

const V2_INPUT = `jsonb_build_array(
       'v2', e.prev_hash, e.tenant_id, e.seq, e.id, ${TIME},
       e.actor_type, e.action, e.target_type, e.request_id, e.content_digest)::text`;

/** What an erased field holds instead of its value (text columns / jsonb columns). */
const ERASED_TEXT = `'[erased]'`;
const ERASED_JSON = `'{"erased": true}'::jsonb`;

const REDACT = `actor_id = CASE WHEN actor_id IS NULL THEN NULL ELSE ${ERASED_TEXT} END,
       target_id = CASE WHEN target_id IS NULL THEN NULL ELSE ${ERASED_TEXT} END,
       source_ip = CASE WHEN source_ip IS NULL THEN NULL ELSE ${ERASED_TEXT} END,
       before = CASE WHEN before IS NULL THEN NULL ELSE ${ERASED_JSON} END,
       after = CASE WHEN after IS NULL THEN NULL ELSE ${ERASED_JSON} END,
       pii_salt = NULL,
       erased_at = clock_timestamp()`;

const ERASE = 'audit_erase_subject(uuid, text[])';
const PURGE = 'tenant_purge(uuid, text)';

const UP: string[] = [
  // ---- tenants: retention, tombstone ----
  `ALTER TABLE tenants DROP CONSTRAINT IF EXISTS tenants_status_check`,
  `ALTER TABLE tenants ADD CONSTRAINT tenants_status_check
     CHECK (status IN ('active', 'suspended', 'deleted', 'purged'))`,
  `ALTER TABLE tenants
     ADD COLUMN purge_after timestamptz,
     ADD COLUMN purge_forced_at timestamptz,
     ADD COLUMN purged_at timestamptz,
     ADD COLUMN final_checkpoint jsonb`,

  // ---- audit chain v2 ----
  // Existing rows become v1 (the constant default is not an UPDATE: no trigger fires).
  `ALTER TABLE audit_events
     ADD COLUMN hash_version smallint NOT NULL DEFAULT 1 CHECK (hash_version IN (1, 2)),
     ADD COLUMN pii_salt bytea,
     ADD COLUMN content_digest text,
     ADD COLUMN erased_at timestamptz`,
  `ALTER TABLE audit_events ALTER COLUMN hash_version SET DEFAULT 2`,
  `CREATE FUNCTION audit_event_digest_input(e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
     SELECT jsonb_build_array(e.actor_id, e.target_id, e.source_ip, e.before, e.after)::text
   $$`,
  `CREATE FUNCTION audit_event_content_digest(e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
     SELECT encode(sha256(e.pii_salt || convert_to(public.audit_event_digest_input(e), 'UTF8')), 'hex')
   $$`,
  // audit_event_hash (1765800000000) is sha256(audit_event_hash_input(e)): changing the input changes both.
  `CREATE OR REPLACE FUNCTION audit_event_hash_input(e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
     SELECT CASE WHEN e.hash_version = 1 THEN ${V1_INPUT} ELSE ${V2_INPUT} END
   $$`,
  `CREATE OR REPLACE FUNCTION audit_event_hash(e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
     SELECT encode(sha256(convert_to(public.audit_event_hash_input(e), 'UTF8')), 'hex')
   $$`,
  `CREATE FUNCTION audit_event_is_erased(e audit_events) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
     SELECT CASE WHEN e.hash_version = 1 THEN e.erased_at IS NOT NULL ELSE e.pii_salt IS NULL END
   $$`,
  // An erased event holds nothing but markers in its personal fields.
  `CREATE FUNCTION audit_event_redacted(e audit_events) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
     SELECT (e.actor_id IS NULL OR e.actor_id = ${ERASED_TEXT})
        AND (e.target_id IS NULL OR e.target_id = ${ERASED_TEXT})
        AND (e.source_ip IS NULL OR e.source_ip = ${ERASED_TEXT})
        AND (e.before IS NULL OR e.before = ${ERASED_JSON})
        AND (e.after IS NULL OR e.after = ${ERASED_JSON})
   $$`,
  `CREATE FUNCTION audit_jsonb_mentions(j jsonb, vals text[]) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
     SELECT j IS NOT NULL AND EXISTS (
       SELECT 1 FROM jsonb_path_query(j, 'strict $.**') x
        WHERE jsonb_typeof(x) = 'string' AND lower(x #>> '{}') = ANY (vals))
   $$`,
  `CREATE OR REPLACE FUNCTION audit_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     last audit_events%ROWTYPE;
   BEGIN
     -- One writer per tenant chain at a time; released at commit.
     PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || NEW.tenant_id::text, 0));
     SELECT * INTO last FROM audit_events WHERE tenant_id = NEW.tenant_id ORDER BY seq DESC LIMIT 1;
     NEW.seq := COALESCE(last.seq, 0) + 1;
     NEW.prev_hash := COALESCE(last.hash, repeat('0', 64));
     -- v2: 32 random bytes (two v4 UUIDs, 244 bits from the CSPRNG) salt the personal fields' digest,
     -- so the digest of an erased event cannot be matched against guessed names or emails.
     NEW.hash_version := 2;
     NEW.pii_salt := uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid());
     NEW.erased_at := NULL;
     NEW.content_digest := audit_event_content_digest(NEW);
     NEW.hash := audit_event_hash(NEW);
     RETURN NEW;
   END $$`,
  `CREATE OR REPLACE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     -- The one exception (issue 12): erasure and purge, inside the owner's SECURITY DEFINER
     -- functions that turn gatehouse.audit_rewrite on for their own duration. Whoever else sets
     -- the flag is not the owner; the owner could switch this trigger off anyway.
     IF TG_OP IN ('UPDATE', 'DELETE')
        AND current_setting('gatehouse.audit_rewrite', true) = 'on'
        AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN
       IF TG_OP = 'DELETE' THEN
         RETURN OLD;
       END IF;
       IF TG_TABLE_NAME = 'audit_events' THEN
         -- An erasure changes personal fields only: never what the chain links.
         IF (NEW.tenant_id, NEW.seq, NEW.id, NEW.occurred_at, NEW.actor_type, NEW.action, NEW.target_type,
             NEW.request_id, NEW.prev_hash, NEW.hash, NEW.hash_version, NEW.content_digest)
            IS NOT DISTINCT FROM
            (OLD.tenant_id, OLD.seq, OLD.id, OLD.occurred_at, OLD.actor_type, OLD.action, OLD.target_type,
             OLD.request_id, OLD.prev_hash, OLD.hash, OLD.hash_version, OLD.content_digest) THEN
           RETURN NEW;
         END IF;
       END IF;
     END IF;
     RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
   END $$`,

  // Verification: v1 as before (an erased v1 event is listed, not broken); v2 recomputes the
  // digest while the salt is there, and for an erased event checks the markers and uses the
  // stored digest.
  `DROP FUNCTION audit_verify_chain(uuid)`,
  `CREATE FUNCTION audit_verify_chain(p_tenant uuid)
     RETURNS TABLE (checked bigint, first_broken_seq bigint, erased_unverifiable_seqs bigint[])
   LANGUAGE plpgsql STABLE AS $$
   DECLARE
     e audit_events%ROWTYPE;
     expected_prev text := repeat('0', 64);
     expected_seq bigint := 1;
     ok boolean;
   BEGIN
     checked := 0;
     first_broken_seq := NULL;
     erased_unverifiable_seqs := '{}';
     FOR e IN SELECT * FROM audit_events WHERE tenant_id = p_tenant ORDER BY seq LOOP
       ok := e.seq = expected_seq AND e.prev_hash = expected_prev;
       IF ok THEN
         IF e.hash_version = 1 AND e.erased_at IS NULL THEN
           ok := e.hash = audit_event_hash(e);
         ELSIF e.hash_version = 1 THEN
           ok := audit_event_redacted(e);
           IF ok THEN
             erased_unverifiable_seqs := erased_unverifiable_seqs || e.seq;
           END IF;
         ELSIF e.pii_salt IS NOT NULL THEN
           ok := e.content_digest = audit_event_content_digest(e) AND e.hash = audit_event_hash(e);
         ELSE
           ok := audit_event_redacted(e) AND e.content_digest ~ '^[0-9a-f]{64}$' AND e.hash = audit_event_hash(e);
         END IF;
       END IF;
       IF NOT COALESCE(ok, false) THEN
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

  // ---- erasure of one person's values from the current tenant's trail ----
  `CREATE FUNCTION audit_erase_subject(p_tenant uuid, p_values text[]) RETURNS bigint[]
     LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
   DECLARE
     vals text[];
     seqs bigint[];
   BEGIN
     -- idor check: only the transaction's own tenant (withTenant), whatever id is passed.
     IF p_tenant IS NULL OR p_tenant IS DISTINCT FROM public.app_current_tenant() THEN
       RAISE EXCEPTION 'audit_erase_subject: not the current tenant' USING ERRCODE = 'insufficient_privilege';
     END IF;
     -- On for this function only (a SET clause on a placeholder needs a superuser): turned off
     -- before returning; an error rolls it back with the rest.
     PERFORM set_config('gatehouse.audit_rewrite', 'on', true);
     SELECT COALESCE(array_agg(DISTINCT lower(v)), '{}') INTO vals
       FROM unnest(p_values) v WHERE v IS NOT NULL AND length(v) > 0;
     IF cardinality(vals) = 0 THEN
       PERFORM set_config('gatehouse.audit_rewrite', 'off', true);
       RETURN '{}';
     END IF;
     WITH hit AS (
       SELECT e.seq FROM public.audit_events e
        WHERE e.tenant_id = p_tenant AND NOT public.audit_event_is_erased(e)
          AND (lower(e.actor_id) = ANY (vals) OR lower(e.target_id) = ANY (vals)
               OR public.audit_jsonb_mentions(e.before, vals) OR public.audit_jsonb_mentions(e.after, vals))
     ), erased AS (
       UPDATE public.audit_events SET ${REDACT}
        WHERE tenant_id = p_tenant AND seq IN (SELECT seq FROM hit)
       RETURNING seq
     )
     SELECT COALESCE(array_agg(seq ORDER BY seq), '{}') INTO seqs FROM erased;
     PERFORM set_config('gatehouse.audit_rewrite', 'off', true);
     RETURN seqs;
   END $$`,

  // ---- purge: every row of a deleted tenant past retention (or forced) ----
  `CREATE FUNCTION tenant_purge(p_tenant uuid, p_audit text) RETURNS bigint
     LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
   DECLARE
     t record;
     tbl text;
     pending text[];
     failed text[];
     passes integer := 0;
     n bigint := 0;
     c bigint;
   BEGIN
     IF p_tenant IS NULL OR p_tenant IS DISTINCT FROM public.app_current_tenant() THEN
       RAISE EXCEPTION 'tenant_purge: not the current tenant' USING ERRCODE = 'insufficient_privilege';
     END IF;
     IF p_audit IS NULL OR p_audit NOT IN ('delete', 'pseudonymise') THEN
       RAISE EXCEPTION 'tenant_purge: audit mode must be delete or pseudonymise' USING ERRCODE = 'invalid_parameter_value';
     END IF;
     SELECT status, purge_after, purge_forced_at INTO t FROM public.tenants WHERE id = p_tenant FOR UPDATE;
     IF NOT FOUND OR t.status <> 'deleted'
        OR (t.purge_forced_at IS NULL AND (t.purge_after IS NULL OR t.purge_after > now())) THEN
       RAISE EXCEPTION 'tenant_purge: the tenant is not deleted and due for purge' USING ERRCODE = 'insufficient_privilege';
     END IF;
     -- Every table with a tenant_id column, from the catalog: a table added later cannot be forgotten.
     SELECT COALESCE(array_agg(c.relname::text ORDER BY c.relname), '{}') INTO pending
       FROM pg_class c
       JOIN pg_namespace ns ON ns.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE ns.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attname = 'tenant_id' AND NOT a.attisdropped
        AND c.relname NOT IN ('audit_events', 'audit_checkpoints');
     -- Children before parents without knowing the graph: a table still referenced is retried.
     WHILE cardinality(pending) > 0 AND passes < 20 LOOP
       failed := '{}';
       FOREACH tbl IN ARRAY pending LOOP
         BEGIN
           EXECUTE format('DELETE FROM public.%I WHERE tenant_id = $1', tbl) USING p_tenant;
           GET DIAGNOSTICS c = ROW_COUNT;
           n := n + c;
         EXCEPTION WHEN foreign_key_violation THEN
           failed := failed || tbl;
         END;
       END LOOP;
       pending := failed;
       passes := passes + 1;
     END LOOP;
     IF cardinality(pending) > 0 THEN
       RAISE EXCEPTION 'tenant_purge: rows still referenced in %', pending;
     END IF;
     PERFORM set_config('gatehouse.audit_rewrite', 'on', true);
     IF p_audit = 'delete' THEN
       DELETE FROM public.audit_events WHERE tenant_id = p_tenant;
       GET DIAGNOSTICS c = ROW_COUNT;
       n := n + c;
       DELETE FROM public.audit_checkpoints WHERE tenant_id = p_tenant;
     ELSE
       UPDATE public.audit_events e SET ${REDACT}
        WHERE tenant_id = p_tenant AND NOT public.audit_event_is_erased(e);
       GET DIAGNOSTICS c = ROW_COUNT;
       n := n + c;
     END IF;
     PERFORM set_config('gatehouse.audit_rewrite', 'off', true);
     RETURN n;
   END $$`,
  ...[ERASE, PURGE].flatMap((fn) => [
    `REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`,
    `GRANT EXECUTE ON FUNCTION ${fn} TO gatehouse_app`,
  ]),
];

const DOWN: string[] = [
  `DROP FUNCTION IF EXISTS ${PURGE}`,
  `DROP FUNCTION IF EXISTS ${ERASE}`,
  `DROP FUNCTION IF EXISTS audit_verify_chain(uuid)`,
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
  `CREATE OR REPLACE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
   END $$`,
  `CREATE OR REPLACE FUNCTION audit_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     last audit_events%ROWTYPE;
   BEGIN
     PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || NEW.tenant_id::text, 0));
     SELECT * INTO last FROM audit_events WHERE tenant_id = NEW.tenant_id ORDER BY seq DESC LIMIT 1;
     NEW.seq := COALESCE(last.seq, 0) + 1;
     NEW.prev_hash := COALESCE(last.hash, repeat('0', 64));
     NEW.hash := audit_event_hash(NEW);
     RETURN NEW;
   END $$`,
  // v2 events cannot be re-expressed as v1: going down keeps the v1 input for every row.
  `CREATE OR REPLACE FUNCTION audit_event_hash_input(e audit_events) RETURNS text LANGUAGE sql IMMUTABLE AS $$
     SELECT ${V1_INPUT}
   $$`,
  `DROP FUNCTION IF EXISTS audit_jsonb_mentions(jsonb, text[])`,
  `DROP FUNCTION IF EXISTS audit_event_redacted(audit_events)`,
  `DROP FUNCTION IF EXISTS audit_event_is_erased(audit_events)`,
  `DROP FUNCTION IF EXISTS audit_event_content_digest(audit_events)`,
  `DROP FUNCTION IF EXISTS audit_event_digest_input(audit_events)`,
  `ALTER TABLE audit_events DROP COLUMN hash_version, DROP COLUMN pii_salt,
     DROP COLUMN content_digest, DROP COLUMN erased_at`,
  `ALTER TABLE tenants DROP COLUMN purge_after, DROP COLUMN purge_forced_at, DROP COLUMN purged_at,
     DROP COLUMN final_checkpoint`,
  `ALTER TABLE tenants DROP CONSTRAINT IF EXISTS tenants_status_check`,
  `ALTER TABLE tenants ADD CONSTRAINT tenants_status_check CHECK (status IN ('active', 'suspended', 'deleted'))`,
];
