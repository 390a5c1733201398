import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tokens at rest are sealed (docs/security.md): from this release a tenant
 * admin's ID token in portal_sessions.id_token is AES-256-GCM under the master
 * key, bound to its row (src/portal/portal-sessions.ts), in secret-box's
 * `v1.<iv>.<body>.<tag>` form. Values written before it are clear-text JWTs
 * (`eyJ…`): cleared here. Their sessions go on; their sign-out only offers no
 * `id_token_hint` (RP-Initiated Logout then asks the person to confirm).
 * Nothing to undo: a cleared token cannot come back, and the older code reads
 * a sealed value as an unusable hint, never as a credential.
 */
export class PortalIdTokenSealed1767400000000 implements MigrationInterface {
  name = 'PortalIdTokenSealed1767400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `UPDATE portal_sessions SET id_token = NULL WHERE id_token IS NOT NULL AND id_token NOT LIKE 'v1.%'`,
    );
  }

  async down(): Promise<void> {
    // Nothing: sealed values stay sealed (see above).
  }
}
