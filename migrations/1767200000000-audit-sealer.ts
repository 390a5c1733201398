import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * How are a tenant's audit events chained without making its writers queue
 * (issue 13)? Until now the insert trigger took the tenant's advisory lock
 * EXCLUSIVELY and held it to the writer's COMMIT, so one tenant's writes ran
 * one at a time.
 *
 * - Insert: the event is written UNCHAINED (seq, prev_hash, hash NULL), with
 *   its own content fixed as before (chain v2 salt and content_digest), and a
 *   global insertion number (`insert_no`, a sequence). The trigger first takes
 *   the tenant's advisory lock in SHARED mode for the writer's transaction
 *   (pg_advisory_xact_lock_shared): shared holders never conflict, so two
 *   writers of one tenant never wait on each other.
 * - Seal: audit_seal(tenant, max, wait) — SECURITY DEFINER, owned by the
 *   tables' owner like audit_erase_subject — takes the same key EXCLUSIVELY
 *   for its own short transaction (try-lock, or with wait a blocking attempt
 *   bounded by lock_timeout). Once it holds it, every transaction that
 *   inserted an event for this tenant has ended (it held the shared lock to
 *   its end) and none can insert another until the seal commits; a later
 *   statement's snapshot therefore sees every event that will ever precede
 *   the ones it chains. It chains them in insert_no order. The horizon is the
 *   tenant's own: an open transaction of another tenant or database (a
 *   report, pg_dump) holds nothing back, unlike the cluster-wide snapshot
 *   xmin of the first version. Each gets the next gapless seq, prev_hash and
 *   hash = audit_event_hash, the same function as before: offline
 *   verification and import recompute the same.
 * - The append-only guard allows one more change: the sealing UPDATE (with
 *   gatehouse.audit_seal on, which audit_seal sets; only the owner holds
 *   UPDATE) of an unsealed row, setting seq/prev_hash/hash and nothing else.
 *   Any other change of a sealed or unsealed row is refused as before; the
 *   runtime role still has no UPDATE or DELETE grant.
 * - Import mode (1765900000000): an imported event is chained at once under
 *   the exclusive lock (the tenant is new; nobody waits) unless an unsealed
 *   event of the tenant is visible (then it waits for the sealer, never
 *   jumping ahead), and an archived event that was still unsealed stays
 *   unsealed, with this database's insert_no, for the sealer.
 * - audit_verify_chain verifies the sealed chain and reports the unsealed
 *   tail (count and oldest time); audit_unsealed_tenants(limit) is the
 *   periodic pass's pre-tenant lookup, like audit_checkpoint_due_tenants.
 * The tamper-evidence argument is in docs/security.md §9.
 */
export class AuditSealer1767200000000 implements MigrationInterface {
  name = 'AuditSealer1767200000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const SEAL = 'audit_seal(uuid, integer, boolean)';
/** How long one blocking seal attempt waits for the tenant's writers (audit-sealer.ts retries). */
const SEAL_LOCK_TIMEOUT = '100ms';
const UNSEALED = 'audit_unsealed_tenants(integer)';
/** The tenant's chain key, distinct from every other advisory key in the code ('gatehouse:…', 'jit:…'). */
const LOCK = `hashtextextended('audit:' || NEW.tenant_id::text, 0)`;
const ZERO = `repeat('0', 64)`;

/** The 1766000000000 insert trigger: its content part is kept word for word below. */
const V2_CONTENT = `
     -- v2: 32 random bytes (two v4 UUIDs, 244 bits from the CSPRNG) salt the personal fields' digest,
     -- so the digest of an erased event cannot be matched against guessed names or emails.
     NEW.hash_version := 2;
     NEW.pii_salt := uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid());
     NEW.erased_at := NULL;
     NEW.content_digest := audit_event_content_digest(NEW);`;

/** What an erased field holds (1766000000000's REDACT, restated: a migration never imports another). */
const REDACT = `actor_id = CASE WHEN actor_id IS NULL THEN NULL ELSE '[erased]' END,
       target_id = CASE WHEN target_id IS NULL THEN NULL ELSE '[erased]' END,
       source_ip = CASE WHEN source_ip IS NULL THEN NULL ELSE '[erased]' END,
       before = CASE WHEN before IS NULL THEN NULL ELSE '{"erased": true}'::jsonb END,
       after = CASE WHEN after IS NULL THEN NULL ELSE '{"erased": true}'::jsonb END,
       pii_salt = NULL,
       erased_at = clock_timestamp()`;

const UP: string[] = [
  `ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey`,
  `ALTER TABLE audit_events
     ALTER COLUMN seq DROP NOT NULL,
     ALTER COLUMN prev_hash DROP NOT NULL,
     ALTER COLUMN hash DROP NOT NULL,
     ADD COLUMN insert_no bigint`,
  // An event is sealed (all three links) or not (none, and its insertion number is known).
  `ALTER TABLE audit_events ADD CONSTRAINT audit_events_sealed_check CHECK (
     (seq IS NULL) = (prev_hash IS NULL) AND (seq IS NULL) = (hash IS NULL)
     AND (seq IS NOT NULL OR insert_no IS NOT NULL))`,
  `ALTER TABLE audit_events ADD CONSTRAINT audit_events_pkey PRIMARY KEY (tenant_id, id)`,
  // Gapless and unique per tenant once sealed (NULLs, the unsealed, are distinct).
  `ALTER TABLE audit_events ADD CONSTRAINT audit_events_tenant_seq_key UNIQUE (tenant_id, seq)`,
  // The sealer's work list: small (events live unsealed for milliseconds), in sealing order.
  `CREATE INDEX audit_events_unsealed_idx ON audit_events (tenant_id, insert_no) WHERE seq IS NULL`,
  // CACHE 1 (the default) on purpose: values are then handed out in real-time order across
  // sessions, which the sealing order relies on (docs/security.md §9). A cache would break it.
  `CREATE SEQUENCE audit_events_insert_no_seq CACHE 1`,
  `GRANT USAGE ON SEQUENCE audit_events_insert_no_seq TO gatehouse_app`,

  `CREATE OR REPLACE FUNCTION audit_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     last_seq bigint;
     last_hash text;
   BEGIN
     ${V2_CONTENT}
     -- The tenant's chain key, SHARED, to the end of the writer's transaction: writers never wait
     -- on each other, and audit_seal (EXCLUSIVE) runs only when no writer of the tenant is open.
     -- Taken before nextval, so an event numbered after a seal began is never sealed by it.
     PERFORM pg_advisory_xact_lock_shared(${LOCK});
     NEW.insert_no := nextval('public.audit_events_insert_no_seq');
     IF current_setting('gatehouse.audit_import', true) = 'on' AND NEW.seq IS NOT NULL THEN
       -- Tenant import (1765900000000): the sealer's exclusive lock (this transaction's own shared
       -- hold does not conflict with it), then the unsealed check under it.
       PERFORM pg_advisory_xact_lock(${LOCK});
     END IF;
     IF current_setting('gatehouse.audit_import', true) = 'on' AND NEW.seq IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM public.audit_events u WHERE u.tenant_id = NEW.tenant_id AND u.seq IS NULL) THEN
       -- Chained at once, as before issue 13; the restore trigger then puts the event's own
       -- columns back and rehashes. Never ahead of an unsealed event it can see: then it waits
       -- for the sealer like any other.
       SELECT seq, hash INTO last_seq, last_hash FROM public.audit_events
        WHERE tenant_id = NEW.tenant_id AND seq IS NOT NULL ORDER BY seq DESC LIMIT 1;
       NEW.seq := COALESCE(last_seq, 0) + 1;
       NEW.prev_hash := COALESCE(last_hash, ${ZERO});
       NEW.hash := audit_event_hash(NEW);
     ELSE
       -- Unchained: audit_seal links it shortly after the writer commits.
       NEW.seq := NULL;
       NEW.prev_hash := NULL;
       NEW.hash := NULL;
     END IF;
     RETURN NEW;
   END $$`,
  `CREATE OR REPLACE FUNCTION audit_events_import_restore() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     original jsonb;
   BEGIN
     IF current_setting('gatehouse.audit_import', true) = 'on' THEN
       original := NULLIF(current_setting('gatehouse.audit_import_row', true), '')::jsonb;
       IF original IS NULL OR original->>'id' IS DISTINCT FROM NEW.id::text THEN
         RAISE EXCEPTION 'audit import: no kept row for this event' USING ERRCODE = 'data_exception';
       END IF;
       IF NEW.seq IS NOT NULL THEN
         NEW := jsonb_populate_record(NEW, original - 'tenant_id' - 'seq' - 'prev_hash' - 'hash');
         NEW.hash := audit_event_hash(NEW);
       ELSE
         -- Archived unsealed: its own content, but this database's order, for audit_seal.
         NEW := jsonb_populate_record(NEW,
           original - 'tenant_id' - 'seq' - 'prev_hash' - 'hash' - 'insert_no');
       END IF;
       PERFORM set_config('gatehouse.audit_import_row', '', true);
     END IF;
     RETURN NEW;
   END $$`,

  `CREATE OR REPLACE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     link_seq bigint;
     link_prev text;
     link_hash text;
   BEGIN
     -- Sealing (issue 13): with gatehouse.audit_seal on (audit_seal turns it on), an unsealed event
     -- gets its links and nothing else: every other column is put back as it was, so the content
     -- cannot change whatever the UPDATE said. Only a role with UPDATE reaches this (the owner: the
     -- runtime role has no grant), and wrong links are what verification names, as for any row.
     -- Checking the owner or recomputing the hash here, per row, cost as much as sealing itself.
     IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_events'
        AND current_setting('gatehouse.audit_seal', true) = 'on' THEN
       IF OLD.seq IS NULL AND NEW.seq > 0 AND length(NEW.prev_hash) = 64 AND length(NEW.hash) = 64 THEN
         link_seq := NEW.seq;
         link_prev := NEW.prev_hash;
         link_hash := NEW.hash;
         NEW := OLD;
         NEW.seq := link_seq;
         NEW.prev_hash := link_prev;
         NEW.hash := link_hash;
         RETURN NEW;
       END IF;
     END IF;
     -- Erasure and purge (issue 12): inside the owner's SECURITY DEFINER functions that turn
     -- gatehouse.audit_rewrite on for their own duration. Whoever else sets the flag is not the
     -- owner; the owner could switch this trigger off anyway.
     IF TG_OP IN ('UPDATE', 'DELETE')
        AND current_setting('gatehouse.audit_rewrite', true) = 'on'
        AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_catalog.pg_class WHERE oid = TG_RELID) THEN
       IF TG_OP = 'DELETE' THEN
         RETURN OLD;
       END IF;
       IF TG_TABLE_NAME = 'audit_events' THEN
         -- An erasure changes personal fields only: never what the chain links or orders.
         IF (NEW.tenant_id, NEW.seq, NEW.id, NEW.occurred_at, NEW.actor_type, NEW.action, NEW.target_type,
             NEW.request_id, NEW.prev_hash, NEW.hash, NEW.hash_version, NEW.content_digest,
             NEW.insert_no)
            IS NOT DISTINCT FROM
            (OLD.tenant_id, OLD.seq, OLD.id, OLD.occurred_at, OLD.actor_type, OLD.action, OLD.target_type,
             OLD.request_id, OLD.prev_hash, OLD.hash, OLD.hash_version, OLD.content_digest,
             OLD.insert_no) THEN
           RETURN NEW;
         END IF;
       END IF;
     END IF;
     RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
   END $$`,

  `CREATE FUNCTION audit_seal(p_tenant uuid, p_max integer, p_wait boolean DEFAULT false)
     RETURNS TABLE (sealed integer, unsealed bigint, busy boolean, head_seq bigint)
     LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
     -- A blocking attempt waits this long at most: while it waits, new writers of the tenant queue
     -- behind it (PostgreSQL grants locks in order), so the wait is kept short; the caller retries.
     SET lock_timeout = '${SEAL_LOCK_TIMEOUT}' AS $$
   DECLARE
     last_seq bigint;
     last_hash text;
     e public.audit_events%ROWTYPE;
     ids uuid[] := '{}';
     seqs bigint[] := '{}';
     prevs text[] := '{}';
     hashes text[] := '{}';
   BEGIN
     -- idor check: only the transaction's own tenant (withTenant); row-level security would
     -- show no other tenant's events anyway.
     IF p_tenant IS NULL OR p_tenant IS DISTINCT FROM public.app_current_tenant() THEN
       RAISE EXCEPTION 'audit_seal: not the current tenant' USING ERRCODE = 'insufficient_privilege';
     END IF;
     IF p_max IS NULL OR p_max < 1 OR p_max > 100000 THEN
       RAISE EXCEPTION 'audit_seal: max must be 1..100000' USING ERRCODE = 'invalid_parameter_value';
     END IF;
     -- The argument below needs a fresh snapshot per statement (READ COMMITTED): a snapshot taken
     -- before the lock could miss an event whose writer committed while the seal waited.
     IF current_setting('transaction_isolation') <> 'read committed' THEN
       RAISE EXCEPTION 'audit_seal: needs READ COMMITTED' USING ERRCODE = 'invalid_transaction_state';
     END IF;
     sealed := 0;
     busy := false;
     -- The tenant's chain key, EXCLUSIVE, for this transaction: granted only once every writer
     -- holding it SHARED (each transaction that inserted an event for this tenant) has ended, and
     -- no writer can take it again until this transaction ends.
     IF p_wait THEN
       BEGIN
         PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || p_tenant::text, 0));
       EXCEPTION WHEN lock_not_available THEN
         busy := true;
       END;
     ELSIF NOT pg_try_advisory_xact_lock(hashtextextended('audit:' || p_tenant::text, 0)) THEN
       busy := true;
     END IF;
     SELECT a.seq, a.hash INTO last_seq, last_hash FROM public.audit_events a
      WHERE a.tenant_id = p_tenant AND a.seq IS NOT NULL ORDER BY a.seq DESC LIMIT 1;
     IF NOT busy THEN
       PERFORM set_config('gatehouse.audit_seal', 'on', true);
       -- This statement's snapshot is taken after the lock was granted, and locks are released
       -- only after a commit is visible: it sees every event whose writer has ended, which is
       -- every event that exists but this transaction's own. insert_no order is also the order
       -- of any later seal (docs/security.md §9). The links are computed in order here, then
       -- written by one UPDATE (a statement per event cost more than the hashing).
       FOR e IN SELECT * FROM public.audit_events a
                 WHERE a.tenant_id = p_tenant AND a.seq IS NULL
                 ORDER BY a.insert_no LIMIT p_max LOOP
         e.seq := COALESCE(last_seq, 0) + 1;
         e.prev_hash := COALESCE(last_hash, repeat('0', 64));
         e.hash := public.audit_event_hash(e);
         ids := ids || e.id;
         seqs := seqs || e.seq;
         prevs := prevs || e.prev_hash;
         hashes := hashes || e.hash;
         last_seq := e.seq;
         last_hash := e.hash;
       END LOOP;
       UPDATE public.audit_events a SET seq = u.seq, prev_hash = u.prev_hash, hash = u.hash
         FROM unnest(ids, seqs, prevs, hashes) AS u (id, seq, prev_hash, hash)
        WHERE a.tenant_id = p_tenant AND a.id = u.id;
       sealed := cardinality(ids);
       PERFORM set_config('gatehouse.audit_seal', 'off', true);
     END IF;
     SELECT count(*) INTO unsealed FROM public.audit_events a WHERE a.tenant_id = p_tenant AND a.seq IS NULL;
     head_seq := COALESCE(last_seq, 0);
     RETURN NEXT;
   END $$`,

  // Erasure (1766000000000) selected events by seq: an unsealed event has none yet, so by id.
  `CREATE OR REPLACE FUNCTION audit_erase_subject(p_tenant uuid, p_values text[]) RETURNS bigint[]
     LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
   DECLARE
     vals text[];
     seqs bigint[];
   BEGIN
     -- idor check: only the transaction's own tenant (withTenant), whatever id is passed.
     IF p_tenant IS NULL OR p_tenant IS DISTINCT FROM public.app_current_tenant() THEN
       RAISE EXCEPTION 'audit_erase_subject: not the current tenant' USING ERRCODE = 'insufficient_privilege';
     END IF;
     PERFORM set_config('gatehouse.audit_rewrite', 'on', true);
     SELECT COALESCE(array_agg(DISTINCT lower(v)), '{}') INTO vals
       FROM unnest(p_values) v WHERE v IS NOT NULL AND length(v) > 0;
     IF cardinality(vals) = 0 THEN
       PERFORM set_config('gatehouse.audit_rewrite', 'off', true);
       RETURN '{}';
     END IF;
     WITH hit AS (
       SELECT e.id FROM public.audit_events e
        WHERE e.tenant_id = p_tenant AND NOT public.audit_event_is_erased(e)
          AND (lower(e.actor_id) = ANY (vals) OR lower(e.target_id) = ANY (vals)
               OR public.audit_jsonb_mentions(e.before, vals) OR public.audit_jsonb_mentions(e.after, vals))
     ), erased AS (
       UPDATE public.audit_events SET ${REDACT}
        WHERE tenant_id = p_tenant AND id IN (SELECT id FROM hit)
       RETURNING seq
     )
     -- Sealed events by seq; an unsealed one is erased too and gets its seq when sealed.
     SELECT COALESCE(array_agg(seq ORDER BY seq) FILTER (WHERE seq IS NOT NULL), '{}') INTO seqs FROM erased;
     PERFORM set_config('gatehouse.audit_rewrite', 'off', true);
     RETURN seqs;
   END $$`,

  // Verification covers the sealed chain and reports the unsealed tail.
  `DROP FUNCTION audit_verify_chain(uuid)`,
  `CREATE FUNCTION audit_verify_chain(p_tenant uuid)
     RETURNS TABLE (checked bigint, first_broken_seq bigint, erased_unverifiable_seqs bigint[],
                    unsealed bigint, oldest_unsealed_at timestamptz)
   LANGUAGE plpgsql STABLE AS $$
   DECLARE
     e audit_events%ROWTYPE;
     expected_prev text := ${ZERO};
     expected_seq bigint := 1;
     ok boolean;
   BEGIN
     checked := 0;
     first_broken_seq := NULL;
     erased_unverifiable_seqs := '{}';
     SELECT count(*), min(a.occurred_at) INTO unsealed, oldest_unsealed_at
       FROM audit_events a WHERE a.tenant_id = p_tenant AND a.seq IS NULL;
     FOR e IN SELECT * FROM audit_events WHERE tenant_id = p_tenant AND seq IS NOT NULL ORDER BY seq LOOP
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

  // The checkpoint worker's lookup signs sealed heads only (seq IS NOT NULL: NULLs sort first DESC).
  `CREATE OR REPLACE FUNCTION audit_checkpoint_due_tenants(p_limit integer) RETURNS SETOF uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT t.id
       FROM (SELECT id FROM public.tenants
             UNION ALL SELECT '00000000-0000-0000-0000-000000000000'::uuid) t
       JOIN LATERAL (SELECT seq FROM public.audit_events
                      WHERE tenant_id = t.id AND seq IS NOT NULL ORDER BY seq DESC LIMIT 1) e ON true
       LEFT JOIN LATERAL (SELECT seq FROM public.audit_checkpoints
                           WHERE tenant_id = t.id ORDER BY seq DESC LIMIT 1) c ON true
      WHERE c.seq IS NULL OR c.seq < e.seq
      LIMIT p_limit
   $$`,
  // The periodic pass's lookup (pre-tenant, DESIGN.md §2): tenant ids and nothing else.
  `CREATE FUNCTION audit_unsealed_tenants(p_limit integer) RETURNS SETOF uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT DISTINCT a.tenant_id FROM public.audit_events a WHERE a.seq IS NULL LIMIT p_limit
   $$`,
  `GRANT gatehouse_resolver TO CURRENT_USER`,
  `GRANT CREATE ON SCHEMA public TO gatehouse_resolver`,
  `ALTER FUNCTION ${UNSEALED} OWNER TO gatehouse_resolver`,
  `REVOKE CREATE ON SCHEMA public FROM gatehouse_resolver`,
  ...[SEAL, UNSEALED].flatMap((fn) => [
    `REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC`,
    `GRANT EXECUTE ON FUNCTION ${fn} TO gatehouse_app`,
  ]),
];

/** Down needs every event sealed first (run the sealer): NOT NULL cannot hold otherwise. */
const DOWN: string[] = [
  `DROP FUNCTION IF EXISTS ${UNSEALED}`,
  `DROP FUNCTION IF EXISTS ${SEAL}`,
  `CREATE OR REPLACE FUNCTION audit_checkpoint_due_tenants(p_limit integer) RETURNS SETOF uuid
     LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
     SELECT t.id
       FROM (SELECT id FROM public.tenants
             UNION ALL SELECT '00000000-0000-0000-0000-000000000000'::uuid) t
       JOIN LATERAL (SELECT seq FROM public.audit_events
                      WHERE tenant_id = t.id ORDER BY seq DESC LIMIT 1) e ON true
       LEFT JOIN LATERAL (SELECT seq FROM public.audit_checkpoints
                           WHERE tenant_id = t.id ORDER BY seq DESC LIMIT 1) c ON true
      WHERE c.seq IS NULL OR c.seq < e.seq
      LIMIT p_limit
   $$`,
  `DROP FUNCTION IF EXISTS audit_verify_chain(uuid)`,
  `CREATE FUNCTION audit_verify_chain(p_tenant uuid)
     RETURNS TABLE (checked bigint, first_broken_seq bigint, erased_unverifiable_seqs bigint[])
   LANGUAGE plpgsql STABLE AS $$
   DECLARE
     e audit_events%ROWTYPE;
     expected_prev text := ${ZERO};
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
  `CREATE OR REPLACE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP IN ('UPDATE', 'DELETE')
        AND current_setting('gatehouse.audit_rewrite', true) = 'on'
        AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN
       IF TG_OP = 'DELETE' THEN
         RETURN OLD;
       END IF;
       IF TG_TABLE_NAME = 'audit_events' THEN
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
  `CREATE OR REPLACE FUNCTION audit_events_import_restore() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     original jsonb;
   BEGIN
     IF current_setting('gatehouse.audit_import', true) = 'on' THEN
       original := NULLIF(current_setting('gatehouse.audit_import_row', true), '')::jsonb;
       IF original IS NULL OR original->>'id' IS DISTINCT FROM NEW.id::text THEN
         RAISE EXCEPTION 'audit import: no kept row for this event' USING ERRCODE = 'data_exception';
       END IF;
       NEW := jsonb_populate_record(NEW, original - 'tenant_id' - 'seq' - 'prev_hash' - 'hash');
       NEW.hash := audit_event_hash(NEW);
       PERFORM set_config('gatehouse.audit_import_row', '', true);
     END IF;
     RETURN NEW;
   END $$`,
  `CREATE OR REPLACE FUNCTION audit_events_chain() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     last audit_events%ROWTYPE;
   BEGIN
     -- One writer per tenant chain at a time; released at commit.
     PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || NEW.tenant_id::text, 0));
     SELECT * INTO last FROM audit_events WHERE tenant_id = NEW.tenant_id ORDER BY seq DESC LIMIT 1;
     NEW.seq := COALESCE(last.seq, 0) + 1;
     NEW.prev_hash := COALESCE(last.hash, repeat('0', 64));
     ${V2_CONTENT}
     NEW.hash := audit_event_hash(NEW);
     RETURN NEW;
   END $$`,
  `DROP SEQUENCE IF EXISTS audit_events_insert_no_seq`,
  `DROP INDEX IF EXISTS audit_events_unsealed_idx`,
  `ALTER TABLE audit_events DROP CONSTRAINT audit_events_tenant_seq_key`,
  `ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey`,
  `ALTER TABLE audit_events DROP CONSTRAINT audit_events_sealed_check`,
  `ALTER TABLE audit_events DROP COLUMN insert_no,
     ALTER COLUMN seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL`,
  `ALTER TABLE audit_events ADD CONSTRAINT audit_events_pkey PRIMARY KEY (tenant_id, seq)`,
];
