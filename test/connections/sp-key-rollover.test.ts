import fc from 'fast-check';
import { runMetadataSweep, spKeyRolloverOptions } from '../../src/connections/metadata-refresh-sweep.js';
import { rolloverStep } from '../../src/connections/sp-keys.service.js';
import { parseConfig } from '../../src/config/config.js';
import { outboundPolicy } from '../../src/outbound/pinned-request.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp, type ServiceProviderTarget } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import {
  auditEvents,
  createSamlConnection,
  createTenantWithDomains,
  spOf,
} from '../support/sso-factories.js';
import {
  encryptedResponse,
  metadataCertificates,
  post,
  reasonOf,
  startLogin,
} from '../sso/saml-encryption-idp.js';

/**
 * Automatic SP encryption-key rollover (issue 16, GATEHOUSE_SP_KEY_ROLLOVER):
 * the metadata-refresh sweep, driven here with an injected `now`, rotates a
 * key older than the rollover age (the next certificate is in the SP metadata
 * at once), activates it after the delay and retires the replaced one after
 * the same delay again, each step audited with the manual routes' events; a
 * login encrypted to whichever certificate the IdP holds never fails.
 */
let t: TestDatabase;
let gh: SsoServer;
const DAY = 24 * 3600 * 1000;
const YEAR = 365 * DAY;

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer: new RecordingCompleter() });
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

const rollover = { rotateAfterMs: YEAR, activateAfterMs: 7 * DAY };

const sweep = (now: Date, withRollover = true) =>
  runMetadataSweep(
    {
      db: t.db,
      fetch: outboundPolicy(gh.config.outboundFetch),
      overlapMs: 7 * DAY,
      intervalMs: DAY,
      spKeyRollover: withRollover
        ? { ...rollover, keys: { masterKey: gh.secrets.masterKey, deploymentSigningKey: false } }
        : null,
    },
    now,
  );

async function setup(slug: string) {
  const idp = await SamlTestIdp.create(slug);
  const tenantId = await createTenantWithDomains(t.db, slug, [`${slug}.test`]);
  const connection = await createSamlConnection(t.db, tenantId, idp);
  const sp = spOf(gh.baseUrl, connection);
  return { idp, tenantId, connection, sp, slug };
}

const encryptionCertificates = async (connectionId: string) =>
  metadataCertificates(
    await (await fetch(`${gh.baseUrl}/saml/${connectionId}/metadata`)).text(),
    'encryption',
  );

async function loginEncryptedTo(
  s: { idp: SamlTestIdp; sp: ServiceProviderTarget; slug: string },
  encryptTo: string,
): Promise<string | null> {
  const email = `pat@${s.slug}.test`;
  const login = await startLogin(gh.baseUrl, s.idp, s.sp, email);
  const answer = await encryptedResponse(s.idp, login.requestId, s.sp, { nameId: email }, { encryptTo });
  const res = await post(login.browser, s.sp, answer.samlResponse);
  return res.body === `completed ${login.loginId}` ? null : reasonOf(res.body);
}

const keyRows = (tenantId: string, connectionId: string) =>
  t.db.withTenant(tenantId, (em) =>
    em.query<{ status: string; has_private_key: boolean }[]>(
      `SELECT status, private_key_enc IS NOT NULL AS has_private_key FROM connection_sp_keys
        WHERE connection_id = $1 AND use = 'encryption' ORDER BY created_at`,
      [connectionId],
    ),
  );

describe('automatic SP encryption-key rollover', () => {
  it('rotates a key older than the setting, activates it after the delay and retires the old one after it again', async () => {
    const s = await setup('rollover');
    const [first] = await encryptionCertificates(s.connection.id); // the first key, created on first need
    if (!first) throw new Error('no encryption certificate');
    const start = Date.now();
    const at = (ms: number) => new Date(start + ms);

    // Younger than the rollover age: nothing happens.
    await sweep(at(YEAR - DAY));
    expect(await encryptionCertificates(s.connection.id)).toEqual([first]);

    // Older: the next key is published at once; the IdP may still encrypt to the first.
    await sweep(at(YEAR + DAY));
    const afterRotate = await encryptionCertificates(s.connection.id);
    expect(afterRotate).toHaveLength(2);
    expect(afterRotate[0]).toBe(first);
    const next = afterRotate[1] ?? '';
    expect(await keyRows(s.tenantId, s.connection.id)).toEqual([
      { status: 'current', has_private_key: true },
      { status: 'next', has_private_key: true },
    ]);
    expect(await loginEncryptedTo(s, first)).toBeNull();
    expect(await loginEncryptedTo(s, next)).toBeNull();

    // Before the delay the next key waits; then it becomes current and the first one previous.
    await sweep(at(YEAR + 7 * DAY));
    expect((await keyRows(s.tenantId, s.connection.id)).map((k) => k.status)).toEqual(['current', 'next']);
    await sweep(at(YEAR + 8 * DAY + 60_000));
    expect(await encryptionCertificates(s.connection.id)).toEqual([next, first]);
    expect(await loginEncryptedTo(s, first)).toBeNull();
    expect(await loginEncryptedTo(s, next)).toBeNull();

    // The same delay again: the first key is retired (no private key left) and no longer published.
    await sweep(at(YEAR + 15 * DAY));
    expect(await encryptionCertificates(s.connection.id)).toEqual([next, first]);
    await sweep(at(YEAR + 16 * DAY));
    expect(await encryptionCertificates(s.connection.id)).toEqual([next]);
    expect(await keyRows(s.tenantId, s.connection.id)).toEqual([
      { status: 'retired', has_private_key: false },
      { status: 'current', has_private_key: true },
    ]);
    expect(await loginEncryptedTo(s, first)).toBe('saml_decryption_failed');
    expect(await loginEncryptedTo(s, next)).toBeNull();

    // Each step audited once, with the manual routes' events, by the system.
    const events = await t.db.withTenant(s.tenantId, (em) =>
      em.query<{ action: string; actor_type: string; actor_id: string; target_id: string }[]>(
        `SELECT action, actor_type, actor_id, target_id FROM audit_events
          WHERE action LIKE 'connection.sp_key_%' AND action <> 'connection.sp_keys_created' ORDER BY seq`,
      ),
    );
    expect(events).toEqual(
      ['connection.sp_key_rotated', 'connection.sp_key_activated', 'connection.sp_key_retired'].map(
        (action) => ({
          action,
          actor_type: 'system',
          actor_id: 'sp-key-rollover',
          target_id: s.connection.id,
        }),
      ),
    );
  });

  it('does nothing when GATEHOUSE_SP_KEY_ROLLOVER is unset (the default)', async () => {
    const s = await setup('rollover-off');
    const before = await encryptionCertificates(s.connection.id);
    expect(before).toHaveLength(1);
    const counts = await sweep(new Date(Date.now() + 5 * YEAR), false);
    expect(counts.spKeySteps).toBe(0);
    expect(await encryptionCertificates(s.connection.id)).toEqual(before);
    expect(await auditEvents(t.db, s.tenantId, 'connection.sp_key_rotated')).toHaveLength(0);
    expect(parseConfig({}).metadataRefresh.spKeyRollover).toBeNull();
  });

  it('reads the settings as durations and refuses what is not one', () => {
    const config = parseConfig({ GATEHOUSE_SP_KEY_ROLLOVER: '365d' });
    expect(config.metadataRefresh.spKeyRollover).toEqual({
      rotateAfterSeconds: 365 * 86_400,
      activateAfterSeconds: 7 * 86_400,
    });
    expect(
      parseConfig({ GATEHOUSE_SP_KEY_ROLLOVER: '8760h', GATEHOUSE_SP_KEY_ROLLOVER_ACTIVATE_AFTER: '3600' })
        .metadataRefresh.spKeyRollover,
    ).toEqual({ rotateAfterSeconds: 365 * 86_400, activateAfterSeconds: 3600 });
    expect(spKeyRolloverOptions(config, gh.secrets.masterKey)).toMatchObject({
      rotateAfterMs: YEAR,
      activateAfterMs: 7 * DAY,
    });
    for (const bad of ['forever', '-1d', '1y', '10', '1e9d'])
      expect(() => parseConfig({ GATEHOUSE_SP_KEY_ROLLOVER: bad })).toThrow(/GATEHOUSE_SP_KEY_ROLLOVER/);
  });

  it('property: the step taken never leaves a use without a current key and follows rotate → activate → retire', () => {
    type Key = { status: 'current' | 'next' | 'previous'; createdAt: Date; activatedAt: Date | null };
    const ms = fc.integer({ min: 0, max: 3 * 365 }).map((d) => d * DAY);
    const key = (status: Key['status']) =>
      fc.record({ created: ms, activated: fc.option(ms) }).map(({ created, activated }): Key => ({
        status,
        createdAt: new Date(created),
        activatedAt: activated === null ? null : new Date(activated),
      }));
    const keys = fc
      .tuple(key('current'), fc.option(key('next')), fc.option(key('previous')))
      .map(([c, n, p]) => [c, n, p].filter((k): k is Key => k !== null));
    fc.assert(
      fc.property(keys, fc.integer({ min: 0, max: 6 * 365 }), (ks, nowDays) => {
        const now = new Date(nowDays * DAY);
        const step = rolloverStep(ks, rollover, now);
        const has = (status: Key['status']) => ks.some((k) => k.status === status);
        if (step === 'activate') expect(has('next')).toBe(true);
        if (step === 'retire') expect(has('previous') && has('current')).toBe(true);
        if (step === 'rotate') expect(has('next')).toBe(false);
        // A key published less than the delay ago is never activated.
        const next = ks.find((k) => k.status === 'next');
        if (next && now.getTime() - next.createdAt.getTime() < rollover.activateAfterMs)
          expect(step).not.toBe('activate');
      }),
      { seed: 16, numRuns: Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 200) },
    );
  });
});
