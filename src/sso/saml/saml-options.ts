import { randomBytes } from 'node:crypto';
import { ValidateInResponseTo, type CacheProvider, type SamlConfig } from '@node-saml/node-saml';
import type { Connection } from '../../connections/connection.entity.js';
import { serviceProviderDetails } from '../../connections/sp.js';

export interface SamlTiming {
  /** Allowed clock difference with the IdP, in milliseconds. */
  clockSkewMs: number;
  /** How long an AuthnRequest waits for its answer, in milliseconds. */
  requestTtlMs: number;
  /** An assertion older than this (from its IssueInstant) is refused, in milliseconds. */
  maxAssertionAgeMs: number;
}

export interface SamlOptionsInput {
  baseUrl: string;
  connection: Connection;
  timing: SamlTiming;
  cacheProvider: CacheProvider;
  /**
   * Starting a login: node-saml saves the AuthnRequest id in the cache. At the
   * ACS node-saml never checks InResponseTo: its check reads the unsigned
   * Response attribute, so saml-flow.ts checks the signed one itself.
   */
  saveRequestIds: boolean;
  /** The Response element carries its own signature: then it must verify too. */
  responseSigned: boolean;
}

/**
 * node-saml options for one connection, every security option set explicitly
 * (CONVENTIONS: never a library default for security):
 * - signatures: by one of the connection's certificates (several during a
 *   rotation). connection.samlSignedElement says which must be there:
 *   'assertion' (default) — the Assertion consumed is signed; 'response' —
 *   the Response is signed, and node-saml then takes the assertion out of the
 *   verified Response bytes (getSignedAssertion), so the signature covers it;
 *   'both'. A signature on the Response, when there is one, must verify in
 *   every mode;
 * - audience = our SP entity id for this connection, so an assertion made for
 *   another connection or tenant never passes;
 * - InResponseTo: request ids saved in the Postgres-backed cache when a
 *   login starts; at the ACS, the signed SubjectConfirmationData/@InResponseTo
 *   is checked against it by saml-flow.ts (bound to the browser, consumed once);
 * - no RequestedAuthnContext: IdPs using MFA or passwordless would refuse a
 *   request for PasswordProtectedTransport;
 * - no NameIDPolicy: the IdP's configured NameID format is used.
 */
export function samlOptions(input: SamlOptionsInput): SamlConfig {
  const { connection, timing } = input;
  const sp = serviceProviderDetails(input.baseUrl, connection.id);
  return {
    callbackUrl: sp.acsUrl,
    issuer: sp.entityId,
    audience: sp.entityId,
    entryPoint: connection.samlSsoUrl ?? undefined,
    idpIssuer: connection.samlIdpEntityId ?? undefined,
    idpCert: connection.samlCertificates.map((c) => c.pem),
    wantAssertionsSigned: connection.samlSignedElement !== 'response',
    wantAuthnResponseSigned: connection.samlSignedElement !== 'assertion' || input.responseSigned,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    acceptedClockSkewMs: timing.clockSkewMs,
    maxAssertionAgeMs: timing.maxAssertionAgeMs,
    validateInResponseTo: input.saveRequestIds ? ValidateInResponseTo.always : ValidateInResponseTo.never,
    requestIdExpirationPeriodMs: timing.requestTtlMs,
    cacheProvider: input.cacheProvider,
    disableRequestedAuthnContext: true,
    identifierFormat: null,
    allowCreate: true,
    forceAuthn: false,
    passive: false,
    authnRequestBinding: 'HTTP-Redirect',
    skipRequestCompression: false,
    disableRequestAcsUrl: false,
    racComparison: 'exact',
    signMetadata: false,
    // An EncryptedAssertion: saml-flow.ts sets the one key that opened it (assertion-decryption.ts).
    decryptionPvk: undefined,
    generateUniqueId: () => `_${randomBytes(20).toString('hex')}`,
  };
}
