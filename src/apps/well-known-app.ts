import type { EntityManager } from 'typeorm';
import { recordAudit, type AuditContext } from '../audit/audit.service.js';
import { type Database, PLATFORM_TENANT_ID } from '../db/database.js';
import { App } from './app.entity.js';
import { appView, type AppView } from './apps.service.js';

/**
 * Which app is Gatehouse's own public client with this fixed id, creating it
 * exactly once however many nodes ask at the same moment? The caller derives
 * the id (a well-known identity, e.g. the Admin Portal's client for its
 * callback URL); the row is inserted with `ON CONFLICT (id) DO NOTHING` and
 * then read, so concurrent first uses on any number of nodes leave one app,
 * and only the insert that happened writes `app.created`. A deleted app keeps
 * its row (soft delete): the answer is then null, and the caller moves to its
 * next id.
 */
export interface WellKnownPublicApp {
  name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
}

export async function ensureWellKnownPublicApp(
  db: Database,
  id: string,
  input: WellKnownPublicApp,
  ctx: AuditContext,
): Promise<AppView | null> {
  const now = new Date();
  return db.withTenant(PLATFORM_TENANT_ID, async (em) => {
    const row = em.create(App, {
      id,
      name: input.name,
      // A public client (RFC 6749 §2.1): no secret is issued, so nothing else is written with it.
      clientType: 'public',
      redirectUris: input.redirect_uris,
      postLogoutRedirectUris: input.post_logout_redirect_uris,
      backchannelLogoutUri: null,
      tokenSigningAlg: 'ES256',
      webhookUrl: null,
      initiateLoginUri: null,
      createdAt: now,
      updatedAt: now,
      deletedAt: null,
    });
    const inserted = await em
      .createQueryBuilder()
      .insert()
      .into(App)
      .values(row)
      .orIgnore()
      .returning('id')
      .execute();
    if ((inserted.raw as unknown[]).length === 1) {
      const view = appView(row, []);
      await recordAudit(em, PLATFORM_TENANT_ID, {
        ...ctx,
        action: 'app.created',
        target: { type: 'app', id },
        after: { ...view },
      });
      return view;
    }
    // Another node's insert won (its commit came first: ON CONFLICT waited for it), or the app exists already.
    return liveApp(em, id);
  });
}

async function liveApp(em: EntityManager, id: string): Promise<AppView | null> {
  const app = await em.findOneBy(App, { id });
  return app && !app.deletedAt ? appView(app, []) : null;
}
