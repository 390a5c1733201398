import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import request from 'supertest';
import { checkpointKey } from '../../src/audit/checkpoint-key.js';
import type { Secrets } from '../../src/config/secrets.js';
import { runExports } from '../../src/offboarding/export-worker.js';
import type { AdminTestApp } from '../support/admin.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import type { TestDatabase } from '../support/database.js';
import { createOidcConnection } from '../support/sso-factories.js';
import { GROUP_SCHEMA, issueToken, newUser, scimClient } from '../scim/support.js';

/**
 * A tenant with something of everything an export carries, built the way
 * Gatehouse builds it (admin API, SCIM), and the steps of the export round
 * trip, for test/offboarding/export*.test.ts and import*.test.ts.
 */

export const metadataXml = readFileSync('fixtures/saml/metadata/okta.xml', 'utf8');

export interface SeededTenant {
  tenantId: string;
  slug: string;
  samlConnectionId: string;
  oidcConnectionId: string;
  scimToken: string;
  userIds: string[];
  groupId: string;
}

/** Domains, a SAML and an OIDC connection, users and a group by SCIM, a role mapping, an identity, a checkpoint. */
export async function seedTenant(t: TestDatabase, a: AdminTestApp, slug: string): Promise<SeededTenant> {
  const tenantId = await a.createTenant(slug, `${slug} Inc.`);
  const base = `/admin/v1/tenants/${tenantId}`;
  const ok = (res: request.Response, status: number) => {
    if (res.status !== status) throw new Error(`${res.status} ${res.text}`);
    return res.body as Record<string, unknown>;
  };
  const domain = ok(
    await a
      .op()
      .post(`${base}/domains`)
      .send({ domain: `${slug}.test` }),
    201,
  );
  ok(
    await a
      .op()
      .post(`${base}/domains/${String(domain.id)}/verify`)
      .send({ method: 'manual', reason: 'export round trip' }),
    200,
  );
  const saml = ok(
    await a.op().post(`${base}/connections`).send({ type: 'saml', name: 'Okta', metadata_xml: metadataXml }),
    201,
  );
  const oidc = await createOidcConnection(t.db, a.secrets.masterKey, tenantId, {
    issuer: `https://idp.${slug}.test`,
    clientId: 'client-1',
    clientSecret: 'very-secret-client-secret',
  });
  ok(
    await a
      .op()
      .post(`${base}/role-mappings`)
      .send({ group: { display_name: 'Engineering' }, role: 'engineer' }),
    201,
  );
  const { token } = await issueToken(t.db, tenantId);
  const scim = scimClient(a.app, tenantId, token);
  const userIds: string[] = [];
  for (const name of ['alice', 'bob']) {
    const res = await scim.post(
      '/Users',
      newUser(`${name}@${slug}.test`, { externalId: `ext-${name}`, displayName: name.toUpperCase() }),
    );
    userIds.push(String(ok(res, 201).id));
  }
  const group = ok(
    await scim.post('/Groups', {
      schemas: [GROUP_SCHEMA],
      displayName: 'Engineering',
      members: userIds.map((value) => ({ value })),
    }),
    201,
  );
  // What a SAML login leaves: the person's identity at the connection.
  await t.db.withTenant(tenantId, (em) =>
    em.query('INSERT INTO identities (tenant_id, user_id, connection_id, subject) VALUES ($1, $2, $3, $4)', [
      tenantId,
      userIds[0],
      saml.id,
      `${slug}-alice-subject`,
    ]),
  );
  ok(await a.op().post(`${base}/audit-checkpoints`).send({}), 201);
  // One more event after the checkpoint: the head is past it, as in real life.
  ok(
    await a
      .op()
      .patch(base)
      .send({ name: `${slug} Incorporated` }),
    200,
  );
  return {
    tenantId,
    slug,
    samlConnectionId: String(saml.id),
    oidcConnectionId: oidc.id,
    scimToken: token,
    userIds,
    groupId: String(group.id),
  };
}

/** One pass of the export worker, as main.ts runs it. */
export async function produceExports(t: TestDatabase, app: TestApp): Promise<number> {
  return runExports({
    db: t.db,
    masterKey: app.secrets.masterKey,
    baseUrl: app.config.baseUrl,
    checkpointKey: (await checkpointKey(app.secrets.masterKey)).publicJwk,
  });
}

/** Requests, produces and downloads an export; the gzip'd archive. */
export async function exportArchive(t: TestDatabase, a: AdminTestApp, tenantId: string): Promise<Buffer> {
  const requested = await a.op().post(`/admin/v1/tenants/${tenantId}/exports`).send({});
  if (requested.status !== 202) throw new Error(`${requested.status} ${requested.text}`);
  await produceExports(t, a);
  const res = await a
    .op()
    .get(`/admin/v1/tenants/${tenantId}/exports/${String(requested.body.id)}/download`)
    .buffer(true)
    .parse(binary);
  if (res.status !== 200) throw new Error(`${res.status} ${res.text}`);
  return res.body as Buffer;
}

/** supertest parser keeping the body as bytes. */
export function binary(res: request.Response, done: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => done(null, Buffer.concat(chunks)));
}

export const archiveOf = (gzip: Buffer) =>
  JSON.parse(gunzipSync(gzip).toString('utf8')) as Record<string, unknown>;

/** A second, empty Gatehouse (its own database) of the same operator: the same master key and admin token. */
export function secondInstallation(
  t2: TestDatabase,
  secrets: Secrets,
): TestApp & { op: () => request.Agent } {
  const b = buildTestApp(t2, {}, { secrets });
  return { ...b, op: () => request.agent(b.app).set('Authorization', `Bearer ${secrets.adminToken}`) };
}

/** POST /admin/v1/tenant-imports with the archive as downloaded. */
export function importArchive(agent: request.Agent, body: Buffer) {
  return agent.post('/admin/v1/tenant-imports').set('Content-Type', 'application/gzip').send(body);
}
