import {
  createLocalJWKSet,
  errors,
  importPKCS8,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { recordAudit, type AuditActor } from '../../audit/audit.service.js';
import type { Config } from '../../config/config.js';
import { open } from '../../config/secret-box.js';
import { PLATFORM_TENANT_ID, type Database } from '../../db/database.js';
import type { SigningAlg } from '../../apps/app.entity.js';
import { SigningKey } from './signing-key.entity.js';
import {
  ensureSigningKeys,
  privateKeyContext,
  rotateSigningKeys,
  SIGNING_ALGS,
  type RotationResult,
} from './signing-keys.service.js';
import type { TokenSigner } from '../../sessions/token-signer.js';

export interface SigningKeyStoreOptions {
  db: Database;
  masterKey: Buffer;
  /** How long this node keeps the key set before re-reading it. */
  cacheTtlSeconds: number;
  /** Scheduled rotation: an active key older than this is replaced on the next read. */
  rotationIntervalSeconds: number;
  /** How long a retired key stays in the JWKS. */
  publishRetiredForSeconds: number;
  /** How long a retired key still verifies an id_token_hint after that (session lifetime). */
  keepRetiredForSeconds: number;
  clock?: () => Date;
}

/** Options from the config: a retired key outlives every token it signed, on every node. */
export function signingKeyStoreOptions(
  config: Config,
  db: Database,
  masterKey: Buffer,
): SigningKeyStoreOptions {
  const t = config.tokens;
  // Logout tokens (SCIM back-channel) live at most a few minutes; 300 s covers them.
  const longestToken = Math.max(t.accessTokenTtl, t.idTokenTtl, 300);
  return {
    db,
    masterKey,
    cacheTtlSeconds: t.signingKeyCacheTtl,
    rotationIntervalSeconds: t.signingKeyRotationInterval,
    // + one cache period (another node may sign with it until it re-reads) + clock skew.
    publishRetiredForSeconds: longestToken + t.signingKeyCacheTtl + 60,
    keepRetiredForSeconds: t.sessionTtl,
  };
}

interface KeySet {
  loadedAt: number;
  active: Map<SigningAlg, { kid: string; key: CryptoKey }>;
  published: JWK[];
  /** Published keys: verifies our access tokens. */
  verifyPublished: JWTVerifyGetKey;
  /** Published keys plus recently retired ones: verifies an id_token_hint. */
  verifyRecent: JWTVerifyGetKey;
}

export interface RotationContext {
  actor: AuditActor;
  requestId?: string;
  sourceIp?: string;
}

/** The public view of a key (admin API). */
export interface SigningKeyInfo {
  kid: string;
  alg: SigningAlg;
  status: SigningKey['status'];
  created_at: string;
  activated_at: string | null;
  retired_at: string | null;
  published_until: string | null;
}

const FORCED_RELOAD_INTERVAL_MS = 5_000;

/**
 * A node's view of the signing keys: a short-lived in-memory copy, re-read
 * after `cacheTtlSeconds`, so a rotation made by any node is picked up without
 * a restart. Bootstraps missing keys and runs the scheduled rotation lazily on
 * a read (no timers). Implements TokenSigner.
 */
export class SigningKeyStore implements TokenSigner {
  private cached: KeySet | null = null;
  private stale = false;
  private loading: Promise<KeySet> | null = null;
  private lastForcedReload = 0;
  private generation = 0;
  private readonly clock: () => Date;

  constructor(private readonly options: SigningKeyStoreOptions) {
    this.clock = options.clock ?? (() => new Date());
  }

  async sign(payload: JWTPayload, options: { alg: SigningAlg; typ: string }): Promise<string> {
    const set = await this.current();
    const signing = set.active.get(options.alg);
    if (!signing) throw new Error(`no active signing key for ${options.alg}`);
    return new SignJWT(payload)
      .setProtectedHeader({ alg: options.alg, typ: options.typ, kid: signing.kid })
      .sign(signing.key);
  }

  /** The JWKS document: next, active and still-published retired keys. */
  async jwks(): Promise<JSONWebKeySet> {
    return { keys: (await this.current()).published };
  }

  /** Key lookup for jose's jwtVerify over the published keys; an unknown kid forces one re-read. */
  readonly publishedKey: JWTVerifyGetKey = (header, token) =>
    this.withReload((set) => set.verifyPublished(header, token));

  /** Key lookup that also accepts recently retired keys (for id_token_hint only). */
  readonly recentKey: JWTVerifyGetKey = (header, token) =>
    this.withReload((set) => set.verifyRecent(header, token));

  /** Rotation on command (admin API): audited under the platform tenant, in the same transaction. */
  async rotate(context: RotationContext): Promise<RotationResult> {
    const result = await this.rotateInDatabase(context);
    this.invalidate();
    // This node signs with the new key from the next request on; a failed re-read is retried by it.
    await this.reload().catch(() => undefined);
    return result;
  }

  async list(): Promise<SigningKeyInfo[]> {
    const rows = await this.options.db.withPlatform((em) =>
      em.find(SigningKey, { order: { createdAt: 'DESC', kid: 'ASC' } }),
    );
    return rows.map((k) => ({
      kid: k.kid,
      alg: k.alg,
      status: k.status,
      created_at: k.createdAt.toISOString(),
      activated_at: k.activatedAt?.toISOString() ?? null,
      retired_at: k.retiredAt?.toISOString() ?? null,
      published_until: k.expiresAt?.toISOString() ?? null,
    }));
  }

  /**
   * Resolves once a key set is held. From then on `sign` never waits for the database: an expired set
   * is served while one re-read runs (current()), so a token signed inside a transaction never holds its
   * connection waiting for another one from the same pool — the wait that, with every connection held
   * that way, lasted until the pool's connect timeout and answered 503 (issue 13; docs/architecture.md).
   */
  async ready(): Promise<void> {
    await this.current();
  }

  /** Marks the in-memory copy out of date; the next use re-reads the database (serving it meanwhile). */
  invalidate(): void {
    this.generation++;
    this.stale = true;
    this.loading = null;
  }

  private async withReload<T>(use: (set: KeySet) => Promise<T> | T): Promise<T> {
    const set = await this.current();
    try {
      return await use(set);
    } catch (error) {
      // Another node may have rotated since we read: look again, at most every few seconds.
      const now = Date.now();
      if (
        !(error instanceof errors.JWKSNoMatchingKey) ||
        now - this.lastForcedReload < FORCED_RELOAD_INTERVAL_MS
      )
        throw error;
      this.lastForcedReload = now;
      this.invalidate();
      return use(await this.reload());
    }
  }

  /**
   * The key set to use now. A fresh one (younger than `cacheTtlSeconds`, not invalidated) is served as
   * is; an older one is served too while a single re-read runs in the background (stale-while-revalidate),
   * unless it is older than twice the TTL — re-reads have been failing — when the caller waits, as a store
   * that never loaded does. With a TTL of 0 every use waits for a re-read.
   */
  private current(): Promise<KeySet> {
    const now = this.clock().getTime();
    const set = this.cached;
    const ttl = this.options.cacheTtlSeconds * 1000;
    if (set && !this.stale && now - set.loadedAt < ttl) return Promise.resolve(set);
    const loading = this.reload();
    if (set && now - set.loadedAt < 2 * ttl) {
      loading.catch(() => undefined); // the next use tries again; past 2 × TTL its caller sees the error
      return Promise.resolve(set);
    }
    return loading;
  }

  /** One re-read at a time; what it read is kept unless a rotation happened meanwhile. */
  private reload(): Promise<KeySet> {
    if (!this.loading) {
      const generation = this.generation;
      const loading = this.load()
        .then((set) => {
          // A rotation during the read invalidated it: serve it once, do not keep it.
          if (generation === this.generation) {
            this.cached = set;
            this.stale = false;
          }
          return set;
        })
        .finally(() => {
          if (this.loading === loading) this.loading = null;
        });
      this.loading = loading;
    }
    return this.loading;
  }

  private async load(): Promise<KeySet> {
    const { db, masterKey } = this.options;
    let rows = await this.readKeys();
    const complete = (list: SigningKey[]) =>
      SIGNING_ALGS.every(
        (alg) =>
          list.some((k) => k.alg === alg && k.status === 'active') &&
          list.some((k) => k.alg === alg && k.status === 'next'),
      );
    if (!complete(rows)) {
      await db.withTenant(PLATFORM_TENANT_ID, async (em) => {
        const created = await ensureSigningKeys(em, masterKey, this.clock());
        if (created.length > 0)
          await recordAudit(em, PLATFORM_TENANT_ID, {
            actor: { type: 'system', id: 'gatehouse' },
            action: 'signing_keys.created',
            after: { kids: created },
          });
      });
      rows = await this.readKeys();
    }
    if (this.rotationDue(rows.filter((k) => k.status === 'active'))) {
      await this.rotateInDatabase({ actor: { type: 'system', id: 'rotation-schedule' } }, true);
      rows = await this.readKeys();
    }
    return this.build(rows);
  }

  private rotationDue(active: SigningKey[]): boolean {
    const now = this.clock().getTime();
    const interval = this.options.rotationIntervalSeconds * 1000;
    return active.some((k) => (k.activatedAt ?? k.createdAt).getTime() + interval <= now);
  }

  private rotateInDatabase(context: RotationContext, scheduled = false): Promise<RotationResult> {
    const now = this.clock();
    return this.options.db.withTenant(PLATFORM_TENANT_ID, async (em) => {
      const result = await rotateSigningKeys(em, this.options.masterKey, {
        now,
        publishRetiredForSeconds: this.options.publishRetiredForSeconds,
        keepRetiredForSeconds: this.options.keepRetiredForSeconds,
        onlyIf: scheduled ? (active) => this.rotationDue(active) : undefined,
      });
      if (result.rotated)
        await recordAudit(em, PLATFORM_TENANT_ID, {
          actor: context.actor,
          action: 'signing_keys.rotated',
          requestId: context.requestId,
          sourceIp: context.sourceIp,
          after: {
            scheduled,
            activated: result.activated,
            retired: result.retired.map((r) => ({ ...r, publishedUntil: r.publishedUntil.toISOString() })),
            published: result.published,
            deleted: result.deleted,
          },
        });
      return result;
    });
  }

  private readKeys(): Promise<SigningKey[]> {
    const keepSince = new Date(this.clock().getTime() - this.options.keepRetiredForSeconds * 1000);
    // A query builder with named parameters, not find options: TypeORM walks a find's `where`
    // object with for…in, which a polluted Object.prototype would extend (docs/security.md).
    return this.options.db.withPlatform((em) =>
      em
        .createQueryBuilder(SigningKey, 'k')
        .where("k.status IN ('active', 'next')")
        .orWhere("k.status = 'retired' AND k.expiresAt > :keepSince", { keepSince })
        .getMany(),
    );
  }

  private async build(rows: SigningKey[]): Promise<KeySet> {
    const now = this.clock();
    const active = new Map<SigningAlg, { kid: string; key: CryptoKey }>();
    for (const row of rows.filter((k) => k.status === 'active')) {
      const pem = open(this.options.masterKey, row.privateKeyEnc, privateKeyContext(row.kid));
      active.set(row.alg, { kid: row.kid, key: await importPKCS8(pem, row.alg) });
    }
    const isPublished = (k: SigningKey) =>
      k.status !== 'retired' || (k.expiresAt !== null && k.expiresAt > now);
    // Next keys first, then active, then retired: the order of the document is not meaningful.
    const rank = { next: 0, active: 1, retired: 2 } as const;
    const sorted = [...rows].sort((a, b) => rank[a.status] - rank[b.status] || a.kid.localeCompare(b.kid));
    const published = sorted.filter(isPublished).map((k) => k.publicJwk as JWK);
    const recent = sorted.map((k) => k.publicJwk as JWK);
    return {
      loadedAt: now.getTime(),
      active,
      published,
      verifyPublished: createLocalJWKSet({ keys: published }),
      verifyRecent: createLocalJWKSet({ keys: recent }),
    };
  }
}

/** The factory to wire: one store per process, shared by the OAuth routes, the admin API and SCIM logout. */
export function createSigningKeyStore(config: Config, db: Database, masterKey: Buffer): SigningKeyStore {
  return new SigningKeyStore(signingKeyStoreOptions(config, db, masterKey));
}
