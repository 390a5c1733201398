import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tenant admins sign in to the Admin Portal through their own IdP (issue 15):
 * a portal session of kind `tenant_admin`, bound to the Gatehouse session the
 * sign-in created (gatehouse_session_id) and to its person (user_id), so each
 * request asks liveSession whether that session and the admin role are still
 * true (src/portal/portal-sessions.ts). id_token is the ID token the portal
 * received, kept only as the `id_token_hint` of RP-Initiated Logout 1.0 §2.
 * No foreign keys: portal_sessions is a platform table (see 1766200000000).
 */
export class PortalTenantAdmins1766800000000 implements MigrationInterface {
  name = 'PortalTenantAdmins1766800000000';

  async up(q: QueryRunner): Promise<void> {
    for (const statement of UP) await q.query(statement);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const statement of DOWN) await q.query(statement);
  }
}

const UP: string[] = [
  `ALTER TABLE portal_sessions
     ADD COLUMN gatehouse_session_id uuid,
     ADD COLUMN user_id uuid,
     ADD COLUMN id_token text`,
  `ALTER TABLE portal_sessions DROP CONSTRAINT portal_sessions_kind_check`,
  `ALTER TABLE portal_sessions ADD CONSTRAINT portal_sessions_kind_check
     CHECK (kind IN ('operator', 'setup_link', 'tenant_admin'))`,
  `ALTER TABLE portal_sessions ADD CONSTRAINT portal_sessions_tenant_admin_check
     CHECK ((kind = 'tenant_admin') = (gatehouse_session_id IS NOT NULL AND user_id IS NOT NULL))`,
];

const DOWN: string[] = [
  `DELETE FROM portal_sessions WHERE kind = 'tenant_admin'`,
  `ALTER TABLE portal_sessions DROP CONSTRAINT portal_sessions_tenant_admin_check`,
  `ALTER TABLE portal_sessions DROP CONSTRAINT portal_sessions_kind_check`,
  `ALTER TABLE portal_sessions ADD CONSTRAINT portal_sessions_kind_check CHECK (kind IN ('operator', 'setup_link'))`,
  `ALTER TABLE portal_sessions DROP COLUMN id_token, DROP COLUMN user_id, DROP COLUMN gatehouse_session_id`,
];
