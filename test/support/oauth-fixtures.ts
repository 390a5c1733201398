import { randomUUID } from 'node:crypto';
import type { Database } from '../../src/db/database.js';
import { createTenant } from './factories.js';
import type { Person } from './oauth-server.js';

/** A tenant with one active SAML connection (default role `member` unless told). */
export async function createTenantWithConnection(
  db: Database,
  slug: string,
  defaultRole = 'member',
): Promise<{ tenantId: string; connectionId: string }> {
  const tenantId = await createTenant(db, slug);
  const connectionId = randomUUID();
  await db.withTenant(tenantId, (em) =>
    em.query(
      `INSERT INTO connections (tenant_id, id, type, name, status, default_role)
       VALUES ($1, $2, 'saml', 'Test IdP', 'active', $3)`,
      [tenantId, connectionId, defaultRole],
    ),
  );
  return { tenantId, connectionId };
}

/** An active person in the tenant, signing in through the connection. */
export async function createPerson(
  db: Database,
  tenant: { tenantId: string; connectionId: string },
  email: string,
  profile: { givenName?: string; familyName?: string; emailVerified?: boolean } = {},
): Promise<Person> {
  const userId = randomUUID();
  await db.withTenant(tenant.tenantId, (em) =>
    em.query(
      `INSERT INTO users (tenant_id, id, user_name, email, email_verified, given_name, family_name)
       VALUES ($1, $2, $3, $3, $4, $5, $6)`,
      [
        tenant.tenantId,
        userId,
        email,
        profile.emailVerified ?? true,
        profile.givenName ?? null,
        profile.familyName ?? null,
      ],
    ),
  );
  return { tenantId: tenant.tenantId, userId, connectionId: tenant.connectionId };
}

/** Puts the person in a group mapped to `role` (how roles reach tokens). */
export async function grantRole(db: Database, person: Person, role: string): Promise<void> {
  const groupId = randomUUID();
  const groupName = `group-${role}-${groupId.slice(0, 8)}`;
  await db.withTenant(person.tenantId, async (em) => {
    await em.query(`INSERT INTO groups (tenant_id, id, display_name) VALUES ($1, $2, $3)`, [
      person.tenantId,
      groupId,
      groupName,
    ]);
    await em.query(`INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ($1, $2, $3)`, [
      person.tenantId,
      groupId,
      person.userId,
    ]);
    await em.query(
      `INSERT INTO role_mappings (tenant_id, group_attribute, group_value, role) VALUES ($1, 'display_name', $2, $3)`,
      [person.tenantId, groupName, role],
    );
  });
}

/** The session row behind a token, read as the tenant. */
export async function sessionRow(
  db: Database,
  tenantId: string,
  sessionId: string,
): Promise<{ revoked_at: Date | null; revoked_reason: string | null } | undefined> {
  const rows = await db.withTenant(tenantId, (em) =>
    em.query<{ revoked_at: Date | null; revoked_reason: string | null }[]>(
      'SELECT revoked_at, revoked_reason FROM sessions WHERE id = $1',
      [sessionId],
    ),
  );
  return rows[0];
}
