import { isIP } from 'node:net';
import express from 'express';
import { z } from 'zod';
import { availableCpus } from './cpu-limit.js';

/** Names of settings that hold secrets: redacted wherever the config is shown. */
export const SECRET_KEYS = [
  'databaseUrl',
  'databaseAppUrl',
  'databaseListenUrl',
  'adminToken',
  'masterKey',
] as const;

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** A duration: seconds, or a number with a unit (`90s`, `30m`, `12h`, `365d`); in seconds, at most ~10 years. */
const UNIT_SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };
const duration = z
  .string()
  .trim()
  .regex(/^\d{1,10}[smhd]?$/, 'must be a duration such as 3600, 12h or 365d')
  .transform((v) => Number(v.replace(/[smhd]$/, '')) * (UNIT_SECONDS[v.replace(/^\d+/, '')] ?? 1))
  .pipe(
    z
      .number()
      .int()
      .min(60)
      .max(10 * 366 * 86_400),
  );

const booleanFlag = z
  .enum(['true', 'false', '1', '0'])
  .default('false')
  .transform((v) => v === 'true' || v === '1');

const postgresUrl = z
  .string()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL');

/** A DNS server as node:dns `setServers` takes it: `ip`, `ipv4:port` or `[ipv6]:port`. */
function isDnsServer(entry: string): boolean {
  if (isIP(entry)) return true;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(entry);
  if (!m) return false;
  const port = Number(m[3]);
  const hostOk = m[1] !== undefined ? isIP(m[1]) === 6 : isIP(m[2] ?? '') === 4;
  return hostOk && port >= 1 && port <= 65535;
}
const dnsServers = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  .refine(
    (list) => list.every(isDnsServer),
    'must be comma-separated IP[:port] entries, e.g. 127.0.0.1:5353,[::1]:53',
  );

/** Comma-separated CIDR ranges (`10.20.0.0/16,fd00:1::/64`). */
const cidrList = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  .refine(
    (list) => list.every((entry) => isCidr(entry)),
    'must be comma-separated CIDR ranges, e.g. 10.20.0.0/16,fd00:1::/64',
  );

function isCidr(entry: string): boolean {
  const m = /^(.+)\/(\d{1,3})$/.exec(entry);
  if (!m?.[1]) return false;
  const family = isIP(m[1]);
  const bits = Number(m[2]);
  return family !== 0 && bits <= (family === 4 ? 32 : 128);
}

/**
 * Whether Express's `trust proxy` takes this entry (an address, a CIDR range or
 * a preset: loopback, linklocal, uniquelocal). Express compiles the setting
 * with proxy-addr, whose address parser is stricter than node:net's (it
 * refuses `::0.0.0.0`), so Express itself is asked: an entry it would throw on
 * at start is a configuration error instead.
 */
function trustProxyEntryAccepted(entry: string): boolean {
  if (entry.includes('/') ? !isCidr(entry) : isIP(entry) === 0 && !TRUST_PROXY_PRESETS.has(entry))
    return false;
  try {
    express().set('trust proxy', [entry]);
    return true;
  } catch {
    return false;
  }
}
const TRUST_PROXY_PRESETS = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * GATEHOUSE_TRUST_PROXY as Express's `trust proxy` takes it: `false` (default:
 * the socket's address is the client), a hop count (`1`: one proxy in front;
 * the client is the address that proxy appended to X-Forwarded-For), a
 * comma-separated list of proxy addresses, CIDR ranges and the presets
 * `loopback`, `linklocal`, `uniquelocal`, or `true` (trust every hop: any
 * client can then choose its own address). Anything else is refused at start.
 */
const trustProxy = z
  .string()
  .trim()
  .default('false')
  .transform((value, ctx): boolean | number | string[] => {
    if (value === 'false') return false;
    if (value === 'true') return true;
    if (/^\d{1,2}$/.test(value)) return Number(value);
    const entries = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const bad = entries.filter((e) => !trustProxyEntryAccepted(e));
    if (entries.length === 0 || bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message:
          'must be false, true, a hop count (e.g. 1) or comma-separated proxy addresses, CIDR ranges ' +
          `and loopback/linklocal/uniquelocal (e.g. 10.0.0.0/8,loopback)${bad.length ? `; not understood: ${bad.join(', ')}` : ''}`,
      });
      return z.NEVER;
    }
    return entries;
  });

/** GATEHOUSE_APP_LOGO_URL: https (any origin, allowed in img-src) or a same-origin path (not `//host`, which is another origin). */
function isLogoUrl(value: string): boolean {
  if (/^\/(?![/\\])[^\s"'<>\\]*$/.test(value)) return true;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' && url.username === '' && url.password === '';
  } catch {
    return false;
  }
}

/**
 * Every setting Gatehouse reads, from environment variables. Parsed once at start
 * (src/main.ts) and passed down; nothing else reads process.env.
 */
export const configSchema = z
  .object({
    DATABASE_URL: postgresUrl.optional(),
    GATEHOUSE_DATABASE_APP_URL: postgresUrl.optional(),
    GATEHOUSE_DATABASE_LISTEN_URL: postgresUrl.optional(),
    PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    HOST: z.string().min(1).default('0.0.0.0'),
    GATEHOUSE_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
    GATEHOUSE_DATA_DIR: z.string().min(1).default('./.gatehouse'),
    GATEHOUSE_ADMIN_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
    GATEHOUSE_METRICS_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
    GATEHOUSE_MASTER_KEY: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'must be 32 bytes, base64url-encoded (43 characters)')
      .optional(),
    GATEHOUSE_EMBEDDED_PG_PORT: z.coerce.number().int().min(1).max(65535).default(5433),
    LOG_LEVEL: z.enum(logLevels).default('info'),
    GATEHOUSE_ACCESS_TOKEN_TTL: seconds(300),
    GATEHOUSE_ID_TOKEN_TTL: seconds(300),
    GATEHOUSE_REFRESH_TOKEN_TTL: seconds(30 * 24 * 3600),
    GATEHOUSE_SESSION_TTL: seconds(12 * 3600),
    GATEHOUSE_AUTHORIZATION_CODE_TTL: seconds(60),
    GATEHOUSE_LOGIN_TTL: seconds(15 * 60),
    GATEHOUSE_SIGNING_KEY_ROTATION_INTERVAL: seconds(30 * 24 * 3600),
    GATEHOUSE_SIGNING_KEY_CACHE_TTL: seconds(60),
    GATEHOUSE_ADMIN_CLIENT_ID: z.uuid().optional(),
    GATEHOUSE_BODY_LIMIT: z
      .string()
      .regex(/^\d+(b|kb|mb)$/i, 'must look like 100kb or 1mb')
      .default('1mb'),
    GATEHOUSE_SHUTDOWN_TIMEOUT: z.coerce.number().int().positive().max(9).default(8),
    /** Worker processes on one port (src/cluster.ts); 1: a single process, no fork (issue 13). */
    GATEHOUSE_WORKERS: z.coerce.number().int().min(1).max(256).default(availableCpus),
    GATEHOUSE_TRUST_PROXY: trustProxy,
    GATEHOUSE_ADMIN_AUTH_FAILURE_LIMIT: z.coerce.number().int().positive().default(20),
    GATEHOUSE_DNS_SERVERS: dnsServers.optional(),
    GATEHOUSE_DNS_TIMEOUT_MS: z.coerce.number().int().positive().max(60_000).default(5000),
    GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS: booleanFlag,
    GATEHOUSE_METADATA_FETCH_TIMEOUT_MS: z.coerce.number().int().positive().max(60_000).default(5000),
    GATEHOUSE_OUTBOUND_CA_FILE: z.string().min(1).optional(),
    GATEHOUSE_SSO_CLOCK_SKEW: z.coerce.number().int().min(0).max(600).default(60),
    GATEHOUSE_SAML_MAX_ASSERTION_AGE: seconds(600),
    GATEHOUSE_SAML_SP_SIGNING_KEY_FILE: z.string().min(1).optional(),
    GATEHOUSE_XML_MAX_DEPTH: z.coerce.number().int().min(8).max(512).default(64),
    GATEHOUSE_XML_MAX_ELEMENTS: z.coerce.number().int().min(16).max(1_000_000).default(20_000),
    GATEHOUSE_XML_MAX_ATTRIBUTES: z.coerce.number().int().min(16).max(1_000_000).default(40_000),
    GATEHOUSE_XML_MAX_TEXT: z.coerce
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(4 * 1024 * 1024),
    GATEHOUSE_SAML_SP_SIGNING_CERT_FILE: z.string().min(1).optional(),
    GATEHOUSE_SCIM_RATE_LIMIT: z.coerce.number().int().positive().default(3000),
    GATEHOUSE_SCIM_RATE_WINDOW: seconds(60),
    GATEHOUSE_SCIM_MAX_PAGE_SIZE: z.coerce.number().int().min(1).max(1000).default(200),
    /** Issue 12: a SCIM DELETE also erases the person's personal data (off: it deprovisions only). */
    GATEHOUSE_SCIM_DELETE_ERASES: z.enum(['true', 'false']).default('false'),
    GATEHOUSE_SCIM_TOKEN_CACHE_TTL: seconds(300),
    GATEHOUSE_SCIM_AUTH_FAILURE_LIMIT: z.coerce.number().int().positive().default(20),
    /** Days a SCIM request stays in the provisioning log (src/scim/scim-request-log.ts); 0: not logged. */
    GATEHOUSE_SCIM_REQUEST_LOG_DAYS: z.coerce.number().int().min(0).max(3650).default(14),
    /** RFC 7644 §3.7.4: the largest /Bulk request, in operations and in bytes (src/scim/scim-bulk.ts). */
    GATEHOUSE_SCIM_BULK_MAX_OPERATIONS: z.coerce.number().int().min(1).max(10_000).default(1000),
    GATEHOUSE_SCIM_BULK_MAX_PAYLOAD: z.coerce
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
    GATEHOUSE_BACKCHANNEL_LOGOUT_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(10),
    GATEHOUSE_BACKCHANNEL_LOGOUT_TIMEOUT: z.coerce.number().int().positive().max(60).default(5),
    GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT: z.coerce.number().int().positive().default(20),
    GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT: z.coerce.number().int().positive().default(60),
    GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT: z.coerce.number().int().positive().default(60),
    GATEHOUSE_RATE_LIMIT_STORE: z.enum(['postgres', 'memory']).default('postgres'),
    GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS: cidrList.optional(),
    GATEHOUSE_CLEANUP_INTERVAL: seconds(600),
    /** Issue 16: how often a connection's IdP metadata URL is re-fetched, seconds (src/connections/metadata-refresh*.ts). */
    GATEHOUSE_METADATA_REFRESH_INTERVAL: z.coerce.number().int().min(60).max(2_000_000).default(86_400),
    /** How long an IdP certificate the metadata no longer lists keeps verifying, seconds. */
    GATEHOUSE_CERT_OVERLAP: z.coerce
      .number()
      .int()
      .min(0)
      .max(365 * 86_400)
      .default(7 * 86_400),
    /** Issue 16: rotate a connection's SP encryption key older than this (`365d`); unset: never (default). */
    GATEHOUSE_SP_KEY_ROLLOVER: duration.optional(),
    /** How long a rotated key is published before it is used, and the replaced one kept after (default 7 d). */
    GATEHOUSE_SP_KEY_ROLLOVER_ACTIVATE_AFTER: duration.default(7 * 86_400),
    GATEHOUSE_CLEANUP_GRACE: seconds(3600),
    /** Issue 15: how long every login's trace is kept, seconds (default 7 days; at most a year). */
    GATEHOUSE_LOGIN_TRACE_RETENTION: z.coerce
      .number()
      .int()
      .min(60)
      .max(365 * 86_400)
      .default(7 * 86_400),
    /** How often each node signs the head of every tenant's audit chain that grew (issue 12). */
    // At most ~23 days: a longer timer would overflow setInterval's 32-bit delay.
    GATEHOUSE_AUDIT_CHECKPOINT_INTERVAL: z.coerce.number().int().positive().max(2_000_000).default(3600),
    /** How long a produced tenant export stays downloadable, seconds (issue 12; default 7 days). */
    GATEHOUSE_EXPORT_TTL: seconds(7 * 86_400),
    /** Issue 12: a deleted tenant's rows are purged this long after deletion, seconds (default 30 days). */
    GATEHOUSE_TENANT_RETENTION: z.coerce
      .number()
      .int()
      .min(0)
      .max(10 * 365 * 86_400)
      .default(30 * 86_400),
    /** What the purge does with the tenant's audit trail: `delete` it, or keep it `pseudonymise`d. */
    GATEHOUSE_TENANT_PURGE_AUDIT: z.enum(['delete', 'pseudonymise']).default('delete'),
    /** The name every browser page shows in its header (issue 15); plain text, escaped where shown. */
    GATEHOUSE_APP_NAME: z
      .string()
      .max(80)
      .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters')
      .default('Gatehouse'),
    /** A logo beside the name: an https URL (the pages' CSP then allows images from its origin) or a path here. */
    GATEHOUSE_APP_LOGO_URL: z
      .string()
      .max(2048)
      .refine(isLogoUrl, 'must be an https URL or a path starting with / on this origin')
      .optional(),
    /** Delivered or given-up rows of both outboxes (logout, webhook) are kept this long. */
    GATEHOUSE_OUTBOX_RETENTION: z.coerce.number().int().positive().optional(),
    /** The former name (logout outbox only); still read when GATEHOUSE_OUTBOX_RETENTION is unset. */
    GATEHOUSE_LOGOUT_OUTBOX_RETENTION: z.coerce.number().int().positive().optional(),
    GATEHOUSE_WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(15),
    GATEHOUSE_WEBHOOK_TIMEOUT: z.coerce.number().int().positive().max(60).default(10),
    /** How long a portal setup link stays valid, seconds (issue 15; at most a year). */
    GATEHOUSE_SETUP_LINK_TTL: z.coerce
      .number()
      .int()
      .min(300)
      .max(31_536_000)
      .default(7 * 24 * 3600),
    /**
     * Where this node reaches its own OpenID Provider for the portal's server-side calls (discovery, token,
     * JWKS) when the public base URL is not reachable from the node itself, e.g. http://127.0.0.1:8080.
     */
    GATEHOUSE_PORTAL_OP_URL: z.url().optional(),
  })
  .transform((env) => {
    const port = env.PORT;
    return {
      databaseUrl: env.DATABASE_URL,
      databaseAppUrl: env.GATEHOUSE_DATABASE_APP_URL,
      /** A direct (not transaction-pooled) URL for the LISTEN connection, when the app URL goes through PgBouncer. */
      databaseListenUrl: env.GATEHOUSE_DATABASE_LISTEN_URL,
      port,
      host: env.HOST,
      baseUrl: (env.GATEHOUSE_BASE_URL ?? `http://localhost:${port}`).replace(/\/+$/, ''),
      dataDir: env.GATEHOUSE_DATA_DIR,
      adminToken: env.GATEHOUSE_ADMIN_TOKEN,
      masterKey: env.GATEHOUSE_MASTER_KEY,
      embeddedPgPort: env.GATEHOUSE_EMBEDDED_PG_PORT,
      logLevel: env.LOG_LEVEL,
      tokens: {
        accessTokenTtl: env.GATEHOUSE_ACCESS_TOKEN_TTL,
        idTokenTtl: env.GATEHOUSE_ID_TOKEN_TTL,
        refreshTokenTtl: env.GATEHOUSE_REFRESH_TOKEN_TTL,
        sessionTtl: env.GATEHOUSE_SESSION_TTL,
        authorizationCodeTtl: env.GATEHOUSE_AUTHORIZATION_CODE_TTL,
        /** How long a person has, from /oauth/authorize, to finish at their IdP. */
        loginTtl: env.GATEHOUSE_LOGIN_TTL,
        /** Scheduled rotation: the active key is replaced by the (already published) next key. */
        signingKeyRotationInterval: env.GATEHOUSE_SIGNING_KEY_ROTATION_INTERVAL,
        /** How long a node keeps the key set before re-reading it (rotation pick-up delay). */
        signingKeyCacheTtl: env.GATEHOUSE_SIGNING_KEY_CACHE_TTL,
        /** The registered app whose access tokens tenant admins use on /admin/v1 (unset: none). */
        adminClientId: env.GATEHOUSE_ADMIN_CLIENT_ID,
      },
      bodyLimit: env.GATEHOUSE_BODY_LIMIT,
      shutdownTimeoutSeconds: env.GATEHOUSE_SHUTDOWN_TIMEOUT,
      /** How many node:cluster workers serve the port; 1 runs today's single process (src/cluster.ts). */
      workers: env.GATEHOUSE_WORKERS,
      trustProxy: env.GATEHOUSE_TRUST_PROXY,
      /** Failed admin authentications per source address per minute before 429. */
      adminAuthFailureLimit: env.GATEHOUSE_ADMIN_AUTH_FAILURE_LIMIT,
      /** Resolvers for domain verification (`ip` or `ip:port`, `[v6]:port`); empty = the system's. */
      dnsServers: env.GATEHOUSE_DNS_SERVERS ?? [],
      dnsTimeoutMs: env.GATEHOUSE_DNS_TIMEOUT_MS,
      /** Fetching IdP metadata URLs and OIDC discovery documents (src/outbound/). */
      outboundFetch: {
        /** Development only: allow loopback/private/link-local targets and http://. */
        allowPrivate: env.GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS,
        timeoutMs: env.GATEHOUSE_METADATA_FETCH_TIMEOUT_MS,
        /** PEM file of extra CAs trusted for those fetches (an IdP behind a private PKI). */
        caFile: env.GATEHOUSE_OUTBOUND_CA_FILE,
        /** CIDR ranges reachable besides public addresses (an on-premises IdP), without the dev setting. */
        allowedNetworks: env.GATEHOUSE_OUTBOUND_ALLOWED_NETWORKS ?? [],
      },
      /** Sign-in at tenants' IdPs (src/sso). */
      sso: {
        /** Allowed clock difference with an IdP (SAML NotBefore/NotOnOrAfter, ID token exp/iat), seconds. */
        clockSkewSeconds: env.GATEHOUSE_SSO_CLOCK_SKEW,
        /** A SAML assertion older than this (from its IssueInstant) is refused, seconds. */
        samlMaxAssertionAgeSeconds: env.GATEHOUSE_SAML_MAX_ASSERTION_AGE,
        /** PEM files of the SP key pair that signs AuthnRequests of connections asking for it (both or neither). */
        spSigningKeyFile: env.GATEHOUSE_SAML_SP_SIGNING_KEY_FILE,
        spSigningCertFile: env.GATEHOUSE_SAML_SP_SIGNING_CERT_FILE,
        /** Bounds checked by a streaming pre-scan before any XML (SAML responses, IdP metadata) reaches a DOM. */
        xmlLimits: {
          maxDepth: env.GATEHOUSE_XML_MAX_DEPTH,
          maxElements: env.GATEHOUSE_XML_MAX_ELEMENTS,
          maxAttributes: env.GATEHOUSE_XML_MAX_ATTRIBUTES,
          maxTextChars: env.GATEHOUSE_XML_MAX_TEXT,
        },
      },
      /** SCIM 2.0 provisioning (src/scim). */
      scim: {
        /** Requests per tenant per window, per node, before 429 + Retry-After. */
        rateLimit: env.GATEHOUSE_SCIM_RATE_LIMIT,
        rateWindowSeconds: env.GATEHOUSE_SCIM_RATE_WINDOW,
        /** Largest `count` honoured on a list (RFC 7644 §3.4.2.4: larger ones are capped). */
        maxPageSize: env.GATEHOUSE_SCIM_MAX_PAGE_SIZE,
        /**
         * A SCIM DELETE erases the person (as POST …/users/{id}/erasure does) instead of keeping a
         * tombstone with their identifiers: their next sign-in, with JIT on, then creates a new account.
         */
        deleteErases: env.GATEHOUSE_SCIM_DELETE_ERASES === 'true',
        /** How long a verified SCIM token stays cached (revocation drops it at once), seconds. */
        tokenCacheTtlSeconds: env.GATEHOUSE_SCIM_TOKEN_CACHE_TTL,
        /** Failed authentications per source address and tenant per minute before 429. */
        authFailureLimit: env.GATEHOUSE_SCIM_AUTH_FAILURE_LIMIT,
        /** Days each request is kept in the tenant's provisioning log; 0 turns the log off. */
        requestLogDays: env.GATEHOUSE_SCIM_REQUEST_LOG_DAYS,
        /** /Bulk limits (RFC 7644 §3.7.4), advertised in ServiceProviderConfig: past them 413. */
        bulkMaxOperations: env.GATEHOUSE_SCIM_BULK_MAX_OPERATIONS,
        bulkMaxPayloadBytes: env.GATEHOUSE_SCIM_BULK_MAX_PAYLOAD,
      },
      /** OIDC Back-Channel Logout delivery (src/sessions/backchannel-logout.ts). */
      backchannelLogout: {
        maxAttempts: env.GATEHOUSE_BACKCHANNEL_LOGOUT_MAX_ATTEMPTS,
        timeoutSeconds: env.GATEHOUSE_BACKCHANNEL_LOGOUT_TIMEOUT,
      },
      /** Limits on guessing (src/tokens/rate-limits.ts), shared by every node; past them 429 + Retry-After. */
      rateLimits: {
        /** Where the counters live: `postgres` (shared by all nodes, src/http/rate-limit-store.ts) or `memory` (per node). */
        store: env.GATEHOUSE_RATE_LIMIT_STORE,
        /** Failed client authentications at /oauth/token, introspect, revoke per source address per minute. */
        clientAuthFailuresPerAddress: env.GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT,
        /** The same, per client_id per minute (from any address). */
        clientAuthFailuresPerClient: env.GATEHOUSE_CLIENT_AUTH_FAILURE_LIMIT_PER_CLIENT,
        /** Home realm discovery requests (/login) per source address per minute. */
        loginDiscoveryPerAddress: env.GATEHOUSE_LOGIN_DISCOVERY_RATE_LIMIT,
      },
      /**
       * Private networks (CIDR) that sign-in-time calls to an IdP may reach without the development
       * setting, e.g. an on-premises IdP at 10.20.0.0/16; https is still required.
       */
      /** The periodic cleanup of expired sign-in state (src/sessions/cleanup.ts), seconds. */
      cleanup: {
        intervalSeconds: env.GATEHOUSE_CLEANUP_INTERVAL,
        /** Rows are deleted this long after they expired. */
        graceSeconds: env.GATEHOUSE_CLEANUP_GRACE,
        /** Delivered or given-up rows of both outboxes (back-channel logouts, webhooks) are kept this long. */
        outboxRetentionSeconds:
          env.GATEHOUSE_OUTBOX_RETENTION ?? env.GATEHOUSE_LOGOUT_OUTBOX_RETENTION ?? 7 * 86_400,
      },
      /** Login traces (src/sso/login-trace-store.ts): kept this long, seconds, then removed by the cleanup. */
      loginTraces: { retentionSeconds: env.GATEHOUSE_LOGIN_TRACE_RETENTION },
      /** IdP metadata refresh and certificate expiry notices (issue 16), seconds. */
      metadataRefresh: {
        intervalSeconds: env.GATEHOUSE_METADATA_REFRESH_INTERVAL,
        certOverlapSeconds: env.GATEHOUSE_CERT_OVERLAP,
        /** Automatic SP encryption-key rollover in the same sweep (null: off), seconds. */
        spKeyRollover:
          env.GATEHOUSE_SP_KEY_ROLLOVER === undefined
            ? null
            : {
                rotateAfterSeconds: env.GATEHOUSE_SP_KEY_ROLLOVER,
                activateAfterSeconds: env.GATEHOUSE_SP_KEY_ROLLOVER_ACTIVATE_AFTER,
              },
      },
      /** Signed audit checkpoints (src/audit/checkpoint-worker.ts): interval of the periodic pass, seconds. */
      auditCheckpoints: { intervalSeconds: env.GATEHOUSE_AUDIT_CHECKPOINT_INTERVAL },
      /** Tenant exports (src/offboarding): how long an archive stays downloadable. */
      exports: { ttlSeconds: env.GATEHOUSE_EXPORT_TTL },
      /** Deleted tenants (src/offboarding/): retention before the purge, and the audit trail's fate. */
      tenantDeletion: {
        retentionSeconds: env.GATEHOUSE_TENANT_RETENTION,
        purgeAudit: env.GATEHOUSE_TENANT_PURGE_AUDIT,
      },
      /** GET /metrics (src/http/health.router.ts): when a token is set, only `Authorization: Bearer <token>` scrapes. */
      metrics: {
        token: env.GATEHOUSE_METRICS_TOKEN,
      },
      /** What every browser page shows in its header (src/http/pages.ts). */
      pages: { appName: env.GATEHOUSE_APP_NAME, logoUrl: env.GATEHOUSE_APP_LOGO_URL },
      /** Signed directory events to apps' webhook URLs (src/webhooks/webhook-delivery.ts). */
      webhooks: {
        /** Attempts (exponential backoff from 2 s, capped at 1 h) before an event is given up. */
        maxAttempts: env.GATEHOUSE_WEBHOOK_MAX_ATTEMPTS,
        timeoutSeconds: env.GATEHOUSE_WEBHOOK_TIMEOUT,
      },
      /** The Admin Portal (src/portal). */
      portal: {
        setupLinkTtlSeconds: env.GATEHOUSE_SETUP_LINK_TTL,
        /** The portal's own OP, for tenant admins' sign-in (src/portal/admin-signin-client.ts); default: baseUrl. */
        opUrl: env.GATEHOUSE_PORTAL_OP_URL?.replace(/\/+$/, ''),
      },
    };
  });

export type Config = z.infer<typeof configSchema>;

/** A configuration that could not be parsed; `problems` lists every one of them. */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export function parseConfig(env: Record<string, string | undefined>): Config {
  // An empty variable means "not set", as shells and compose files write it.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = configSchema.safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return result.data;
}

/** The config as it may be logged: secrets replaced, URLs stripped of passwords. */
export function redactConfig(config: Config): Record<string, unknown> {
  const shown: Record<string, unknown> = { ...config };
  for (const key of SECRET_KEYS) {
    const value = config[key];
    if (value === undefined) continue;
    shown[key] = key.startsWith('database') ? redactUrl(value) : '[redacted]';
  }
  if (config.metrics.token !== undefined) shown.metrics = { ...config.metrics, token: '[redacted]' };
  return shown;
}

function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = 'redacted';
    return url.toString();
  } catch {
    return '[redacted]';
  }
}

/**
 * GATEHOUSE_* names that are read, but not by the server: the test suite's and
 * benchmarks' knobs, and the development IdP's (issue 14). Not typos.
 */
const TOOLING_PREFIXES = ['GATEHOUSE_FUZZ_', 'GATEHOUSE_BENCH_', 'GATEHOUSE_TEST_', 'GATEHOUSE_DEV_IDP_'];

/** Every GATEHOUSE_* (and bare) variable the server reads. */
export const KNOWN_VARIABLES: readonly string[] = Object.keys(configSchema.in.shape);

/** Levenshtein distance, for "did you mean" (names are short: the O(n·m) table is tiny). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, substitution));
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

/**
 * Warnings about the environment that do not stop the start: a GATEHOUSE_*
 * variable nothing reads is most likely a typo (`GATEHOUSE_BASEURL`), which
 * would otherwise silently leave the setting at its default. Each names the
 * closest known variable when one is near.
 */
export function configWarnings(env: Record<string, string | undefined>): string[] {
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('GATEHOUSE_') || KNOWN_VARIABLES.includes(name)) continue;
    if (TOOLING_PREFIXES.some((prefix) => name.startsWith(prefix))) continue;
    let closest: string | undefined;
    let best = Infinity;
    for (const known of KNOWN_VARIABLES) {
      const d = editDistance(name, known);
      if (d < best) [closest, best] = [known, d];
    }
    // Near enough to be the same name mistyped: a few edits, relative to the name's length.
    const near = closest !== undefined && best <= Math.max(2, Math.floor(closest.length / 4));
    warnings.push(
      near
        ? `${name} is not a Gatehouse setting and is ignored; did you mean ${closest}?`
        : `${name} is not a Gatehouse setting and is ignored`,
    );
  }
  return warnings;
}
