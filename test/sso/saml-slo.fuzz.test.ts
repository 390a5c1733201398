import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { DOMParser } from '@xmldom/xmldom';
import fc from 'fast-check';
import type { Connection } from '../../src/connections/connection.entity.js';
import { MainApp, operator, startNode, type GatehouseNode } from '../e2e/support.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { SamlTestIdp } from '../support/saml-idp.js';
import { createSamlConnection, createTenantWithDomains } from '../support/sso-factories.js';
import { SloTestIdp, type SloTarget } from './saml-slo-idp.js';

/**
 * Property (issue 16): any mutation of a genuine, signed IdP LogoutRequest —
 * its XML edited without a new signature, signature bytes flipped, another
 * SigAlg, a RelayState added or changed, parameters repeated or added
 * (prototype names included), or a query / form body of garbage — sent to the
 * real /saml/{id}/slo by HTTP-Redirect or HTTP-POST, never gives a 5xx, and
 * ends the person's session only when what arrived is the message the IdP
 * signed (same ID, Issuer, NameID, Destination) with its signature intact.
 * `Object.prototype` is never touched.
 *
 * GATEHOUSE_FUZZ_RUNS sets the budget, GATEHOUSE_FUZZ_SEED the seed.
 */
const RUNS = Math.min(Number(process.env.GATEHOUSE_FUZZ_RUNS ?? 40), 5000);
const SEED = Number(process.env.GATEHOUSE_FUZZ_SEED ?? 20261216);
const TEST_TIMEOUT = 60_000 + RUNS * 1_000;
const CALLBACK = 'http://localhost:3000/callback';
const PERSON = 'victim@slofuzz.test';

let t: TestDatabase;
let node: GatehouseNode;
let mainApp: MainApp;
let tenantId: string;
let idp: SloTestIdp;
let connection: Connection;
let target: SloTarget;
let sid: string;

async function signIn(): Promise<string> {
  return (await mainApp.signIn({ idp: idp.base, connection }, PERSON)).sid;
}

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  const app = await operator(node, 'POST', '/apps', { name: 'Main app', redirect_uris: [CALLBACK] });
  mainApp = await MainApp.connect(
    node,
    { clientId: String(app.body.client_id), clientSecret: String(app.body.client_secret) },
    CALLBACK,
  );
  idp = new SloTestIdp(await SamlTestIdp.create('slofuzz'));
  tenantId = await createTenantWithDomains(t.db, 'slofuzz', ['slofuzz.test']);
  connection = await createSamlConnection(t.db, tenantId, idp.base);
  await t.db.withTenant(tenantId, (em) =>
    em.query(
      `UPDATE connections SET saml_idp_slo_url = $2,
              saml_idp_slo_binding = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect' WHERE id = $1`,
      [connection.id, idp.sloUrl],
    ),
  );
  target = { metadata: await (await fetch(`${node.address}/saml/${connection.id}/metadata`)).text() };
  sid = await signIn();
});
afterAll(async () => {
  await node.close();
  await t.close();
});

type Mutation =
  | { kind: 'xml'; at: number; cut: number; insert: string }
  | { kind: 'signature'; at: number; byte: number }
  | { kind: 'sigalg'; value: string }
  | { kind: 'relay'; value: string }
  | { kind: 'param'; name: string; value: string }
  | { kind: 'garbage'; value: string };

const SIG_ALGS = [
  'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2001/04/xmldsig-more#hmac-sha256',
  'md5',
  '',
];
const NAMES = [
  'SAMLRequest',
  'SAMLResponse',
  'Signature',
  'SigAlg',
  'RelayState',
  '__proto__',
  'constructor',
];

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant('xml' as const),
    at: fc.nat(),
    cut: fc.nat({ max: 12 }),
    insert: fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom('<!---->', '<x/>', '&amp;', 'evil@x.test'),
    ),
  }),
  fc.record({
    kind: fc.constant('signature' as const),
    at: fc.nat(),
    byte: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ kind: fc.constant('sigalg' as const), value: fc.constantFrom(...SIG_ALGS) }),
  fc.record({ kind: fc.constant('relay' as const), value: fc.string({ maxLength: 120 }) }),
  fc.record({
    kind: fc.constant('param' as const),
    name: fc.constantFrom(...NAMES),
    value: fc.string({ maxLength: 64 }),
  }),
  fc.record({ kind: fc.constant('garbage' as const), value: fc.string({ maxLength: 400 }) }),
);

interface Delivery {
  method: 'GET' | 'POST';
  query: string;
  body: string | null;
}

function edit(text: string, m: { at: number; cut: number; insert: string }): string {
  const at = m.at % (text.length + 1);
  return text.slice(0, at) + m.insert + text.slice(at + m.cut);
}

/** Flips one byte of a base64 value's bytes (never a no-op: byte ≥ 1 is XORed in). */
function flip(base64: string, at: number, byte: number): string {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length === 0) return base64;
  const i = at % bytes.length;
  bytes[i] = (bytes[i] ?? 0) ^ byte;
  return bytes.toString('base64');
}

function redirectDelivery(url: string, m: Mutation): Delivery {
  const u = new URL(url);
  const params = new URLSearchParams(u.search);
  switch (m.kind) {
    case 'xml': {
      const xml = inflateRawSync(Buffer.from(params.get('SAMLRequest') ?? '', 'base64')).toString('utf8');
      params.set('SAMLRequest', deflateRawSync(Buffer.from(edit(xml, m), 'utf8')).toString('base64'));
      break;
    }
    case 'signature':
      params.set('Signature', flip(params.get('Signature') ?? '', m.at, m.byte));
      break;
    case 'sigalg':
      params.set('SigAlg', m.value);
      break;
    case 'relay':
      params.set('RelayState', `${params.get('RelayState') ?? ''}${m.value}x`);
      break;
    case 'param':
      params.append(m.name, m.value);
      break;
    case 'garbage':
      return { method: 'GET', query: m.value.replace(/#/g, ''), body: null };
  }
  return { method: 'GET', query: params.toString(), body: null };
}

function postDelivery(form: Record<string, string>, m: Mutation): Delivery {
  const params = new URLSearchParams(form);
  const xml = Buffer.from(form.SAMLRequest ?? '', 'base64').toString('utf8');
  switch (m.kind) {
    case 'xml':
      params.set('SAMLRequest', Buffer.from(edit(xml, m), 'utf8').toString('base64'));
      break;
    case 'signature': {
      const value = /<ds:SignatureValue>([^<]*)<\/ds:SignatureValue>/.exec(xml)?.[1] ?? '';
      const flipped = xml.replace(value, flip(value.replace(/\s/g, ''), m.at, m.byte));
      params.set('SAMLRequest', Buffer.from(flipped, 'utf8').toString('base64'));
      break;
    }
    case 'sigalg':
      params.set(
        'SAMLRequest',
        Buffer.from(xml.replace(/rsa-sha256/g, m.value || 'x'), 'utf8').toString('base64'),
      );
      break;
    case 'relay':
      // Not covered by the POST binding's signature: a changed RelayState with a genuine message is genuine.
      params.set('RelayState', m.value);
      break;
    case 'param':
      params.append(m.name, m.value);
      break;
    case 'garbage':
      return { method: 'POST', query: '', body: m.value };
  }
  return { method: 'POST', query: '', body: params.toString() };
}

/** The facts a verified signature would have to cover, read from what was delivered (null: unreadable). */
function factsOf(delivery: Delivery): string | null {
  try {
    const params = new URLSearchParams(delivery.method === 'GET' ? delivery.query : (delivery.body ?? ''));
    const raw = params.getAll('SAMLRequest');
    if (raw.length !== 1) return null;
    const bytes = Buffer.from(raw[0] ?? '', 'base64');
    const xml = delivery.method === 'GET' ? inflateRawSync(bytes).toString('utf8') : bytes.toString('utf8');
    const root = new DOMParser().parseFromString(xml, 'text/xml').documentElement;
    if (!root) return null;
    const text = (name: string) =>
      Array.from(root.getElementsByTagNameNS('urn:oasis:names:tc:SAML:2.0:assertion', name))
        .map((e) => e.textContent)
        .join('|');
    return JSON.stringify([
      root.getAttribute('ID'),
      root.getAttribute('Destination'),
      text('Issuer'),
      text('NameID'),
    ]);
  } catch {
    return null;
  }
}

async function revoked(sessionId: string): Promise<boolean> {
  const rows = await t.db.withTenant(tenantId, (em) =>
    em.query<{ revoked_at: Date | null }[]>('SELECT revoked_at FROM sessions WHERE id = $1', [sessionId]),
  );
  return rows[0]?.revoked_at !== null;
}

it(
  'never answers 5xx to a mutated LogoutRequest, and ends the session only for the message the IdP signed',
  async () => {
    const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('redirect' as const, 'post' as const),
        mutation,
        async (binding, m) => {
          const genuine =
            binding === 'redirect'
              ? idp.logoutRequestRedirect(target, { nameId: PERSON })
              : idp.logoutRequestPost(target, { nameId: PERSON });
          const delivery =
            'url' in genuine ? redirectDelivery(genuine.url, m) : postDelivery(genuine.form, m);
          const res = await fetch(
            `${node.address}/saml/${connection.id}/slo${delivery.query ? `?${delivery.query}` : ''}`,
            {
              method: delivery.method,
              redirect: 'manual',
              ...(delivery.body === null
                ? {}
                : { body: delivery.body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
            },
          );
          await res.arrayBuffer();
          expect(res.status).toBeLessThan(500);
          if (await revoked(sid)) {
            // Accepted: it must be the very message the IdP signed, delivered intact where it counts.
            const sent =
              'url' in genuine
                ? factsOf({ method: 'GET', query: new URL(genuine.url).search.slice(1), body: null })
                : factsOf({ method: 'POST', query: '', body: new URLSearchParams(genuine.form).toString() });
            expect(factsOf(delivery)).toBe(sent);
            sid = await signIn();
          }
          expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  },
  TEST_TIMEOUT,
);
