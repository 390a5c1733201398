import { randomUUID } from 'node:crypto';
import type { Database } from '../../src/db/database.js';

export async function createTenant(db: Database, slug = `t-${randomUUID().slice(0, 8)}`): Promise<string> {
  const id = randomUUID();
  await db.withPlatform((em) =>
    em.query('INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $3)', [id, slug, slug]),
  );
  return id;
}

export async function createUser(db: Database, tenantId: string, userName: string): Promise<string> {
  const id = randomUUID();
  await db.withTenant(tenantId, (em) =>
    em.query('INSERT INTO users (tenant_id, id, user_name, email) VALUES ($1, $2, $3, $3)', [
      tenantId,
      id,
      userName,
    ]),
  );
  return id;
}
