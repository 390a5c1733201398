import { decryptXml } from '@node-saml/node-saml/lib/xml.js';
import type { XmlLimits } from '../../connections/xml-limits.js';
import { LoginRefusedError, refuse } from '../reasons.js';
import { inspectDecryptedAssertion } from './saml-response-checks.js';

/**
 * Which of a connection's encryption keys opens this EncryptedAssertion, and
 * is what it holds one acceptable plaintext Assertion? Decrypting here, before
 * node-saml, does two things node-saml cannot: it tries every published key
 * (node-saml takes one `decryptionPvk`), and it bounds and inspects the
 * plaintext before any DOM of node-saml's sees it. node-saml then decrypts the
 * same bytes again with the key found here (the same xml-encryption call) and
 * verifies the signature over the decrypted assertion as for a plain one.
 *
 * Keys are tried in order (current, next, previous); only a failure to
 * decrypt moves to the next key. RSA-OAEP's integrity check makes a wrong key
 * fail at the key transport step, so a plaintext is only ever the one the
 * right key yields: a plaintext that is then refused is not retried.
 * Encryption is confidentiality, never authentication: anyone can encrypt to
 * our public certificate, so what decrypts is checked exactly like an
 * assertion that came in the clear (docs/security.md §1).
 */

export interface DecryptionKey {
  id: string;
  privateKeyPem: string;
}

export interface DecryptedAssertion {
  /** The key that opened it: node-saml's decryptionPvk for this Response. */
  key: DecryptionKey;
  /** Whether the decrypted assertion carries its own signature (picks the refusal's name only). */
  assertionSigned: boolean;
}

export async function decryptAssertion(input: {
  encryptedAssertionXml: string;
  keys: DecryptionKey[];
  allowSha1: boolean;
  xmlLimits: XmlLimits;
}): Promise<DecryptedAssertion> {
  if (input.keys.length === 0) refuse('saml_decryption_failed', 'the connection has no encryption key');
  const failures: string[] = [];
  for (const key of input.keys) {
    let plaintext: string;
    try {
      plaintext = await decryptXml(input.encryptedAssertionXml, key.privateKeyPem);
    } catch (error) {
      // The library's message only (never plaintext or key material) for the log's detail.
      failures.push(`${key.id}: ${error instanceof Error ? error.message.slice(0, 120) : 'failed'}`);
      continue;
    }
    if (typeof plaintext !== 'string' || plaintext.length === 0)
      refuse('saml_decryption_failed', `${key.id}: empty plaintext`);
    const { assertionSigned } = inspectDecryptedAssertion({
      assertionXml: plaintext,
      allowSha1: input.allowSha1,
      xmlLimits: input.xmlLimits,
    });
    return { key, assertionSigned };
  }
  throw new LoginRefusedError('saml_decryption_failed', failures.join('; '));
}
