import fc from 'fast-check';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { fuzzRuns, fuzzSeed } from './hardening-support.js';
import {
  createTenant,
  ENTERPRISE,
  ERROR,
  GROUP_SCHEMA,
  issueToken,
  newUser,
  scimClient,
  startNode,
  USER_SCHEMA,
  type ScimClient,
  type ScimNode,
} from './support.js';

/**
 * Issue 10: the whole RFC 7644 §3.4.2.2 filter grammar through the real
 * /Users and /Groups endpoints, read by our own parser (scimmy's lexer ended
 * strings at an escaped quote and kept `\\` as two characters). One directory
 * whose names carry quotes, backslashes and non-ASCII letters; a table of
 * filters and exactly whom each finds; a table of malformed filters, each 400
 * invalidFilter; and two properties: a stored value is always found by
 * `attr eq <its JSON encoding>`, and no string as a filter gets a 5xx.
 */

let t: TestDatabase;
let node: ScimNode;
let c: ScimClient;
const keyOf = new Map<string, string>();

beforeAll(async () => {
  t = await createTestDatabase();
  node = await startNode(t);
  const tenantId = await createTenant(t);
  c = scimClient(node.app, tenantId, (await issueToken(t.db, tenantId)).token);
  const people: [string, Record<string, unknown>][] = [
    [
      'o"brien@x.test',
      {
        displayName: 'O"Brien',
        title: 'Eng',
        name: { givenName: 'Seán', familyName: 'O"Brien' },
        emails: [
          { value: 'o"brien@x.test', type: 'work', primary: true },
          { value: 'ob@home.test', type: 'home' },
        ],
        [ENTERPRISE]: { employeeNumber: '7' },
      },
    ],
    [
      'r\\d@x.test',
      {
        displayName: 'R\\D',
        title: 'Ops',
        active: false,
        emails: [{ value: 'r\\d@x.test', type: 'work' }],
      },
    ],
    [
      'élodie@x.test',
      {
        displayName: 'Élodie',
        title: 'Eng',
        name: { givenName: 'Élodie', familyName: 'Martin' },
        emails: [{ value: 'élodie@x.test', type: 'work' }],
      },
    ],
    [
      'zed@y.test',
      { displayName: 'Zed', name: undefined, emails: [{ value: 'zed@home.test', type: 'home' }] },
    ],
  ];
  for (const [userName, extra] of people) {
    await c.post('/Users', newUser(userName, extra)).expect(201);
    keyOf.set(
      userName,
      userName.split('@')[0] === 'o"brien'
        ? 'obrien'
        : userName.startsWith('r')
          ? 'rd'
          : userName.startsWith('é')
            ? 'elodie'
            : 'zed',
    );
  }
  await c.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'R\\D "team"' }).expect(201);
  await c.post('/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Plain' }).expect(201);
});
afterAll(async () => {
  await node.close();
  await t.close();
});

const CORE = USER_SCHEMA;
const ALL = ['elodie', 'obrien', 'rd', 'zed'];

const found: [string, string, string[]][] = [
  // escapes (JSON string rules, RFC 7159 §7) and unicode
  ['escaped quote', 'userName eq "o\\"brien@x.test"', ['obrien']],
  ['escaped backslash', 'displayName eq "R\\\\D"', ['rd']],
  ['\\u escape for a non-ASCII letter', 'userName eq "\\u00e9lodie@x.test"', ['elodie']],
  ['raw non-ASCII letters', 'name.givenName eq "Seán"', ['obrien']],
  ['\\u escape for a quote', 'displayName eq "O\\u0022Brien"', ['obrien']],
  ['escaped solidus', 'userName eq "zed@y\\/test"', []],
  ['\\u escapes for ASCII', 'title eq "\\u0045ng"', ['elodie', 'obrien']],
  // every operator
  ['eq (userName ignores case)', 'userName eq "ZED@Y.TEST"', ['zed']],
  ['ne (absent counts as not equal)', 'title ne "Eng"', ['rd', 'zed']],
  ['co', 'displayName co "\\""', ['obrien']],
  ['sw', 'userName sw "r\\\\"', ['rd']],
  ['ew', 'userName ew "@y.test"', ['zed']],
  ['gt (code point order)', 'userName gt "r"', ['elodie', 'rd', 'zed']],
  ['ge (é sorts after z)', 'userName ge "zed@y.test"', ['elodie', 'zed']],
  ['lt', 'userName lt "p"', ['obrien']],
  ['le', 'userName le "o\\"brien@x.test"', ['obrien']],
  ['pr', 'title pr', ['elodie', 'obrien', 'rd']],
  ['eq null', 'title eq null', ['zed']],
  ['ne null', 'title ne null', ['elodie', 'obrien', 'rd']],
  ['eq false', 'active eq false', ['rd']],
  ['eq "True" (Entra)', 'active eq "True"', ['elodie', 'obrien', 'zed']],
  ['a number value', `${ENTERPRISE}:employeeNumber eq 7`, ['obrien']],
  // logic: not > and > or, parentheses
  ['and binds tighter than or', 'title eq "Ops" or title eq "Eng" and displayName sw "O"', ['obrien', 'rd']],
  ['parentheses regroup', '(title eq "Ops" or title eq "Eng") and displayName sw "O"', ['obrien']],
  ['not (…)', 'not (title pr)', ['zed']],
  ['not before a bare comparison', 'not title eq "Eng"', ['rd', 'zed']],
  ['and not (…)', 'title eq "Eng" and not (userName sw "o")', ['elodie']],
  ['nested parentheses', '((userName sw "z") or ((userName sw "r")))', ['rd', 'zed']],
  ['not not', 'not (not (userName sw "z"))', ['zed']],
  // value paths
  ['value path with and', 'emails[type eq "work" and value co "@x"]', ['elodie', 'obrien', 'rd']],
  ['value path', 'emails[type eq "home"]', ['obrien', 'zed']],
  ['value path then sub-attribute', 'emails[type eq "work"].value ew "x.test"', ['elodie', 'obrien', 'rd']],
  ['not inside a value path', 'emails[not (type eq "work")]', ['obrien', 'zed']],
  ['value path inside logic', 'not (emails[type eq "home"]) and title pr', ['elodie', 'rd']],
  ['value path on a complex attribute', 'name[givenName eq "Seán"]', ['obrien']],
  ['multi-valued attribute by its value', 'emails eq "ob@home.test"', ['obrien']],
  ['multi-valued sub-attribute', 'emails.value co "\\\\"', ['rd']],
  // nested and URN-prefixed attribute paths
  ['sub-attribute', 'name.familyName co "\\""', ['obrien']],
  ['core URN prefix', `${CORE}:userName eq "zed@y.test"`, ['zed']],
  ['core URN with a sub-attribute', `${CORE}:name.givenName eq "Élodie"`, ['elodie']],
  ['core URN on a multi-valued path', `${CORE}:emails.type eq "home"`, ['obrien', 'zed']],
  ['extension URN', `${ENTERPRISE}:employeeNumber eq "7"`, ['obrien']],
  // case-insensitive names, operators and keywords (§3.4.2.2)
  ['upper-case name and operator', 'USERNAME EQ "zed@y.test"', ['zed']],
  ['mixed-case value path', 'Emails[Type Eq "home"]', ['obrien', 'zed']],
  ['upper-case keywords', 'title PR AND NOT (Title Eq "Eng")', ['rd']],
  ['upper-case OR', 'userName sw "z" OR userName sw "r"', ['rd', 'zed']],
  ['URN in another case', `${CORE.toUpperCase().replace('URN', 'urn')}:USERNAME eq "zed@y.test"`, ['zed']],
  ['tabs and newlines as spaces', 'userName\teq\n"zed@y.test"', ['zed']],
];

describe('the filter grammar (RFC 7644 §3.4.2.2) on /Users', () => {
  it.each(found)('%s: %s', async (_name, filter, expected) => {
    const res = await c.get(`/Users?filter=${encodeURIComponent(filter)}&attributes=userName`);
    expect(res.status).toBe(200);
    const keys = (res.body.Resources as { userName: string }[]).map((u) => keyOf.get(u.userName)).sort();
    expect({ filter, keys, total: res.body.totalResults }).toEqual({
      filter,
      keys: expected,
      total: expected.length,
    });
  });

  it('finds every user with a filter that is always true', async () => {
    const res = await c.get(`/Users?filter=${encodeURIComponent('userName pr or not (userName pr)')}`);
    expect(res.status).toBe(200);
    expect(res.body.totalResults).toBe(ALL.length);
  });

  it('finds a group whose name has a backslash and quotes, by /Groups and by /.search', async () => {
    const filter = 'displayName eq "R\\\\D \\"team\\""';
    const res = await c.get(`/Groups?filter=${encodeURIComponent(filter)}`);
    expect(res.status).toBe(200);
    expect(res.body.Resources.map((g: { displayName: string }) => g.displayName)).toEqual(['R\\D "team"']);
    const search = await c.post('/Groups/.search', {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
      filter,
    });
    expect(search.status).toBe(200);
    expect(search.body.totalResults).toBe(1);
    expect(search.body.Resources[0].displayName).toBe('R\\D "team"');
  });

  it('reads a filter with escapes from a /Users/.search body', async () => {
    const res = await c.post('/Users/.search', {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
      filter: 'userName eq "o\\"brien@x.test"',
      attributes: ['userName'],
    });
    expect(res.status).toBe(200);
    expect(res.body.Resources.map((u: { userName: string }) => u.userName)).toEqual(['o"brien@x.test']);
  });
});

const refused: [string, string][] = [
  ['an unterminated string', 'userName eq "abc'],
  ['an unknown escape', 'userName eq "a\\xb"'],
  ['a short \\u escape', 'userName eq "\\u00e"'],
  ['an escaped NUL', 'userName eq "a\\u0000b"'],
  ['an escaped lone surrogate', 'userName eq "\\ud800"'],
  ['an unknown operator', 'userName zz "x"'],
  ['np, which RFC 7644 does not define', 'title np'],
  ['a missing value', 'userName eq'],
  ['a missing operator', 'userName "x"'],
  ['an unclosed parenthesis', '(userName pr'],
  ['an extra parenthesis', 'userName pr)'],
  ['an unclosed value filter', 'emails[type eq "work"'],
  ['a value filter inside a value filter', 'emails[type[value eq "x"] eq "y"]'],
  ['a dangling and', 'userName eq "a" and'],
  ['a lone keyword', 'and'],
  ['a value where an attribute belongs', '"x" eq userName'],
  ['an unknown attribute', 'nickNameX eq "x"'],
  ['an unknown sub-attribute', 'name.middle eq "x"'],
  ['an empty path segment', 'name..givenName eq "x"'],
  ['a bare URN', 'urn:ietf:params:scim:schemas:core:2.0:User eq "x"'],
  ['a comparison on a complex attribute', 'name eq "x"'],
  ['parentheses nested too deeply', `${'('.repeat(40)}userName pr${')'.repeat(40)}`],
  ['a gt on a boolean', 'active gt true'],
  ['a date that is not one', 'meta.created gt "yesterday"'],
  ['a stray character', 'userName eq "a" & title pr'],
];

describe('malformed filters', () => {
  it.each(refused)('refuses %s with 400 invalidFilter', async (_name, filter) => {
    const res = await c.get(`/Users?filter=${encodeURIComponent(filter)}`);
    expect({ filter, status: res.status, body: res.body }).toEqual({
      filter,
      status: 400,
      body: { schemas: [ERROR], status: '400', scimType: 'invalidFilter', detail: expect.any(String) },
    });
  });
});

/** `s` as a JSON string with every character outside printable ASCII as \u escapes (surrogate pairs included). */
function escapeAll(s: string): string {
  let out = '"';
  for (const unit of s.split('')) {
    const code = unit.charCodeAt(0);
    out +=
      code >= 0x20 && code < 0x7f && unit !== '"' && unit !== '\\'
        ? unit
        : `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return `${out}"`;
}

const RUNS = fuzzRuns(25);
const SEED = fuzzSeed(1010);

describe('properties', () => {
  it('a userName created can always be found by `userName eq <its JSON encoding>`', async () => {
    let n = 0;
    const piece = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.constantFrom('"', '\\', '\\"', '"\\', ' and ', ') or (', '[', ']', 'é', '😀', '\t', 'Σ'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(piece, { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        async (pieces, escapeEverything) => {
          const userName = `p${n++}-${pieces.join('')}`.replace(/\0/g, '');
          const created = await c.post('/Users', newUser(userName, { emails: undefined }));
          expect(created.status).toBe(201);
          const literal = escapeEverything ? escapeAll(userName) : JSON.stringify(userName);
          const res = await c.get(`/Users?filter=${encodeURIComponent(`userName eq ${literal}`)}`);
          expect(res.status).toBe(200);
          expect((res.body.Resources as { id: string }[]).map((u) => u.id)).toContain(created.body.id);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('any string as a filter is 200 or 400 invalidFilter, never a 5xx', async () => {
    const fragment = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.constantFrom(
        'userName',
        'emails[',
        ']',
        '(',
        ')',
        ' eq ',
        ' pr',
        ' and ',
        ' or ',
        'not ',
        '"',
        '\\',
        '\\u12',
        '"x"',
        '.value',
        `${ENTERPRISE}:`,
        'true',
        'null',
        '-1.5e3',
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fragment, { minLength: 1, maxLength: 8 }), async (parts) => {
        const filter = parts.join('');
        const res = await c.get(`/Users?filter=${encodeURIComponent(filter)}&count=5`);
        expect([200, 400]).toContain(res.status);
        if (res.status === 400) expect(res.body.scimType).toBe('invalidFilter');
      }),
      { seed: SEED, numRuns: RUNS * 4 },
    );
  });
});
