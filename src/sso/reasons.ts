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

const denied = (status: number, message: string): ReasonSpec => ({ status, message, error: 'access_denied' });

const LOGOUT_PROBLEM =
  'Your identity provider sent a sign-out message Gatehouse cannot accept. Ask your IT administrator to check the single logout configuration.';

const IDP_PROBLEM =
  'Your identity provider sent an answer Gatehouse cannot accept. Ask your IT administrator to check the single sign-on configuration.';

export const REASONS = {
  // ---- the sign-in request and home realm discovery ----
  login_request_invalid: denied(
    400,
    'This sign-in link is incomplete or malformed. Start again from your application.',
  ),
  discovery_email_invalid: denied(400, 'Enter a work email address such as name@company.com.'),
  discovery_domain_unknown: denied(
    404,
    'No organization has set up single sign-on for this email domain. Check the address or ask your IT administrator.',
  ),
  discovery_organization_unknown: denied(
    404,
    'This organization is not known to Gatehouse, or is not active.',
  ),
  discovery_no_connection: denied(
    404,
    'Your organization has no active single sign-on connection. Ask your IT administrator.',
  ),
  discovery_connection_unknown: denied(404, 'This sign-in connection does not exist or is not active.'),
  discovery_conflict: denied(
    400,
    'The requested connection does not belong to the organization of this email.',
  ),
  connection_unknown: denied(404, 'This sign-in connection does not exist or is not active.'),
  connection_misconfigured: denied(
    502,
    "Your organization's single sign-on connection is not completely configured. Ask your IT administrator.",
  ),
  handoff_invalid: denied(
    400,
    'This sign-in step expired or was opened in another browser. Start again from your application.',
  ),

  // ---- SAML ----
  saml_response_missing: denied(400, 'The sign-in answer from your identity provider is missing.'),
  saml_response_malformed: denied(400, IDP_PROBLEM),
  saml_dtd_forbidden: denied(400, IDP_PROBLEM),
  saml_xml_comment_injection: denied(400, IDP_PROBLEM),
  // Bounded parsing (src/connections/xml-limits.ts): refused before any DOM is built.
  saml_xml_too_deep: denied(400, IDP_PROBLEM),
  saml_xml_too_many_elements: denied(400, IDP_PROBLEM),
  saml_xml_too_many_attributes: denied(400, IDP_PROBLEM),
  saml_xml_too_much_text: denied(400, IDP_PROBLEM),
  saml_idp_error: denied(403, 'Your identity provider did not sign you in.'),
  saml_assertion_count: denied(400, IDP_PROBLEM),
  // Issue 16. Every failure to turn an EncryptedAssertion into one well-formed Assertion has this one
  // code (bad key, bad padding, bad tag, refused algorithm, garbage plaintext): distinct codes would
  // be an oracle for adaptive attacks on the ciphertext (Jager & Somorovsky 2011, CBC; Bleichenbacher).
  saml_decryption_failed: denied(
    400,
    "Gatehouse could not decrypt the sign-in answer from your identity provider. Ask your IT administrator to check that the identity provider encrypts to the certificate in this connection's SP metadata.",
  ),
  saml_assertion_not_encrypted: denied(
    400,
    'This connection accepts only encrypted sign-in answers, and your identity provider sent one in the clear. Ask your IT administrator to turn on assertion encryption at the identity provider.',
  ),
  saml_signature_invalid: denied(400, IDP_PROBLEM),
  // A genuine Response signature where the connection wants the assertion signed (signed_element).
  saml_assertion_unsigned_response_signed: denied(
    400,
    'Your identity provider signed the sign-in answer but not the assertion inside it, which this connection requires. Ask your IT administrator to have the identity provider sign the assertion, or to set the connection\'s signed_element to "response".',
  ),
  saml_signature_algorithm_weak: denied(400, IDP_PROBLEM),
  saml_issuer_mismatch: denied(400, IDP_PROBLEM),
  saml_destination_mismatch: denied(400, IDP_PROBLEM),
  saml_recipient_mismatch: denied(400, IDP_PROBLEM),
  saml_audience_mismatch: denied(400, IDP_PROBLEM),
  saml_subject_confirmation_invalid: denied(400, IDP_PROBLEM),
  saml_subject_missing: denied(400, IDP_PROBLEM),
  // A transient NameID changes at every login: without a persistent identifier attribute or an
  // email in a verified domain there is nothing to recognise the person by.
  saml_nameid_transient: denied(
    403,
    'Your identity provider sent a one-time identifier for you and nothing Gatehouse can recognise you by. Ask your IT administrator to send a persistent NameID, a persistent identifier attribute, or your email address.',
  ),
  saml_assertion_expired: denied(400, 'The sign-in answer has expired. Please sign in again.'),
  saml_assertion_not_yet_valid: denied(
    400,
    'The sign-in answer is not valid yet (the clocks may disagree). Please try again.',
  ),
  saml_in_response_to_invalid: denied(
    400,
    'This sign-in was not started in this browser, was already used, or took too long. Please sign in again.',
  ),
  saml_unsolicited_response: denied(
    400,
    'Sign-in started at your identity provider is not enabled for this connection. Start from your application.',
  ),
  saml_assertion_replayed: denied(400, 'This sign-in answer was already used. Please sign in again.'),
  saml_response_invalid: denied(400, IDP_PROBLEM),

  // ---- SAML Single Logout (issue 16; src/sso/saml/single-logout.ts). A refused LogoutRequest revokes
  // nothing; a refused LogoutResponse revives nothing (the session ended before the IdP was asked).
  saml_logout_request_invalid: denied(400, LOGOUT_PROBLEM),
  saml_logout_signature_invalid: denied(400, LOGOUT_PROBLEM),
  saml_logout_issuer_mismatch: denied(400, LOGOUT_PROBLEM),
  saml_logout_destination_mismatch: denied(400, LOGOUT_PROBLEM),
  saml_logout_expired: denied(400, LOGOUT_PROBLEM),
  saml_logout_replayed: denied(400, 'This sign-out message was already used.'),
  saml_logout_in_response_to_invalid: denied(
    400,
    'You are signed out of the application. Your identity provider answered a sign-out this browser did not start, or one that took too long.',
  ),
  saml_logout_response_failed: denied(
    502,
    'You are signed out of the application, but your identity provider did not confirm that it signed you out there. Close your browser to end that session.',
  ),

  // ---- OIDC ----
  oidc_state_invalid: denied(
    400,
    'This sign-in was not started in this browser, was already used, or took too long. Please sign in again.',
  ),
  oidc_idp_error: denied(403, 'Your identity provider did not sign you in.'),
  oidc_nonce_mismatch: denied(400, IDP_PROBLEM),
  oidc_issuer_mismatch: denied(400, IDP_PROBLEM),
  oidc_audience_mismatch: denied(400, IDP_PROBLEM),
  oidc_id_token_expired: denied(400, 'The sign-in answer has expired. Please sign in again.'),
  // `iat` later than now + GATEHOUSE_SSO_CLOCK_SKEW: a token minted for later use, or a broken IdP clock.
  oidc_id_token_issued_in_future: denied(
    400,
    'The sign-in answer is dated in the future (the clocks may disagree). Please try again.',
  ),
  // O-13: an email the IdP does not say it verified is never used to find or create an account.
  oidc_email_unverified: denied(
    403,
    'Your identity provider did not confirm your email address, so Gatehouse cannot use it. Ask your IT administrator.',
  ),
  oidc_id_token_algorithm: denied(400, IDP_PROBLEM),
  oidc_id_token_invalid: denied(400, IDP_PROBLEM),
  oidc_token_exchange_failed: denied(502, IDP_PROBLEM),
  oidc_provider_unavailable: {
    status: 502,
    message: 'Your identity provider could not be reached. Please try again later.',
    error: 'temporarily_unavailable',
  },

  // ---- the person (completeLogin) ----
  email_missing: denied(403, 'Your identity provider did not send an email address for you.'),
  email_domain_not_verified: denied(
    403,
    'Your email address is not in a domain your organization has verified, so no account can be created for you. Ask your IT administrator.',
  ),
  email_domain_of_other_tenant: denied(
    403,
    'Your email address belongs to another organization. Sign in through that organization instead.',
  ),
  user_not_provisioned: denied(
    403,
    'You have no account in this organization yet. Ask your IT administrator to give you access.',
  ),
  user_suspended: denied(403, 'Your account is suspended. Ask your IT administrator.'),
  user_deleted: denied(403, 'Your account has been removed. Ask your IT administrator.'),
  user_ambiguous: denied(
    403,
    'More than one account matches your email address. Ask your IT administrator to resolve it.',
  ),

  // The database could not be reached (docs/operations.md, "Database outages"): 503, not 500.
  temporarily_unavailable: {
    status: 503,
    message: 'Sign-in is briefly unavailable. Please try again in a few seconds.',
    error: 'temporarily_unavailable',
  },
  server_error: {
    status: 500,
    message: 'Something went wrong on our side. Please try again.',
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
