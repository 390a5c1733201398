import fc from 'fast-check';
import { REASONS } from '../../src/sso/reasons.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { RecordingCompleter, startSsoServer, type SsoServer } from '../support/sso-app.js';
import { createSamlConnection, createTenantWithDomains, spOf } from '../support/sso-factories.js';
import {
  CONTENT_ALGORITHMS,
  encryptedResponse,
  KEY_TRANSPORT,
  metadataCertificates,
  reasonOf,
} from './saml-encryption-idp.js';

/**
 * Property: random mutations of a genuine EncryptedAssertion (bytes flipped
 * or cut in either CipherValue, algorithms swapped for others or for junk,
 * elements dropped or duplicated, text injected), posted to the real ACS,
 * never give a 5xx, and a refusal always names a reason code; an accepted
 * one signs in exactly the person the IdP's signature covers, at most once
 * per genuine assertion. Each case starts from a fresh genuine answer (a new
 * assertion id), so an accepted mutation is never hidden by the replay cache.
 *
 * GATEHOUSE_FUZZ_RUNS sets the budget (`npm run fuzz` runs 2000),
 * GATEHOUSE_FUZZ_SEED the seed.
 */
const RUNS = Math.min(Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 40), 5000);
const SEED = Number(process.env.GATEHOUSE_FUZZ_SEED ?? 20261203);
const TEST_TIMEOUT = 60_000 + RUNS * 1_000;

let t: TestDatabase;
let gh: SsoServer;
let idp: SamlTestIdp;
let tenantId: string;
let sp: ReturnType<typeof spOf>;
let encryptTo: string;
const completer = new RecordingCompleter();
const PERSON = 'fuzz@fuzzenc.test';

beforeAll(async () => {
  t = await createTestDatabase();
  gh = await startSsoServer(t, { completer });
  idp = await SamlTestIdp.create('fuzzenc');
  tenantId = await createTenantWithDomains(t.db, 'fuzzenc', ['fuzzenc.test']);
  const connection = await createSamlConnection(t.db, tenantId, idp, { samlAllowIdpInitiated: true });
  sp = spOf(gh.baseUrl, connection);
  const metadata = await (await fetch(`${gh.baseUrl}/saml/${connection.id}/metadata`)).text();
  const [cert] = metadataCertificates(metadata, 'encryption');
  if (!cert) throw new Error('no encryption certificate');
  encryptTo = cert;
});
afterAll(async () => {
  await gh.close();
  await t.close();
});

const ALGORITHMS = [
  ...Object.values(CONTENT_ALGORITHMS),
  ...Object.values(KEY_TRANSPORT),
  'http://www.w3.org/2009/xmlenc11#rsa-oaep',
  'http://www.w3.org/2001/04/xmlenc#aes192-cbc',
  'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  'urn:junk',
  '',
];
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=';
const DROPPABLE = [
  'EncryptedKey',
  'EncryptionMethod',
  'CipherValue',
  'CipherData',
  'KeyInfo',
  'EncryptedData',
];

type Mutation =
  | { kind: 'flip'; which: number; at: number; char: string }
  | { kind: 'cut'; which: number; keep: number }
  | { kind: 'algorithm'; which: number; algorithm: string }
  | { kind: 'drop'; element: string; which: number }
  | { kind: 'duplicate'; element: string }
  | { kind: 'inject'; text: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    which: fc.nat(1),
    at: fc.nat(4000),
    char: fc.constantFrom(...B64.split('')),
  }),
  fc.record({ kind: fc.constant('cut' as const), which: fc.nat(1), keep: fc.nat(600) }),
  fc.record({
    kind: fc.constant('algorithm' as const),
    which: fc.nat(1),
    algorithm: fc.constantFrom(...ALGORITHMS),
  }),
  fc.record({ kind: fc.constant('drop' as const), element: fc.constantFrom(...DROPPABLE), which: fc.nat(1) }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    element: fc.constantFrom('EncryptedKey', 'EncryptedData'),
  }),
  fc.record({
    kind: fc.constant('inject' as const),
    text: fc.constantFrom(
      '<!-- x -->',
      '<?pi x?>',
      'junk',
      '<saml:Assertion/>',
      '&amp;',
      '<x:y xmlns:x="urn:x"/>',
    ),
  }),
);

/** The n-th match of `re` (global) in `xml`, wrapping around; null when none. */
function nth(xml: string, re: RegExp, n: number): RegExpExecArray | null {
  const all = [...xml.matchAll(re)];
  if (all.length === 0) return null;
  return all[n % all.length] as RegExpExecArray;
}

function splice(xml: string, m: RegExpExecArray, replacement: string): string {
  return xml.slice(0, m.index) + replacement + xml.slice(m.index + m[0].length);
}

function mutate(xml: string, m: Mutation): string {
  switch (m.kind) {
    case 'flip': {
      const cv = nth(xml, /(<(?:\w+:)?CipherValue>)([^<]*)(<\/(?:\w+:)?CipherValue>)/g, m.which);
      if (!cv?.[2]) return xml;
      const value = cv[2];
      const at = m.at % value.length;
      return splice(xml, cv, `${cv[1]}${value.slice(0, at)}${m.char}${value.slice(at + 1)}${cv[3]}`);
    }
    case 'cut': {
      const cv = nth(xml, /(<(?:\w+:)?CipherValue>)([^<]*)(<\/(?:\w+:)?CipherValue>)/g, m.which);
      if (!cv?.[2]) return xml;
      return splice(xml, cv, `${cv[1]}${cv[2].slice(0, m.keep)}${cv[3]}`);
    }
    case 'algorithm': {
      const em = nth(xml, /(<(?:\w+:)?EncryptionMethod Algorithm=")([^"]*)(")/g, m.which);
      return em ? splice(xml, em, `${em[1]}${m.algorithm}${em[3]}`) : xml;
    }
    case 'drop': {
      const re = new RegExp(`<((?:\\w+:)?${m.element})\\b[^>]*?(?:/>|>[\\s\\S]*?</\\1>)`, 'g');
      const found = nth(xml, re, m.which);
      return found ? splice(xml, found, '') : xml;
    }
    case 'duplicate': {
      const re = new RegExp(`<((?:\\w+:)?${m.element})\\b[^>]*?>[\\s\\S]*?</\\1>`, 'g');
      const found = nth(xml, re, 0);
      return found ? splice(xml, found, found[0] + found[0]) : xml;
    }
    case 'inject': {
      const cv = nth(xml, /<\/(?:\w+:)?CipherData>/g, 1);
      return cv ? splice(xml, cv, m.text + cv[0]) : xml;
    }
  }
}

describe('EncryptedAssertion mutations through the real ACS', () => {
  it(
    'never answers 5xx, always names a reason when refusing, and signs in only the signed person, once',
    async () => {
      // Control: an unmutated answer signs the person in.
      const control = await encryptedResponse(
        idp,
        '',
        sp,
        { nameId: PERSON },
        { encryptTo, inResponseTo: null },
      );
      const ok = await fetch(sp.acsUrl, {
        method: 'POST',
        body: new URLSearchParams({ SAMLResponse: control.samlResponse }),
        redirect: 'manual',
      });
      expect(await ok.text()).toBe('completed unsolicited');

      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(CONTENT_ALGORITHMS['aes256-cbc'], CONTENT_ALGORITHMS['aes128-gcm']),
          fc.array(mutation, { minLength: 1, maxLength: 3 }),
          async (content, mutations) => {
            const genuine = await encryptedResponse(
              idp,
              '',
              sp,
              { nameId: PERSON },
              {
                encryptTo,
                content,
                inResponseTo: null,
              },
            );
            const mutated = mutations.reduce(mutate, genuine.xml);
            const completed = completer.completed.length;
            const res = await fetch(sp.acsUrl, {
              method: 'POST',
              body: new URLSearchParams({ SAMLResponse: Buffer.from(mutated, 'utf8').toString('base64') }),
              redirect: 'manual',
            });
            const body = await res.text();
            expect(res.status).toBeLessThan(500);
            if (body === 'completed unsolicited') {
              // Accepted: the mutation left the signed assertion intact; it is the IdP's person, once.
              expect(completer.completed).toHaveLength(completed + 1);
              const [user] = await t.db.withTenant(tenantId, (em) =>
                em.query<{ user_name: string }[]>('SELECT user_name FROM users WHERE id = $1', [
                  completer.completed.at(-1)?.result.userId,
                ]),
              );
              expect(user?.user_name).toBe(PERSON);
            } else {
              expect(completer.completed).toHaveLength(completed);
              const reason = reasonOf(body);
              expect(reason !== null && Object.hasOwn(REASONS, reason)).toBe(true);
            }
          },
        ),
        { seed: SEED, numRuns: RUNS },
      );
    },
    TEST_TIMEOUT,
  );
});
