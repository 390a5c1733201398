import { decodeJwt, decodeProtectedHeader } from 'jose';
import type * as client from 'openid-client';
import type { SigningAlg } from '../../src/sessions/token-signer.js';
import { createApp } from '../../src/apps/apps.service.js';
import { TestBrowser } from './browser.js';
import type { TestDatabase } from './database.js';
import { CALLBACK, mainAppClient, signIn } from './main-app.js';
import { createPerson, grantRole } from './oauth-fixtures.js';
import { startOAuthServer, type OAuthServer, type Person } from './oauth-server.js';

/**
 * Genuine tenant-admin access tokens, obtained the way a real admin gets one:
 * Gatehouse's own admin console is a registered app named by
 * GATEHOUSE_ADMIN_CLIENT_ID, the person holds role `admin` through a mapped
 * group, signs in through /oauth/authorize and the console exchanges the code
 * with openid-client. The node runs the real createTenantAdminResolver
 * (src/admin/tenant-admin-token.ts), not the stub of test/support/admin.ts.
 *
 * The IdP leg is DirectLoginFlow (test/support/oauth-server.ts), as in
 * test/tokens/tenant-admin.security.test.ts: what is under test is the token
 * and its resolution on /admin/v1, not the tenant's IdP.
 */
export interface TenantAdminServer {
  gh: OAuthServer;
  adminClientId: string;
  adminClient: client.Configuration;
  /** A person of the tenant with role `admin`, signed in through the admin console; their tokens. */
  signInAdmin(
    tenant: { tenantId: string; connectionId: string },
    email: string,
  ): Promise<{ person: Person; accessToken: string; idToken: string; refreshToken: string }>;
  /** A request to /admin/v1 with this bearer token. */
  admin(token: string, method: string, path: string, body?: unknown): Promise<Response>;
  close(): Promise<void>;
}

export async function startTenantAdminServer(t: TestDatabase): Promise<TenantAdminServer> {
  const registered = await createApp(
    t.db,
    { name: 'Gatehouse admin console', redirect_uris: [CALLBACK] },
    { actor: { type: 'operator', id: 'operator' }, requestId: 'test', sourceIp: undefined },
  );
  const gh = await startOAuthServer(t, { GATEHOUSE_ADMIN_CLIENT_ID: registered.client_id });
  const adminClient = await mainAppClient(gh, registered.client_id, registered.client_secret);
  return {
    gh,
    adminClientId: registered.client_id,
    adminClient,
    signInAdmin: async (tenant, email) => {
      const person = await createPerson(t.db, tenant, email);
      await grantRole(t.db, person, 'admin');
      gh.flow.people.set(email, person);
      const { tokens } = await signIn(adminClient, new TestBrowser(), email);
      if (!tokens.id_token || !tokens.refresh_token)
        throw new Error('sign-in returned no ID or refresh token');
      return {
        person,
        accessToken: tokens.access_token,
        idToken: tokens.id_token,
        refreshToken: tokens.refresh_token,
      };
    },
    admin: (token, method, path, body) =>
      fetch(`${gh.url}/admin/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    close: () => gh.close(),
  };
}

/**
 * Every row the tenant owns, table by table (every table with a tenant_id
 * column, found in the catalog), plus its tenants row: compared before and
 * after an attack to prove nothing of the tenant changed. Read through
 * withTenant because the tables FORCE row-level security (even the owner sees
 * no rows without a tenant set).
 */
export async function tenantSnapshot(t: TestDatabase, tenantId: string): Promise<Record<string, unknown>> {
  const tables = await t.asOwner<{ table_name: string }>(
    `SELECT c.table_name FROM information_schema.columns c
       JOIN information_schema.tables tb ON tb.table_name = c.table_name AND tb.table_schema = c.table_schema
      WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND tb.table_type = 'BASE TABLE'
      ORDER BY c.table_name`,
  );
  const snapshot: Record<string, unknown> = {};
  await t.db.withTenant(tenantId, async (em) => {
    for (const { table_name } of tables) {
      // The SCIM request log records the tenant's own requests (control requests too, written after the
      // answer); a row under another credential is what must never appear.
      const own =
        table_name === 'scim_requests' ? ' WHERE scim_token_id NOT IN (SELECT id FROM scim_tokens)' : '';
      const [row] = await em.query<{ rows: unknown }[]>(
        `SELECT coalesce(json_agg(x ORDER BY to_jsonb(x)::text), '[]'::json) AS rows FROM "${table_name}" x${own}`,
      );
      snapshot[table_name] = row?.rows;
    }
  });
  snapshot.tenant = await t.db.withPlatform((em) =>
    em.query('SELECT * FROM tenants WHERE id = $1', [tenantId]),
  );
  return snapshot;
}

/**
 * The same token with some claims changed, signed again with Gatehouse's own
 * current key (the node's SigningKeyStore): a token whose signature is genuine
 * but whose claims disagree with each other, as a signing bug or a confused
 * component would produce. Only the idor checks behind the signature can
 * refuse it.
 */
export async function resignWithGatehouseKey(
  keys: OAuthServer['keys'],
  token: string,
  changes: Record<string, unknown>,
): Promise<string> {
  const header = decodeProtectedHeader(token);
  if (!header.alg || !header.typ) throw new Error('token without alg or typ');
  return keys.sign({ ...decodeJwt(token), ...changes }, { alg: header.alg as SigningAlg, typ: header.typ });
}
