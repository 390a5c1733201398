import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Which folder of src/ may read or write which table? docs/architecture.md,
 * "Tables and their owners": every table belongs to one folder; another folder
 * asks the owner through a function. Only db/resolvers.ts (the pre-tenant
 * lookups) and migrations/ reach past that.
 *
 * The scan reads every file of src/ (tests aside) with TypeScript's parser and
 * looks at two things: SQL in string and template literals (`FROM x`,
 * `JOIN x`, `INTO x`, `UPDATE x`, `DELETE FROM x`, `USING x`, `TABLE x`, with
 * word boundaries, any case; a `${…}` in place of the table name counts as the
 * table "(dynamic)") and TypeORM calls that take an entity class
 * (`em.findOneBy(User, …)`, `em.create(Session, …)`, `getRepository(App)`),
 * mapped to the table its *.entity.ts names. It does not see tables listed
 * after a comma (`FROM a, b`); the code base joins with JOIN.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const SRC = path.join(ROOT, 'src');
const MIGRATIONS = path.join(ROOT, 'migrations');

/** Every table and the one folder under src/ that owns it (its entity, its queries). */
const OWNERS: Record<string, string> = {
  tenants: 'tenants',
  domains: 'tenants',
  domain_claims: 'tenants',
  connections: 'connections',
  connection_sp_keys: 'connections',
  connection_client_keys: 'connections',
  users: 'directory',
  groups: 'directory',
  group_members: 'directory',
  identities: 'directory',
  role_mappings: 'directory',
  sessions: 'sessions',
  logout_outbox: 'sessions',
  apps: 'apps',
  app_secrets: 'apps',
  scim_tokens: 'scim',
  scim_requests: 'scim',
  authorization_requests: 'tokens',
  authorization_codes: 'tokens',
  refresh_tokens: 'tokens',
  signing_keys: 'tokens',
  saml_requests: 'sso',
  saml_assertion_ids: 'sso',
  oidc_login_states: 'sso',
  saml_sessions: 'sso',
  saml_logout_requests: 'sso',
  login_traces: 'sso',
  audit_events: 'audit',
  audit_checkpoints: 'audit',
  webhook_outbox: 'webhooks',
  gatehouse_installation: 'db',
  app_webhook_secrets: 'webhooks',
  rate_limit_counters: 'http',
  portal_links: 'portal',
  setup_links: 'portal',
  portal_sessions: 'portal',
  tenant_exports: 'offboarding',
};

/** Tables without an entity, on purpose (db/installation.ts reads its row as the owner; a trigger and the resolvers keep domain_claims). */
const UNMAPPED = new Set(['gatehouse_installation', 'domain_claims']);

/** Files that may touch any table: the SECURITY DEFINER pre-tenant lookups (docs/architecture.md §1). */
const ANYWHERE = new Set(['src/db/resolvers.ts']);

/** Mechanisms in db/ that run SQL on a table someone else names ("(dynamic)" only). */
const MECHANISMS: Record<string, string> = {
  'src/db/outbox-worker.ts': 'the outbox mechanism; its owner (sessions, webhooks) passes the table',
  'src/db/outbox-deliveries.ts':
    'listing and re-sending outbox rows; its owner (sessions, webhooks) names the table',
  'src/db/database.ts': "TypeORM's migrations table, not a table of the model",
};

/**
 * Reads and writes across the line that exist today, by file and table, each
 * with why it is not (yet) a call to the owner. The test fails when an entry
 * no longer occurs, so the list only shrinks.
 */
const KNOWN_CROSS_READS: readonly { file: string; table: string; why: string }[] = [
  // "Still true?" is one statement on purpose (docs/architecture.md, the four questions).
  { file: 'src/sessions/live-grant.ts', table: 'apps', why: 'liveGrant: app present, in its one statement' },
  {
    file: 'src/sessions/live-grant.ts',
    table: 'users',
    why: 'liveGrant: person active, in its one statement',
  },
  {
    file: 'src/sessions/live-grant.ts',
    table: 'tenants',
    why: 'liveGrant: tenant live, in its one statement',
  },
  // sessions/ and webhooks/ sit below apps/ (apps revokes sessions and creates webhook secrets),
  // so they cannot ask apps/; each reads the columns it needs in the statement that needs them.
  {
    file: 'src/sessions/session-events.ts',
    table: 'apps',
    why: 'queues back-channel logouts only for apps with a logout URI, in one INSERT … SELECT',
  },
  {
    file: 'src/sessions/backchannel-logout.ts',
    table: 'apps',
    why: "the app's logout URI and signing alg at delivery time",
  },
  {
    file: 'src/webhooks/webhook-events.ts',
    table: 'apps',
    why: 'one outbox row per app with a webhook URL, in one INSERT … SELECT',
  },
  { file: 'src/webhooks/webhook-delivery.ts', table: 'apps', why: "the app's webhook URL at delivery time" },
  {
    file: 'src/apps/apps.service.ts',
    table: 'authorization_requests',
    why: 'deleting an app drops its pending sign-ins in the same transaction; apps/ sits below tokens/',
  },
  {
    file: 'src/directory/person-erasure.ts',
    table: 'saml_sessions',
    why: 'erasing a person drops the NameIDs SAML single logout kept for their sessions; sso/ sits above directory/',
  },
  {
    file: 'src/directory/person-erasure.ts',
    table: 'login_traces',
    why: 'erasing a person drops their login traces (issue 15); sso/ sits above directory/',
  },
  {
    file: 'src/sessions/cleanup.ts',
    table: 'login_traces',
    why: 'clearing kept raw responses at their 24 hours (an UPDATE, beside the generic expiry DELETE)',
  },
  {
    file: 'src/sessions/cleanup.ts',
    table: 'authorization_requests',
    why: 'the expiry sweep of pending sign-ins (platform rows); sessions/ sits below tokens/',
  },
  {
    file: 'src/sessions/cleanup.ts',
    table: '(dynamic)',
    why: 'the expiry sweep over TENANT_TABLES: codes, refresh tokens, SAML/OIDC login state, both outboxes',
  },
  {
    file: 'src/tenants/tenants.service.ts',
    table: 'scim_tokens',
    why: "deleting a tenant revokes its SCIM tokens in the deletion's transaction; scim/ sits above tenants/",
  },
  {
    file: 'src/offboarding/export-archive.ts',
    table: '(dynamic)',
    why: "a tenant export reads every tenant table's rows generically (ARCHIVE_TABLES), all in one snapshot",
  },
  {
    file: 'src/offboarding/import.service.ts',
    table: '(dynamic)',
    why: "a tenant import writes the archive's rows into ARCHIVE_TABLES in one transaction, columns from the catalog",
  },
  {
    file: 'src/scim/scim-auth.ts',
    table: 'tenants',
    why: 'token and tenant status in one statement on every uncached SCIM request',
  },
];

interface Touch {
  file: string;
  line: number;
  table: string;
  via: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return full.endsWith('.ts') && !full.endsWith('.test.ts') && !full.endsWith('.d.ts') ? [full] : [];
  });
}

const parse = (file: string) =>
  ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);

/** src/sso/saml/x.ts → sso; src/app.ts → app. */
function folderOf(relative: string): string {
  const [, first = '', ...rest] = relative.split('/');
  return rest.length === 0 ? first.replace(/\.ts$/, '') : first;
}

/** Entity class name → table, from every `@Entity('table') class X` in src/. */
function entityTables(): Map<string, { table: string; file: string }> {
  const found = new Map<string, { table: string; file: string }>();
  for (const file of sourceFiles(SRC).filter((f) => f.endsWith('.entity.ts'))) {
    const visit = (node: ts.Node): void => {
      if (ts.isClassDeclaration(node) && node.name) {
        for (const decorator of ts.getDecorators(node) ?? []) {
          const call = decorator.expression;
          if (
            ts.isCallExpression(call) &&
            ts.isIdentifier(call.expression) &&
            call.expression.text === 'Entity' &&
            call.arguments[0] &&
            ts.isStringLiteral(call.arguments[0])
          )
            found.set(node.name.text, { table: call.arguments[0].text, file: path.relative(ROOT, file) });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(parse(file));
  }
  return found;
}

/** Every table a migration creates. */
function migrationTables(): Set<string> {
  const tables = new Set<string>();
  for (const file of readdirSync(MIGRATIONS).filter((f) => f.endsWith('.ts')))
    for (const [, table = ''] of readFileSync(path.join(MIGRATIONS, file), 'utf8').matchAll(
      /\bcreate\s+(?:unlogged\s+)?table\s+(?:if\s+not\s+exists\s+)?"?([a-z_][a-z0-9_]*)/gi,
    ))
      tables.add(table.toLowerCase());
  return tables;
}

/** TypeORM EntityManager / Repository methods whose first argument is the entity class. */
const ENTITY_METHODS = new Set([
  'find',
  'findBy',
  'findOne',
  'findOneBy',
  'findOneOrFail',
  'findOneByOrFail',
  'findAndCount',
  'findAndCountBy',
  'exists',
  'existsBy',
  'count',
  'countBy',
  'insert',
  'update',
  'upsert',
  'delete',
  'softDelete',
  'restore',
  'save',
  'remove',
  'increment',
  'decrement',
  'create',
  'merge',
  'preload',
  'getRepository',
  'createQueryBuilder',
  'sum',
  'average',
  'minimum',
  'maximum',
]);

const SQL_TABLE =
  /\b(?:delete\s+from|from|join|into|update|using|table)\s+(?:only\s+)?("?[a-z_][a-z0-9_]*"?|\$\{)/gi;
const DYNAMIC = '(dynamic)';

function scan(entities: Map<string, { table: string }>): Touch[] {
  const touches: Touch[] = [];
  for (const full of sourceFiles(SRC)) {
    const file = path.relative(ROOT, full).split(path.sep).join('/');
    const source = parse(full);
    const lineOf = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    const sql = (node: ts.Node, text: string) => {
      for (const [, name = ''] of text.matchAll(SQL_TABLE)) {
        const table = name === '${' ? DYNAMIC : name.replaceAll('"', '').toLowerCase();
        if (table === DYNAMIC || table in OWNERS)
          touches.push({ file, line: lineOf(node), table, via: 'sql' });
      }
    };
    const visit = (node: ts.Node): void => {
      if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) sql(node, node.text);
      else if (ts.isTemplateExpression(node))
        // Placeholders stay visible as `${`, so `FROM ${table}` is seen as a dynamic table.
        sql(node, node.head.text + node.templateSpans.map((s) => '${}' + s.literal.text).join(''));
      else if (
        ts.isCallExpression(node) &&
        ts.isPropertyAccessExpression(node.expression) &&
        ENTITY_METHODS.has(node.expression.name.text) &&
        node.arguments[0] &&
        ts.isIdentifier(node.arguments[0])
      ) {
        const entity = entities.get(node.arguments[0].text);
        if (entity)
          touches.push({
            file,
            line: lineOf(node),
            table: entity.table,
            via: `${node.expression.name.text}(${node.arguments[0].text})`,
          });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return touches;
}

const entities = entityTables();
const touches = scan(entities);
const allowed = (t: Touch) =>
  ANYWHERE.has(t.file) ||
  OWNERS[t.table] === folderOf(t.file) ||
  (t.table === DYNAMIC && t.file in MECHANISMS);
const isKnown = (t: Touch) => KNOWN_CROSS_READS.some((k) => k.file === t.file && k.table === t.table);
const describeTouch = (t: Touch) =>
  `${t.file}:${t.line} ${t.table} via ${t.via} (owner: ${OWNERS[t.table] ?? 'none'})`;

describe('table ownership (docs/architecture.md, "Tables and their owners")', () => {
  it('places every table the migrations create, and only those', () => {
    const created = migrationTables();
    expect([...created].filter((t) => !(t in OWNERS)).sort()).toEqual([]);
    expect(Object.keys(OWNERS).filter((t) => !created.has(t))).toEqual([]);
  });

  it("keeps each table's entity in its owning folder", () => {
    const misplaced = [...entities.entries()]
      .filter(([, e]) => OWNERS[e.table] !== folderOf(e.file))
      .map(([name, e]) => `${name} (${e.table}) in ${e.file}, owner ${OWNERS[e.table] ?? 'none'}`);
    expect(misplaced).toEqual([]);
    expect(entities.size).toBe(Object.keys(OWNERS).filter((t) => !UNMAPPED.has(t)).length);
  });

  it('sees SQL in literals, entity calls and dynamic table names (the scan reads the tree)', () => {
    const seen = (file: string, table: string, via: string) =>
      touches.some((t) => t.file === file && t.table === table && t.via === via);
    expect(seen('src/apps/apps.service.ts', 'app_secrets', 'sql')).toBe(true);
    expect(seen('src/apps/apps.service.ts', 'apps', 'insert(App)')).toBe(true);
    expect(seen('src/directory/users.service.ts', 'users', 'createQueryBuilder(User)')).toBe(true);
    expect(touches.some((t) => t.table === DYNAMIC)).toBe(true);
  });

  it('lets only the owner (and db/resolvers.ts) touch a table', () => {
    const against = touches.filter((t) => !allowed(t) && !isKnown(t)).map(describeTouch);
    expect(against).toEqual([]);
  });

  it('lists as known cross reads only ones that still occur, each with a reason', () => {
    const gone = KNOWN_CROSS_READS.filter(
      (k) => !touches.some((t) => t.file === k.file && t.table === k.table && !allowed(t)),
    );
    expect(gone).toEqual([]);
    expect(KNOWN_CROSS_READS.filter((k) => k.why.trim() === '')).toEqual([]);
  });
});
