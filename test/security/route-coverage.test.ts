import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildTestApp } from '../support/app.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { CROSS_TENANT_TESTS, EXEMPT, mountedRoutes } from './cross-tenant-registry.js';

/**
 * Issue 8: every mounted route that touches tenant data has a cross-tenant
 * test registered in cross-tenant-registry.ts, and every other route is
 * exempt with a reason. A route added without either fails here.
 *
 * The app is built as main.ts builds it (createApp through test/support/app.ts,
 * with an admin client configured so no optional router is left out) and its
 * Express 5 router stack is walked (mountedRoutes).
 */
const ROOT = join(import.meta.dirname, '..', '..');

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

const buildApp = () =>
  buildTestApp(t, { GATEHOUSE_ADMIN_CLIENT_ID: '00000000-0000-4000-8000-000000000001' }).app;

/** The names given to it()/test() in a test file (string literals, quotes unescaped). */
function testNames(source: string): Set<string> {
  const names = new Set<string>();
  const opener = /\b(?:it|test)(?:\.each\([\s\S]*?\]\s*\))?\s*\(\s*(['"`])/g;
  for (let m = opener.exec(source); m; m = opener.exec(source)) {
    const quote = m[1];
    let i = opener.lastIndex;
    let name = '';
    while (i < source.length && source[i] !== quote) {
      if (source[i] === '\\') i++;
      name += source[i];
      i++;
    }
    names.add(name);
  }
  return names;
}

function uncovered(routes: string[]): string[] {
  return routes.filter((r) => !(r in CROSS_TENANT_TESTS) && !(r in EXEMPT));
}

describe('cross-tenant route coverage', () => {
  it('finds the routes of every surface in the real app', () => {
    const routes = mountedRoutes(buildApp());
    // Guards the walker itself: were Express to hide its stack, every check below would pass on nothing.
    expect(routes.length).toBeGreaterThan(60);
    for (const known of [
      'GET /healthz',
      'GET /admin/v1/tenants/:tenantId',
      'POST /oauth/token',
      'GET /oidc/:connectionId/callback',
      'POST /scim/v2/:tenantId/Users/.search',
      'POST /scim/v2/:tenantId/.search',
    ])
      expect(routes).toContain(known);
  });

  it('has a cross-tenant test or an exemption with a reason for every mounted route', () => {
    const routes = mountedRoutes(buildApp());
    expect(uncovered(routes)).toEqual([]);
    const both = Object.keys(EXEMPT).filter((r) => r in CROSS_TENANT_TESTS);
    expect(both).toEqual([]);
    for (const [route, reason] of Object.entries(EXEMPT))
      expect({ route, reason: reason.trim().length > 10 }).toEqual({ route, reason: true });
  });

  it('names no route that is not mounted', () => {
    const routes = new Set(mountedRoutes(buildApp()));
    const stale = [...Object.keys(CROSS_TENANT_TESTS), ...Object.keys(EXEMPT)].filter((r) => !routes.has(r));
    expect(stale).toEqual([]);
  });

  it('refers only to tests that exist, by file and exact name', () => {
    const missing: string[] = [];
    const cache = new Map<string, Set<string>>();
    for (const [route, tests] of Object.entries(CROSS_TENANT_TESTS)) {
      expect({ route, tests: tests.length > 0 }).toEqual({ route, tests: true });
      for (const { file, test } of tests) {
        const path = join(ROOT, file);
        if (!file.endsWith('.test.ts') || !existsSync(path)) {
          missing.push(`${route}: no test file ${file}`);
          continue;
        }
        const names = cache.get(file) ?? testNames(readFileSync(path, 'utf8'));
        cache.set(file, names);
        if (!names.has(test)) missing.push(`${route}: no test "${test}" in ${file}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('flags a route added without a registered test', () => {
    const app = buildApp();
    app.get('/tenants-export/:tenantId', (_req, res) => {
      res.end();
    });
    expect(uncovered(mountedRoutes(app))).toEqual(['GET /tenants-export/:tenantId']);
  });
});
