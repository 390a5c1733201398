import { t } from '../http/strings.js';
import type { LoginFailure } from './login-handoff.js';

/**
 * Why a sign-in did not go through: one code per check (docs/sso.md lists
 * them). The code is shown on the error page, written to the audit event and
 * sent to the main app as the OAuth error's reason; the message is what the
 * person reads. Neither ever carries the raw SAMLResponse or a token.
 */
interface ReasonSpec {
  status: number;
  message: string;
  error: LoginFailure['error'];
}

/** The words per code live with every other page string (src/http/strings.ts): a translation is one file. */
const m = t.reasons;

const denied = (status: number, message: string): ReasonSpec => ({ status, message, error: 'access_denied' });

export const REASONS = {
  // ---- the sign-in request and home realm discovery ----
  login_request_invalid: denied(400, m.login_request_invalid),
  discovery_email_invalid: denied(400, m.discovery_email_invalid),
  discovery_domain_unknown: denied(404, m.discovery_domain_unknown),
  discovery_organization_unknown: denied(404, m.discovery_organization_unknown),
  discovery_no_connection: denied(404, m.discovery_no_connection),
  discovery_connection_unknown: denied(404, m.discovery_connection_unknown),
  discovery_conflict: denied(400, m.discovery_conflict),
  connection_unknown: denied(404, m.connection_unknown),
  connection_misconfigured: denied(502, m.connection_misconfigured),
  handoff_invalid: denied(400, m.handoff_invalid),

  // ---- SAML ----
  saml_response_missing: denied(400, m.saml_response_missing),
  saml_response_malformed: denied(400, m.idpProblem),
  saml_dtd_forbidden: denied(400, m.idpProblem),
  saml_xml_comment_injection: denied(400, m.idpProblem),
  // Bounded parsing (src/connections/xml-limits.ts): refused before any DOM is built.
  saml_xml_too_deep: denied(400, m.idpProblem),
  saml_xml_too_many_elements: denied(400, m.idpProblem),
  saml_xml_too_many_attributes: denied(400, m.idpProblem),
  saml_xml_too_much_text: denied(400, m.idpProblem),
  saml_idp_error: denied(403, m.saml_idp_error),
  saml_assertion_count: denied(400, m.idpProblem),
  // Issue 16. Every failure to turn an EncryptedAssertion into one well-formed Assertion has this one
  // code (bad key, bad padding, bad tag, refused algorithm, garbage plaintext): distinct codes would
  // be an oracle for adaptive attacks on the ciphertext (Jager & Somorovsky 2011, CBC; Bleichenbacher).
  saml_decryption_failed: denied(400, m.saml_decryption_failed),
  saml_assertion_not_encrypted: denied(400, m.saml_assertion_not_encrypted),
  saml_signature_invalid: denied(400, m.idpProblem),
  // A genuine Response signature where the connection wants the assertion signed (signed_element).
  saml_assertion_unsigned_response_signed: denied(400, m.saml_assertion_unsigned_response_signed),
  saml_signature_algorithm_weak: denied(400, m.idpProblem),
  saml_issuer_mismatch: denied(400, m.idpProblem),
  saml_destination_mismatch: denied(400, m.idpProblem),
  saml_recipient_mismatch: denied(400, m.idpProblem),
  saml_audience_mismatch: denied(400, m.idpProblem),
  saml_subject_confirmation_invalid: denied(400, m.idpProblem),
  saml_subject_missing: denied(400, m.idpProblem),
  // A transient NameID changes at every login: without a persistent identifier attribute or an
  // email in a verified domain there is nothing to recognise the person by.
  saml_nameid_transient: denied(403, m.saml_nameid_transient),
  saml_assertion_expired: denied(400, m.saml_assertion_expired),
  saml_assertion_not_yet_valid: denied(400, m.saml_assertion_not_yet_valid),
  saml_in_response_to_invalid: denied(400, m.saml_in_response_to_invalid),
  saml_unsolicited_response: denied(400, m.saml_unsolicited_response),
  saml_assertion_replayed: denied(400, m.saml_assertion_replayed),
  saml_response_invalid: denied(400, m.idpProblem),

  // ---- SAML Single Logout (issue 16; src/sso/saml/single-logout.ts). A refused LogoutRequest revokes
  // nothing; a refused LogoutResponse revives nothing (the session ended before the IdP was asked).
  saml_logout_request_invalid: denied(400, m.logoutProblem),
  saml_logout_signature_invalid: denied(400, m.logoutProblem),
  saml_logout_issuer_mismatch: denied(400, m.logoutProblem),
  saml_logout_destination_mismatch: denied(400, m.logoutProblem),
  saml_logout_expired: denied(400, m.logoutProblem),
  saml_logout_replayed: denied(400, m.saml_logout_replayed),
  saml_logout_in_response_to_invalid: denied(400, m.saml_logout_in_response_to_invalid),
  saml_logout_response_failed: denied(502, m.saml_logout_response_failed),

  // ---- OIDC ----
  oidc_state_invalid: denied(400, m.oidc_state_invalid),
  oidc_idp_error: denied(403, m.oidc_idp_error),
  oidc_nonce_mismatch: denied(400, m.idpProblem),
  oidc_issuer_mismatch: denied(400, m.idpProblem),
  oidc_audience_mismatch: denied(400, m.idpProblem),
  oidc_id_token_expired: denied(400, m.oidc_id_token_expired),
  // `iat` later than now + GATEHOUSE_SSO_CLOCK_SKEW: a token minted for later use, or a broken IdP clock.
  oidc_id_token_issued_in_future: denied(400, m.oidc_id_token_issued_in_future),
  // O-13: an email the IdP does not say it verified is never used to find or create an account.
  oidc_email_unverified: denied(403, m.oidc_email_unverified),
  oidc_id_token_algorithm: denied(400, m.idpProblem),
  oidc_id_token_invalid: denied(400, m.idpProblem),
  oidc_token_exchange_failed: denied(502, m.idpProblem),
  oidc_provider_unavailable: {
    status: 502,
    message: m.oidc_provider_unavailable,
    error: 'temporarily_unavailable',
  },

  // ---- the person (completeLogin) ----
  email_missing: denied(403, m.email_missing),
  email_domain_not_verified: denied(403, m.email_domain_not_verified),
  email_domain_of_other_tenant: denied(403, m.email_domain_of_other_tenant),
  user_not_provisioned: denied(403, m.user_not_provisioned),
  user_suspended: denied(403, m.user_suspended),
  user_deleted: denied(403, m.user_deleted),
  user_ambiguous: denied(403, m.user_ambiguous),

  // The database could not be reached (docs/operations.md, "Database outages"): 503, not 500.
  temporarily_unavailable: {
    status: 503,
    message: m.temporarily_unavailable,
    error: 'temporarily_unavailable',
  },
  server_error: {
    status: 500,
    message: m.server_error,
    error: 'server_error',
  },
} as const satisfies Record<string, ReasonSpec>;

export type ReasonCode = keyof typeof REASONS;

export function isReasonCode(value: string): value is ReasonCode {
  return Object.hasOwn(REASONS, value);
}

/**
 * A sign-in refused for a known reason. `detail` is for the log only (it may
 * name what was expected and what arrived); the person sees the reason's message.
 */
export class LoginRefusedError extends Error {
  constructor(
    readonly reason: ReasonCode,
    readonly detail?: string,
    options: { cause?: unknown } = {},
  ) {
    super(`${reason}${detail ? `: ${detail}` : ''}`, options);
    this.name = 'LoginRefusedError';
  }
}

export function refuse(reason: ReasonCode, detail?: string): never {
  throw new LoginRefusedError(reason, detail);
}

export function loginFailureOf(reason: ReasonCode): LoginFailure {
  return { error: REASONS[reason].error, reason };
}
