import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Do the folders of src/ depend on each other the way docs/architecture.md
 * says? Every import in src/ is read with TypeScript's own parser and mapped
 * from file to folder (the first path segment under src/; sso/saml and
 * tokens/grants belong to sso and tokens). The test fails on a folder cycle,
 * on an import the table below does not allow, and on a folder the table does
 * not place.
 *
 * Type-only imports count. They vanish from the emitted JavaScript, so they
 * cannot cause an initialisation-order bug, but the question here is which
 * folder knows about which: a type from another folder couples the importer to
 * that folder's model as surely as a value does, and a cycle through types
 * still means neither folder can be read or changed on its own.
 * (verbatimModuleSyntax makes them explicit, so failures name them "type".)
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const SRC = path.join(ROOT, 'src');

/**
 * Which folder may import which: the dependency direction of
 * docs/architecture.md §2, top (composition) to bottom; every entry points to
 * a lower line of its diagram. Anything not listed is refused. Root files are
 * folders of their own: main.ts and app.ts compose, entities.ts lists every
 * entity for the data source, errors.ts, digest.ts and periodic-job.ts are leaves.
 */
const LEAVES = ['config', 'errors', 'digest', 'periodic-job', 'observability'] as const;
const ALLOWED: Record<string, readonly string[]> = {
  // Composition: the only places that wire (main.ts → app.ts → everything).
  main: [
    'offboarding',
    'app',
    'cluster',
    'entities',
    'admin',
    'apps',
    'audit',
    'cli',
    'connections',
    'db',
    'directory',
    'http',
    'outbound',
    'scim',
    'sessions',
    'sso',
    'tenants',
    'tokens',
    'webhooks',
    ...LEAVES,
  ],
  app: [
    'portal',
    'entities',
    'admin',
    'apps',
    'audit',
    'connections',
    'db',
    'directory',
    'http',
    'outbound',
    'scim',
    'sessions',
    'sso',
    'tenants',
    'tokens',
    'webhooks',
    ...LEAVES,
  ],
  // The primary of GATEHOUSE_WORKERS (issue 13): opens the database once, forks main.ts's wiring.
  cluster: ['db', 'entities', ...LEAVES],
  cli: [
    'entities',
    'admin',
    'apps',
    'audit',
    'connections',
    'db',
    'directory',
    'outbound',
    'sessions',
    'tenants',
    'tokens',
    'webhooks',
    ...LEAVES,
  ],
  entities: [
    'offboarding',
    'portal',
    'apps',
    'audit',
    'connections',
    'directory',
    'http',
    'scim',
    'sessions',
    'sso',
    'tenants',
    'tokens',
    'webhooks',
  ],

  // Surfaces. admin manages what other surfaces own (SCIM tokens, signing keys)
  // and authenticates tenant admins with Gatehouse's own access tokens; tokens
  // hands a login to sso (tokens/authorize → sso) and sso answers through an
  // interface sso declares, so sso never imports tokens.
  admin: [
    'offboarding',
    'portal',
    'scim',
    'tokens',
    'sso', // issue 15: login traces (sso owns login_traces)
    'apps',
    'audit',
    'connections',
    'db',
    'directory',
    'http',
    'outbound',
    'sessions',
    'tenants',
    'webhooks',
    ...LEAVES,
  ],
  tokens: [
    'sso',
    'apps',
    'audit',
    'connections',
    'db',
    'directory',
    'http',
    'outbound',
    'sessions',
    'tenants',
    ...LEAVES,
  ],
  sso: [
    'apps',
    'audit',
    'connections',
    'db',
    'directory',
    'http',
    'outbound',
    'sessions',
    'tenants',
    ...LEAVES,
  ],
  scim: ['audit', 'db', 'directory', 'http', 'sessions', 'tenants', 'webhooks', ...LEAVES],
  // Tenant export and import (issue 12): reads every tenant table, renders people with scim's mapping.
  offboarding: ['scim', 'audit', 'db', 'directory', 'tenants', 'webhooks', ...LEAVES],
  // The Admin Portal (issue 15): pages over the services admin calls; admin asks it for links.
  portal: [
    'sso',
    'scim',
    'tokens',
    'apps',
    'audit',
    'connections',
    'db',
    'directory',
    'http',
    'outbound',
    'tenants',
    ...LEAVES,
  ],

  // Domain rooms. directory is where JIT and SCIM land; tenants, connections
  // and apps revoke sessions when they go away; webhooks is the outbox of
  // directory events for apps. Each table has one owner (table-ownership.test.ts):
  // directory asks connections for a connection's default role, connections
  // asks apps whether an app takes IdP-initiated logins.
  directory: ['audit', 'connections', 'db', 'sessions', 'tenants', 'webhooks', ...LEAVES],
  apps: ['audit', 'db', 'outbound', 'sessions', 'webhooks', ...LEAVES],
  connections: ['apps', 'audit', 'db', 'outbound', 'sessions', 'tenants', 'webhooks', ...LEAVES],
  tenants: ['audit', 'db', 'sessions', ...LEAVES],
  webhooks: ['audit', 'db', 'outbound', ...LEAVES],
  // "Is it still true?": sessions answers it for every token path and fans
  // revocation out (NOTIFY, back-channel logout through outbound).
  sessions: ['audit', 'db', 'outbound', ...LEAVES],

  // Shared lower rooms.
  audit: ['db', ...LEAVES],
  outbound: [...LEAVES],
  // Shared express middleware; the readiness probe asks db.
  http: ['db', ...LEAVES],
  db: [...LEAVES],
  config: ['errors', 'digest'],
  errors: [],
  digest: [],
  'periodic-job': [], // the loop every background pass runs through
  observability: [], // issue 11: spans and metric signals, imported by every layer
};

/**
 * Imports against the table that exist today, each named by the file that
 * makes it so it cannot hide and a second file cannot join it unnoticed: the
 * test fails when one disappears (delete its entry) as well as when a new one
 * appears. Listed in docs/architecture.md, "Known exceptions".
 */
const KNOWN_VIOLATIONS: readonly { file: string; from: string; to: string; why: string }[] = [];

interface Edge {
  from: string;
  to: string;
  file: string;
  line: number;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return full.endsWith('.ts') && !full.endsWith('.test.ts') && !full.endsWith('.d.ts') ? [full] : [];
  });
}

/** src/sso/saml/x.ts → sso; src/app.ts → app; outside src/ (migrations) → null. */
function folderOf(file: string): string | null {
  const relative = path.relative(SRC, file);
  if (relative.startsWith('..')) return null;
  const [first = '', ...rest] = relative.split(path.sep);
  return rest.length === 0 ? first.replace(/\.[jt]s$/, '') : first;
}

function isTypeOnly(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isExportDeclaration(node)) return node.isTypeOnly;
  const clause = node.importClause;
  if (!clause) return false; // a side-effect import runs the module
  if (clause.isTypeOnly) return true;
  const named = clause.namedBindings;
  return (
    !clause.name &&
    named !== undefined &&
    ts.isNamedImports(named) &&
    named.elements.length > 0 &&
    named.elements.every((e) => e.isTypeOnly)
  );
}

/** Every relative import, re-export and dynamic import() of every file in src/. */
function importEdges(): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const add = (node: ts.Node, specifier: string, typeOnly: boolean) => {
      if (!specifier.startsWith('.')) return; // packages and node: builtins
      const from = folderOf(file);
      const to = folderOf(path.resolve(path.dirname(file), specifier));
      if (!from || !to || from === to) return;
      const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      edges.push({ from, to, file: path.relative(ROOT, file), line, typeOnly });
    };
    const visit = (node: ts.Node): void => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
        if (ts.isStringLiteral(node.moduleSpecifier)) add(node, node.moduleSpecifier.text, isTypeOnly(node));
      } else if (
        ts.isCallExpression(node) &&
        node.expression.kind === ts.SyntaxKind.ImportKeyword &&
        node.arguments[0] &&
        ts.isStringLiteral(node.arguments[0])
      ) {
        add(node, node.arguments[0].text, false);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return edges;
}

const describeEdge = (e: Edge) => `${e.file}:${e.line} (${e.from} → ${e.to}${e.typeOnly ? ', type' : ''})`;
const isKnown = (e: Edge) =>
  KNOWN_VIOLATIONS.some((k) => k.file === e.file && k.from === e.from && k.to === e.to);

/** Tarjan's strongly connected components: every group of folders that reach each other. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) connect(v);
  return found;
}

function graphOf(pairs: Iterable<{ from: string; to: string }>): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const { from, to } of pairs) {
    if (!graph.has(from)) graph.set(from, new Set());
    if (!graph.has(to)) graph.set(to, new Set());
    graph.get(from)!.add(to);
  }
  return graph;
}

const edges = importEdges();

describe('import direction (docs/architecture.md)', () => {
  it('reads the imports of src/ (the parser sees the tree)', () => {
    expect(edges.some((e) => e.from === 'app' && e.to === 'tokens' && !e.typeOnly)).toBe(true);
    expect(edges.some((e) => e.typeOnly)).toBe(true);
  });

  it('places every folder of src/ in the documented table', () => {
    const folders = new Set(edges.flatMap((e) => [e.from, e.to]));
    for (const entry of readdirSync(SRC, { withFileTypes: true }))
      if (entry.isDirectory() || (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')))
        folders.add(entry.name.replace(/\.ts$/, ''));
    expect([...folders].filter((f) => !(f in ALLOWED)).sort()).toEqual([]);
  });

  it('documents a direction without a cycle', () => {
    const table = Object.entries(ALLOWED).flatMap(([from, tos]) => tos.map((to) => ({ from, to })));
    expect(cycles(graphOf(table))).toEqual([]);
  });

  it('has no folder cycle in src/', () => {
    // Each cycle is named by its folders and by the imports in it that go against the table.
    const found = cycles(graphOf(edges.filter((e) => !isKnown(e)))).map((folders) => ({
      folders,
      against: edges
        .filter((e) => folders.includes(e.from) && folders.includes(e.to))
        .filter((e) => !(ALLOWED[e.from] ?? []).includes(e.to))
        .map(describeEdge),
    }));
    expect(found).toEqual([]);
  });

  it('imports only in the documented direction', () => {
    const refused = edges
      .filter((e) => !(ALLOWED[e.from] ?? []).includes(e.to) && !isKnown(e))
      .map(describeEdge);
    expect(refused).toEqual([]);
  });

  it('lists as known exceptions only imports that still exist', () => {
    const gone = KNOWN_VIOLATIONS.filter(
      (k) => !edges.some((e) => e.file === k.file && e.from === k.from && e.to === k.to),
    );
    expect(gone).toEqual([]);
  });

  it('keeps the tokens/ pipelines in one direction: authorize → status → grants → keys', () => {
    // docs/architecture.md §2: tokens/ is split by pipeline; files at tokens/ root are the shared parts
    // (routers that compose, oauth errors, live-session, session-revocation) and are not a pipeline.
    const PIPELINES = ['authorize', 'status', 'grants', 'keys'];
    const TOKENS = path.join(SRC, 'tokens');
    const pipelineOf = (file: string): string | null => {
      const [first, ...rest] = path.relative(TOKENS, file).split(path.sep);
      return rest.length > 0 && first && PIPELINES.includes(first) ? first : null;
    };
    const against: string[] = [];
    for (const file of sourceFiles(TOKENS)) {
      const from = pipelineOf(file);
      if (!from) continue;
      const text = readFileSync(file, 'utf8');
      for (const [, specifier = ''] of text.matchAll(/from '(\.[^']+)'/g)) {
        const to = pipelineOf(path.resolve(path.dirname(file), specifier));
        if (to && to !== from && PIPELINES.indexOf(to) < PIPELINES.indexOf(from))
          against.push(`${path.relative(ROOT, file)} (${from} → ${to})`);
      }
    }
    expect(against).toEqual([]);
  });
});
