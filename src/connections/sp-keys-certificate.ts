import 'reflect-metadata'; // @peculiar/x509 resolves its providers through tsyringe, which needs it loaded.
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * How is a new SP key pair made? An RSA-2048 key (RSA because every IdP that
 * encrypts assertions transports the content key with RSA-OAEP, and RSA-SHA256
 * is what IdPs verify AuthnRequests with) and a self-signed X.509 certificate
 * around its public key. node:crypto cannot write certificates, so
 * @peculiar/x509 (WebCrypto, no native code, no openssl binary) builds it.
 * SAML peers use the certificate only as a container for the public key
 * (SAML metadata §2.4.1.1): self-signed is the norm, and the long validity
 * (10 years) avoids IdPs that refuse expired ones; rotation, not expiry, is how
 * a key is replaced.
 */

export const SP_KEY_VALIDITY_DAYS = 3650;
const RSA = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  publicExponent: new Uint8Array([1, 0, 1]),
  modulusLength: 2048,
} as const;

export interface GeneratedSpKey {
  certificatePem: string;
  privateKeyPem: string;
  notAfter: Date;
}

function pem(label: string, der: ArrayBuffer): string {
  const body = Buffer.from(der)
    .toString('base64')
    .replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

export async function generateSpKey(input: { commonName: string; now: Date }): Promise<GeneratedSpKey> {
  const keys = await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify']);
  const certificatePem = await selfSignedCertificate({
    keys,
    commonName: input.commonName,
    now: input.now,
    encipherment: true,
  });
  return {
    certificatePem,
    privateKeyPem: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
    notAfter: new Date(new X509Certificate(certificatePem).validTo),
  };
}

/**
 * A self-signed certificate (PEM) around an existing key pair, signed with it:
 * RSA keys as RSASSA-PKCS1-v1_5 SHA-256, EC P-256 keys as ECDSA SHA-256. Also
 * the container for the OIDC client keys (client-keys.ts): Entra ID accepts
 * private_key_jwt only from a key uploaded as a certificate.
 */
export async function selfSignedCertificate(input: {
  keys: CryptoKeyPair;
  commonName: string;
  now: Date;
  /** RFC 5280 §4.2.1.3: keyEncipherment too (SP keys that decrypt), or digitalSignature only. */
  encipherment: boolean;
}): Promise<string> {
  const notBefore = new Date(input.now.getTime() - 60_000);
  const notAfter = new Date(input.now.getTime() + SP_KEY_VALIDITY_DAYS * 86_400_000);
  // RFC 5280 §4.1.2.2: a positive serial of at most 20 octets, unique per issuer (random, first bit clear).
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const signingAlgorithm =
    input.keys.privateKey.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : RSA;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial.toString('hex'),
      name: [{ CN: [input.commonName.slice(0, 64)] }],
      notBefore,
      notAfter,
      keys: input.keys,
      signingAlgorithm,
      extensions: [
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | (input.encipherment ? x509.KeyUsageFlags.keyEncipherment : 0),
        ),
      ],
    },
    webcrypto as unknown as Crypto,
  );
  return certificate.toString('pem');
}
