import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Two connection settings that say how far the IdP is trusted (issue 8):
 *
 * - connections.saml_signed_element: which SAML signature a login relies on.
 *   'assertion' (default): the one Assertion must carry a valid signature;
 *   'response': the Response's signature must verify and cover the one
 *   Assertion consumed (ADFS, Shibboleth and some Okta/OneLogin apps can be
 *   set to sign only the Response); 'both': both signatures required.
 * - connections.oidc_trust_email_unverified: an OIDC IdP's email is used for
 *   JIT matching and creation only when its ID token says email_verified: true,
 *   unless this is set (default off).
 */
export class ConnectionTrustSettings1765100000000 implements MigrationInterface {
  name = 'ConnectionTrustSettings1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE connections ADD COLUMN saml_signed_element text NOT NULL DEFAULT 'assertion'
         CONSTRAINT connections_saml_signed_element_check CHECK (saml_signed_element IN ('assertion', 'response', 'both'))`,
    );
    await q.query(
      `ALTER TABLE connections ADD COLUMN oidc_trust_email_unverified boolean NOT NULL DEFAULT false`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE connections DROP COLUMN IF EXISTS oidc_trust_email_unverified`);
    await q.query(`ALTER TABLE connections DROP COLUMN IF EXISTS saml_signed_element`);
  }
}
