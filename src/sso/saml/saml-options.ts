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
  /** The answer carries InResponseTo: it must match a pending request of this browser. */
  solicited: boolean;
  /** The Response element carries its own signature: then it must verify too. */
  responseSigned: boolean;
}

/**
 * node-saml options for one connection, every security option set explicitly
 * (CONVENTIONS: never a library default for security):
 * - signatures: by one of the connection's certificates (several during a
 *   rotation); the Assertion consumed must be signed, and a signature on the
 *   Response, when there is one, must verify as well;
 * - audience = our SP entity id for this connection, so an assertion made for
 *   another connection or tenant never passes;
 * - InResponseTo checked always for SP-initiated answers against the
 *   Postgres-backed cache (bound to the browser, consumed once); never for
 *   IdP-initiated ones, which the caller admits only where the connection allows;
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
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: input.responseSigned,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    acceptedClockSkewMs: timing.clockSkewMs,
    maxAssertionAgeMs: timing.maxAssertionAgeMs,
    validateInResponseTo: input.solicited ? ValidateInResponseTo.always : ValidateInResponseTo.never,
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
    generateUniqueId: () => `_${randomBytes(20).toString('hex')}`,
  };
}
