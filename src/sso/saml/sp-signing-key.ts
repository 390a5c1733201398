import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { Config } from '../../config/config.js';

/**
 * The optional deployment-wide SP key pair that signs AuthnRequests
 * (HTTP-Redirect binding, RSA-SHA256) for connections with
 * `saml_sign_authn_requests` and no signing key of their own (issue 16:
 * connections/sp-keys.service.ts has the precedence). Read from the
 * operator's PEM files at start; its certificate is published in the SP
 * metadata of the connections it serves, for the IdP to verify against.
 */
export interface SpSigningKey {
  privateKeyPem: string;
  certificatePem: string;
}

export function loadSpSigningKey(
  sso: Pick<Config['sso'], 'spSigningKeyFile' | 'spSigningCertFile'>,
): SpSigningKey | null {
  const { spSigningKeyFile, spSigningCertFile } = sso;
  if (!spSigningKeyFile && !spSigningCertFile) return null;
  if (!spSigningKeyFile || !spSigningCertFile)
    throw new Error(
      'GATEHOUSE_SAML_SP_SIGNING_KEY_FILE and GATEHOUSE_SAML_SP_SIGNING_CERT_FILE are set together',
    );
  const privateKeyPem = readFileSync(spSigningKeyFile, 'utf8');
  const certificatePem = readFileSync(spSigningCertFile, 'utf8');
  const certificate = new X509Certificate(certificatePem);
  if (!certificate.checkPrivateKey(createPrivateKey(privateKeyPem)))
    throw new Error('the SAML SP signing certificate does not match its private key');
  if (certificate.publicKey.asymmetricKeyType !== 'rsa')
    throw new Error('the SAML SP signing key must be RSA (AuthnRequests are signed with RSA-SHA256)');
  return { privateKeyPem, certificatePem };
}
