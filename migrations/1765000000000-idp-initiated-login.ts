import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * IdP-initiated SAML logins land in the main app through OpenID Connect
 * third-party initiated login (OIDC Core §4).
 *
 * - apps.initiate_login_uri: client metadata (OIDC Dynamic Client Registration
 *   §2): where Gatehouse sends the browser, with `iss` and `login_hint`, so the
 *   app starts a normal code flow with its own state, nonce and PKCE. https, or
 *   http on loopback, like redirect URIs.
 * - connections.idp_initiated_app_id: the app an IdP-initiated login of this
 *   connection goes to. A plain uuid, no foreign key: apps are platform rows
 *   (soft-deleted), so the connections service checks it names a live app with
 *   an initiate_login_uri, and the login checks again.
 */
export class IdpInitiatedLogin1765000000000 implements MigrationInterface {
  name = 'IdpInitiatedLogin1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE apps ADD COLUMN initiate_login_uri text`);
    await q.query(`ALTER TABLE connections ADD COLUMN idp_initiated_app_id uuid`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE connections DROP COLUMN IF EXISTS idp_initiated_app_id`);
    await q.query(`ALTER TABLE apps DROP COLUMN IF EXISTS initiate_login_uri`);
  }
}
