import request from 'supertest';
import { buildTestApp, type TestApp } from './app.js';
import type { TestDatabase } from './database.js';

/**
 * The admin API as the test/admin files use it: request agents for the
 * operator and for a tenant admin, and tenants created through the API.
 *
 * In production a tenant admin's token is an access token resolved by
 * src/admin/tenant-admin-token.ts (tested in test/tokens); here the resolver reads
 * "admin <userId> of <tenantId>" straight from a test token.
 */
export interface AdminTestApp extends TestApp {
  /** A request agent with the operator token. */
  op: () => request.Agent;
  /** A request agent with a token of that tenant's admin `userId` (the audit actor). */
  tenantAdmin: (tenantId: string, userId: string) => request.Agent;
  /** Creates a tenant as the operator; its id. */
  createTenant: (slug: string, name: string) => Promise<string>;
}

const TEST_TENANT_ADMIN = /^test-tenant-admin:([0-9a-f-]{36}):(.+)$/;

export function buildAdminTestApp(t: TestDatabase, env: Record<string, string> = {}): AdminTestApp {
  const a = buildTestApp(t, env, {
    resolveTenantAdmin: (token) => {
      const m = TEST_TENANT_ADMIN.exec(token);
      return Promise.resolve(m?.[1] && m[2] ? { kind: 'tenant_admin', tenantId: m[1], userId: m[2] } : null);
    },
  });
  const agent = (token: string) => request.agent(a.app).set('Authorization', `Bearer ${token}`);
  const op = () => agent(a.secrets.adminToken);
  return {
    ...a,
    op,
    tenantAdmin: (tenantId, userId) => agent(`test-tenant-admin:${tenantId}:${userId}`),
    createTenant: async (slug, name) => {
      const res = await op().post('/admin/v1/tenants').send({ slug, name });
      if (res.status !== 201) throw new Error(`tenant creation failed: ${res.status} ${res.text}`);
      return (res.body as { id: string }).id;
    },
  };
}
