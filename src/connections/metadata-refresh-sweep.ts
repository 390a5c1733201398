import type { Logger } from 'pino';
import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditActor, type AuditContext } from '../audit/audit.service.js';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { ConflictError, NotFoundError } from '../errors.js';
import { checkFetchUrl } from '../outbound/fetch-document.js';
import { OutboundFailure, pinnedRequest, type OutboundPolicy } from '../outbound/pinned-request.js';
import { startPeriodicJob, type PeriodicJob } from '../periodic-job.js';
import { enqueueWebhookEvent } from '../webhooks/webhook-events.js';
import { checkCertificateExpiry } from './certificate-expiry-sweep.js';
import { Connection, type SamlCertificate } from './connection.entity.js';
import {
  cacheValidators,
  certificatesChanged,
  checkSameEntity,
  mergeCertificates,
  MetadataRefreshError,
  type CertificateChanges,
} from './metadata-refresh.js';
import { MetadataError, parseIdpMetadata, SAML_METADATA_MAX_BYTES } from './saml-metadata.js';
import { rollOverSpKeys, type SpKeyOptions, type SpKeyRolloverPolicy } from './sp-keys.service.js';
import type { XmlLimits } from './xml-limits.js';

/**
 * How is a connection's IdP metadata kept current? (issue 16.) Every node
 * runs the sweep; a connection is claimed by moving its metadata_refreshed_at
 * under `FOR UPDATE SKIP LOCKED`, so two nodes never fetch the same one in the
 * same round. The fetch happens outside any transaction, through the outbound
 * guard, with `If-None-Match` / `If-Modified-Since` (RFC 9110 §13.1); the
 * answer is applied in a second transaction that locks the row again. What a
 * refresh does to the certificates is decided by metadata-refresh.ts; a fetch
 * failure, a document that does not parse and an entity id that changed are
 * recorded in metadata_refresh_error and change nothing else. The same
 * sweep steps the automatic SP encryption-key rollover when it is on
 * (GATEHOUSE_SP_KEY_ROLLOVER; sp-keys.service.ts `rollOverSpKeys`).
 */
export interface MetadataRefreshOptions {
  db: Database;
  fetch: OutboundPolicy;
  xmlLimits?: XmlLimits | undefined;
  /** A removed certificate keeps verifying this long (GATEHOUSE_CERT_OVERLAP). */
  overlapMs: number;
  /** GATEHOUSE_SP_KEY_ROLLOVER: absent or null, no automatic rollover. */
  spKeyRollover?: (SpKeyRolloverPolicy & { keys: SpKeyOptions }) | null | undefined;
}

export type RefreshOutcome =
  | { outcome: 'skipped' }
  | { outcome: 'not_modified' | 'unchanged' | 'updated'; changes: ChangeSummary }
  | { outcome: 'failed'; error: { code: string; message: string } };

export interface ChangeSummary {
  added: string[];
  removed: string[];
  dropped: string[];
  restored: string[];
}

const SYSTEM: AuditActor = { type: 'system', id: 'metadata-refresh' };
const MAX_ERROR = 1000;

interface Fetched {
  status: 200 | 304;
  body: string;
  etag: string | null;
  lastModified: string | null;
}

/** A conditional GET of the metadata URL under the outbound rules; 200 and 304 are answers, the rest failures. */
export async function fetchMetadata(
  url: string,
  validators: { etag: string | null; lastModified: string | null },
  policy: OutboundPolicy,
): Promise<Fetched> {
  const headers: Record<string, string> = {
    accept: 'application/samlmetadata+xml, application/xml, text/xml',
    'user-agent': 'Gatehouse',
  };
  if (validators.etag) headers['if-none-match'] = validators.etag;
  if (validators.lastModified) headers['if-modified-since'] = validators.lastModified;
  try {
    const target = checkFetchUrl(url, 'metadata_url', policy);
    const res = await pinnedRequest(
      target,
      {
        method: 'GET',
        headers,
        maxBytes: SAML_METADATA_MAX_BYTES,
        checkHead: (status) =>
          status === 200 || status === 304
            ? undefined
            : new MetadataRefreshError('metadata_fetch_failed', `the metadata URL answered HTTP ${status}`),
      },
      policy,
    );
    return {
      status: res.status === 304 ? 304 : 200,
      body: res.status === 304 ? '' : res.body.toString('utf8'),
      ...cacheValidators(res.headers),
    };
  } catch (error) {
    if (error instanceof MetadataRefreshError) throw error;
    const message =
      error instanceof OutboundFailure || error instanceof Error ? error.message : 'the request failed';
    throw new MetadataRefreshError('metadata_fetch_failed', `could not fetch the metadata: ${message}`, {
      cause: error,
    });
  }
}

const fingerprints = (certs: SamlCertificate[]) => certs.map((c) => c.fingerprintSha256);

function summary(changes: CertificateChanges): ChangeSummary {
  return {
    added: fingerprints(changes.added),
    removed: fingerprints(changes.removed),
    dropped: fingerprints(changes.dropped),
    restored: fingerprints(changes.restored),
  };
}

const certificateData = (connectionId: string, cert: SamlCertificate) => ({
  object: 'connection_certificate',
  connection_id: connectionId,
  fingerprint_sha256: cert.fingerprintSha256,
  not_before: cert.notBefore,
  not_after: cert.notAfter,
});

/** Audit (and, for a new certificate, a webhook) for each change, in the change's transaction. */
export async function announce(
  em: EntityManager,
  connection: Connection,
  changes: CertificateChanges,
  ctx: AuditContext,
  now: Date,
): Promise<void> {
  const target = { type: 'connection', id: connection.id };
  const events: [string, SamlCertificate[]][] = [
    ['connection.certificate_added', changes.added],
    ['connection.certificate_removed', changes.removed],
    ['connection.certificate_dropped', changes.dropped],
    ['connection.certificate_restored', changes.restored],
  ];
  for (const [action, certs] of events) {
    for (const cert of certs) {
      await recordAudit(em, connection.tenantId, {
        ...ctx,
        action,
        target,
        after: { fingerprint_sha256: cert.fingerprintSha256, not_after: cert.notAfter },
      });
    }
  }
  // Apps hear of a new IdP certificate (an expected rotation, or a surprise worth a look).
  for (const cert of changes.added) {
    await enqueueWebhookEvent(
      em,
      connection.tenantId,
      'connection.certificate_added',
      certificateData(connection.id, cert),
      now,
    );
  }
}

/** Claims the connection for this node: null when it has no URL, is not due, or another node holds it. */
async function claim(
  db: Database,
  tenantId: string,
  connectionId: string,
  now: Date,
  dueBefore: Date | null,
): Promise<Pick<Connection, 'metadataUrl' | 'metadataEtag' | 'metadataLastModified'> | null> {
  return db.withTenant(tenantId, async (em) => {
    // idor check: RLS scopes the read to the tenant of the transaction
    const rows = await em.query<
      { metadata_url: string; metadata_etag: string | null; metadata_last_modified: string | null }[]
    >(
      `SELECT metadata_url, metadata_etag, metadata_last_modified FROM connections
        WHERE id = $1 AND metadata_url IS NOT NULL
          AND ($2::timestamptz IS NULL OR metadata_refreshed_at IS NULL OR metadata_refreshed_at < $2)
        FOR UPDATE SKIP LOCKED`,
      [connectionId, dueBefore],
    );
    const row = rows[0];
    if (!row) return null;
    await em.query(`UPDATE connections SET metadata_refreshed_at = $2 WHERE id = $1`, [connectionId, now]);
    return {
      metadataUrl: row.metadata_url,
      metadataEtag: row.metadata_etag,
      metadataLastModified: row.metadata_last_modified,
    };
  });
}

/**
 * One refresh of one connection. `dueBefore` (the sweep) skips a connection
 * refreshed since; null (the admin's "refresh now") refreshes it anyway.
 */
export async function refreshConnectionMetadata(
  options: MetadataRefreshOptions,
  tenantId: string,
  connectionId: string,
  input: { now: Date; dueBefore: Date | null; ctx?: AuditContext },
): Promise<RefreshOutcome> {
  const { now } = input;
  const ctx: AuditContext = input.ctx ?? { actor: SYSTEM };
  const claimed = await claim(options.db, tenantId, connectionId, now, input.dueBefore);
  if (!claimed?.metadataUrl) return { outcome: 'skipped' };
  const url = claimed.metadataUrl;

  let fetched: Fetched | MetadataRefreshError;
  try {
    fetched = await fetchMetadata(
      url,
      { etag: claimed.metadataEtag, lastModified: claimed.metadataLastModified },
      options.fetch,
    );
  } catch (error) {
    fetched =
      error instanceof MetadataRefreshError
        ? error
        : new MetadataRefreshError('metadata_fetch_failed', 'could not fetch the metadata', { cause: error });
  }

  return options.db.withTenant(tenantId, async (em) => {
    const connection = await em.findOne(Connection, {
      where: { id: connectionId },
      lock: { mode: 'pessimistic_write' },
    });
    // Deleted, or re-pointed by an admin while we fetched: their change wins.
    if (!connection || connection.metadataUrl !== url) return { outcome: 'skipped' } as const;
    try {
      if (fetched instanceof MetadataRefreshError) throw fetched;
      let published: SamlCertificate[] | null = null;
      const columns: Partial<Connection> = {
        metadataEtag: fetched.etag ?? connection.metadataEtag,
        metadataLastModified: fetched.lastModified ?? connection.metadataLastModified,
        metadataRefreshError: null,
      };
      if (fetched.status === 200) {
        let metadata;
        try {
          metadata = parseIdpMetadata(fetched.body, {
            now,
            allowHttp: options.fetch.allowPrivate,
            xmlLimits: options.xmlLimits,
          });
        } catch (error) {
          // Whatever the document does to the parser, it is a refused document, not a crashed sweep.
          const message =
            error instanceof MetadataError ? error.message : 'metadata: the document could not be read';
          throw new MetadataRefreshError('metadata_invalid', message, { cause: error });
        }
        checkSameEntity(connection.samlIdpEntityId, metadata.entityId);
        published = metadata.certificates;
        if (metadata.ssoUrl !== connection.samlSsoUrl || metadata.ssoBinding !== connection.samlSsoBinding) {
          await recordAudit(em, tenantId, {
            ...ctx,
            action: 'connection.sso_url_changed',
            target: { type: 'connection', id: connectionId },
            before: { sso_url: connection.samlSsoUrl, sso_binding: connection.samlSsoBinding },
            after: { sso_url: metadata.ssoUrl, sso_binding: metadata.ssoBinding },
          });
          columns.samlSsoUrl = metadata.ssoUrl;
          columns.samlSsoBinding = metadata.ssoBinding;
          columns.updatedAt = now;
        }
        // The IdP's SingleLogoutService follows its metadata like the SSO URL (issue 16): an IdP that
        // adds, moves or drops SLO is logged out of correctly from the next refresh on.
        if (
          metadata.sloUrl !== connection.samlIdpSloUrl ||
          (metadata.sloUrl !== null && metadata.sloBinding !== connection.samlIdpSloBinding)
        ) {
          await recordAudit(em, tenantId, {
            ...ctx,
            action: 'connection.slo_url_changed',
            target: { type: 'connection', id: connectionId },
            before: { slo_url: connection.samlIdpSloUrl, slo_binding: connection.samlIdpSloBinding },
            after: { slo_url: metadata.sloUrl, slo_binding: metadata.sloBinding },
          });
          columns.samlIdpSloUrl = metadata.sloUrl;
          columns.samlIdpSloBinding = metadata.sloBinding;
          columns.updatedAt = now;
        }
      }
      const changes = mergeCertificates({
        current: connection.samlCertificates,
        published,
        now,
        overlapMs: options.overlapMs,
      });
      if (certificatesChanged(changes)) {
        columns.samlCertificates = changes.certificates;
        columns.updatedAt = now;
        await announce(em, connection, changes, ctx, now);
      }
      await em.update(Connection, { tenantId, id: connectionId }, columns);
      const changed =
        certificatesChanged(changes) ||
        columns.samlSsoUrl !== undefined ||
        columns.samlIdpSloUrl !== undefined;
      return {
        outcome: fetched.status === 304 ? 'not_modified' : changed ? 'updated' : 'unchanged',
        changes: summary(changes),
      } as const;
    } catch (error) {
      if (!(error instanceof MetadataRefreshError)) throw error;
      const message = `${error.code}: ${error.message}`.slice(0, MAX_ERROR);
      // Audited when the problem is new, not on every sweep while it lasts.
      if (connection.metadataRefreshError !== message) {
        await recordAudit(em, tenantId, {
          ...ctx,
          action: 'connection.metadata_refresh_failed',
          target: { type: 'connection', id: connectionId },
          after: { code: error.code, message },
        });
      }
      await em.update(Connection, { tenantId, id: connectionId }, { metadataRefreshError: message });
      return { outcome: 'failed', error: { code: error.code, message: error.message } } as const;
    }
  });
}

/** POST …/connections/{cid}/metadata/refresh: refresh now, whatever the schedule (409 when there is nothing to do). */
export async function refreshMetadataNow(
  options: MetadataRefreshOptions,
  tenantId: string,
  connectionId: string,
  ctx: AuditContext,
): Promise<Exclude<RefreshOutcome, { outcome: 'skipped' }>> {
  const found = await options.db.withTenant(tenantId, (em) =>
    // idor check: RLS scopes the read to the tenant of the transaction
    em.findOne(Connection, { where: { id: connectionId }, select: { id: true, metadataUrl: true } }),
  );
  if (!found) throw new NotFoundError('Connection');
  if (!found.metadataUrl)
    throw new ConflictError('the connection was not imported from a metadata URL; nothing to refresh');
  const result = await refreshConnectionMetadata(options, tenantId, connectionId, {
    now: new Date(),
    dueBefore: null,
    ctx,
  });
  if (result.outcome === 'skipped')
    throw new ConflictError(
      'a refresh of this connection is already running, or its metadata URL just changed',
    );
  return result;
}

export interface SweepCounts {
  refreshed: number;
  failed: number;
  expiryNotices: number;
  /** Automatic SP key rollover steps taken (rotate, activate, retire). */
  spKeySteps: number;
}

const PER_SWEEP = 200;

/** One sweep: due metadata refreshes, then due expiry notices (every SAML connection, URL or not). */
export async function runMetadataSweep(
  options: MetadataRefreshOptions & { intervalMs: number; logger?: Logger | undefined },
  now: Date,
): Promise<SweepCounts> {
  const counts: SweepCounts = { refreshed: 0, failed: 0, expiryNotices: 0, spKeySteps: 0 };
  const dueBefore = new Date(now.getTime() - options.intervalMs);
  const due = await options.db.queryOutsideTenant<{ tenant_id: string; connection_id: string }>(
    'SELECT tenant_id, connection_id FROM metadata_refresh_due($1, $2)',
    [dueBefore, PER_SWEEP],
  );
  for (const row of due) {
    try {
      const result = await refreshConnectionMetadata(options, row.tenant_id, row.connection_id, {
        now,
        dueBefore,
      });
      if (result.outcome === 'failed') counts.failed += 1;
      else if (result.outcome !== 'skipped') counts.refreshed += 1;
    } catch (error) {
      // One connection's surprise never stops the others.
      counts.failed += 1;
      options.logger?.error({ err: error, connectionId: row.connection_id }, 'metadata refresh failed');
    }
  }
  const expiring = await options.db.queryOutsideTenant<{ tenant_id: string; connection_id: string }>(
    'SELECT tenant_id, connection_id FROM certificate_expiry_due($1, $2)',
    [new Date(now.getTime() + 30 * 24 * 3600 * 1000), 1000],
  );
  for (const row of expiring) {
    try {
      counts.expiryNotices += await checkCertificateExpiry(options.db, row.tenant_id, row.connection_id, now);
    } catch (error) {
      options.logger?.error(
        { err: error, connectionId: row.connection_id },
        'certificate expiry check failed',
      );
    }
  }
  counts.spKeySteps = await rollOverDueSpKeys(options, now);
  return counts;
}

/** The sweep's rollover settings from the config (null: GATEHOUSE_SP_KEY_ROLLOVER unset). */
export function spKeyRolloverOptions(
  config: Pick<Config, 'metadataRefresh' | 'sso'>,
  masterKey: Buffer,
): MetadataRefreshOptions['spKeyRollover'] {
  const rollover = config.metadataRefresh.spKeyRollover;
  if (!rollover) return null;
  return {
    rotateAfterMs: rollover.rotateAfterSeconds * 1000,
    activateAfterMs: rollover.activateAfterSeconds * 1000,
    keys: { masterKey, deploymentSigningKey: Boolean(config.sso.spSigningKeyFile) },
  };
}

/** Due rollover steps of SP encryption keys (nothing when GATEHOUSE_SP_KEY_ROLLOVER is unset). */
async function rollOverDueSpKeys(
  options: MetadataRefreshOptions & { logger?: Logger | undefined },
  now: Date,
): Promise<number> {
  const policy = options.spKeyRollover;
  if (!policy) return 0;
  const due = await options.db.queryOutsideTenant<{ tenant_id: string; connection_id: string }>(
    'SELECT tenant_id, connection_id FROM sp_key_rollover_due($1, $2, $3)',
    [
      new Date(now.getTime() - policy.rotateAfterMs),
      new Date(now.getTime() - policy.activateAfterMs),
      PER_SWEEP,
    ],
  );
  let steps = 0;
  for (const row of due) {
    try {
      steps += (await rollOverSpKeys(options.db, row.tenant_id, row.connection_id, policy, policy.keys, now))
        .length;
    } catch (error) {
      // One connection's surprise never stops the others; the next sweep tries again.
      options.logger?.error({ err: error, connectionId: row.connection_id }, 'SP key rollover failed');
    }
  }
  return steps;
}

export type MetadataRefreshJob = PeriodicJob<SweepCounts>;

/**
 * Starts the periodic sweep on this node through the one loop (periodic-job.ts): at most hourly, so
 * expiry notices are timely; a sweep that throws is logged and the next tick tries again.
 */
export function startMetadataRefresh(
  options: MetadataRefreshOptions & { intervalMs: number; logger?: Logger | undefined },
): MetadataRefreshJob {
  return startPeriodicJob({
    name: 'metadata refresh sweep',
    intervalMs: Math.min(options.intervalMs, 3600 * 1000),
    pass: async () => {
      const counts = await runMetadataSweep(options, new Date());
      if (counts.refreshed + counts.failed + counts.expiryNotices + counts.spKeySteps > 0)
        options.logger?.info({ counts }, 'IdP metadata and certificates checked');
      return counts;
    },
    logger: options.logger,
  });
}
