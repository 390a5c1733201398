import type { Step } from '../sso/login-trace-steps.js';
import type { ReasonCode } from '../sso/reasons.js';

/**
 * What should an IT admin do when a test sign-in fails? One plain-language
 * hint per reason code of src/sso/reasons.ts, and the step of a sign-in each
 * code belongs to (its headline). The steps a trace shows are the stored ones
 * (src/sso/login-trace-steps.ts records them where the checks run); this file
 * only names them.
 */

/** The name of each stored trace step, as a page shows it. */
export const STEP_LABELS: Record<Step, string> = {
  request_sent: 'Request sent to the identity provider',
  response_received: 'Answer received',
  signature: 'Signature',
  issuer: 'Issuer',
  audience: 'Audience',
  recipient: 'Recipient',
  time_window: 'Time window',
  replay: 'Replay',
  state: 'State (answers our request)',
  token_exchange: 'Code exchange',
  id_token_signature: 'ID token signature',
  nonce: 'Nonce',
  domain: 'Email and domain',
  jit: 'Person provisioned',
};

export const LOGIN_STEPS = [
  'Request sent to the identity provider',
  'Answer received',
  'Signature',
  'Issuer',
  'Audience and recipient',
  'Time window',
  'Replay and request match',
  'Email and domain',
  'Person provisioned',
] as const;
export type LoginStep = (typeof LOGIN_STEPS)[number];

type Hint = { step: LoginStep; hint: string };
const h = (step: LoginStep, hint: string): Hint => ({ step, hint });

const REUPLOAD = 'Upload the IdP’s current metadata again on this page.';

export const REASON_HINTS: Partial<Record<ReasonCode, Hint>> = {
  login_request_invalid: h(
    'Request sent to the identity provider',
    'The test link was malformed. Start the test again from this page.',
  ),
  discovery_email_invalid: h(
    'Request sent to the identity provider',
    'The email address given is not valid.',
  ),
  discovery_domain_unknown: h(
    'Request sent to the identity provider',
    'No verified domain routes this email here. Verify the domain on the Domains page.',
  ),
  discovery_organization_unknown: h(
    'Request sent to the identity provider',
    'The organisation is unknown or not active.',
  ),
  discovery_no_connection: h(
    'Request sent to the identity provider',
    'There is no active connection. Activate it first.',
  ),
  discovery_connection_unknown: h(
    'Request sent to the identity provider',
    'The connection was not found. Reload this page and start the test again.',
  ),
  discovery_conflict: h(
    'Request sent to the identity provider',
    'The sign-in hints named different organisations.',
  ),
  connection_unknown: h(
    'Answer received',
    'The answer arrived for a connection that is not active, outside a test started here. Start the test from this page.',
  ),
  connection_misconfigured: h(
    'Request sent to the identity provider',
    `The connection lacks part of its IdP settings. ${REUPLOAD}`,
  ),
  handoff_invalid: h(
    'Answer received',
    'The test was finished in another browser or too late. Start it again from this page.',
  ),
  saml_response_missing: h(
    'Answer received',
    'The IdP sent no SAML response. Check the ACS URL configured in the IdP.',
  ),
  saml_response_malformed: h(
    'Answer received',
    'The IdP’s answer is not valid SAML. Check the app is a SAML 2.0 app.',
  ),
  saml_dtd_forbidden: h('Answer received', 'The answer carried a DTD, which is never accepted.'),
  saml_xml_comment_injection: h(
    'Answer received',
    'The answer carried XML comments inside signed values, which is refused.',
  ),
  saml_xml_too_deep: h('Answer received', 'The answer is nested too deeply.'),
  saml_xml_too_many_elements: h('Answer received', 'The answer is too large (elements).'),
  saml_xml_too_many_attributes: h('Answer received', 'The answer is too large (attributes).'),
  saml_xml_too_much_text: h('Answer received', 'The answer is too large (text).'),
  saml_idp_error: h(
    'Answer received',
    'The IdP refused to sign you in: check the person is assigned to the app in the IdP.',
  ),
  saml_assertion_count: h('Answer received', 'The answer must carry exactly one assertion.'),
  saml_decryption_failed: h(
    'Answer received',
    'The assertion could not be decrypted: give the IdP our current encryption certificate (SP metadata).',
  ),
  saml_assertion_not_encrypted: h(
    'Answer received',
    'This connection requires encrypted assertions: turn on assertion encryption in the IdP.',
  ),
  saml_signature_invalid: h('Signature', `The IdP signs with a certificate we don’t have. ${REUPLOAD}`),
  saml_assertion_unsigned_response_signed: h(
    'Signature',
    'The IdP signs the Response but not the Assertion: set it to sign the assertion (or both).',
  ),
  saml_signature_algorithm_weak: h(
    'Signature',
    'The IdP signs with SHA-1: set the signature algorithm to RSA-SHA256.',
  ),
  saml_issuer_mismatch: h(
    'Issuer',
    `The answer came from another IdP entity id than the metadata names. ${REUPLOAD}`,
  ),
  saml_destination_mismatch: h(
    'Audience and recipient',
    'The IdP sent the answer for another ACS URL: copy the ACS URL from this page into the IdP.',
  ),
  saml_recipient_mismatch: h(
    'Audience and recipient',
    'The Recipient in the answer is not our ACS URL: copy the ACS URL from this page into the IdP.',
  ),
  saml_audience_mismatch: h(
    'Audience and recipient',
    'The Audience (SP entity id) set in the IdP is not ours: copy the SP entity id from this page.',
  ),
  saml_subject_confirmation_invalid: h(
    'Audience and recipient',
    'The subject confirmation is not a valid bearer confirmation for our ACS URL.',
  ),
  saml_subject_missing: h('Audience and recipient', 'The answer names no subject: set a NameID in the IdP.'),
  saml_nameid_transient: h(
    'Email and domain',
    'The NameID is transient: set the NameID format to email address or persistent.',
  ),
  saml_assertion_expired: h(
    'Time window',
    'The answer had expired when it arrived: check the IdP server’s clock, then test again.',
  ),
  saml_assertion_not_yet_valid: h(
    'Time window',
    'The answer is not valid yet: the IdP server’s clock is ahead; check it.',
  ),
  saml_in_response_to_invalid: h(
    'Replay and request match',
    'The answer does not match the request we sent, or cookies were blocked. Test again in one browser, without switching.',
  ),
  saml_unsolicited_response: h(
    'Replay and request match',
    'The IdP sent an answer we did not ask for (IdP-initiated). Start the test from this page.',
  ),
  saml_assertion_replayed: h('Replay and request match', 'This answer was already used. Test again.'),
  saml_response_invalid: h(
    'Answer received',
    'The answer could not be validated. Check the IdP’s SAML settings against the guide.',
  ),
  oidc_state_invalid: h(
    'Replay and request match',
    'The answer does not match the request we sent. Test again in one browser.',
  ),
  oidc_idp_error: h(
    'Answer received',
    'The IdP refused to sign you in: check the person is assigned to the app.',
  ),
  oidc_nonce_mismatch: h('Replay and request match', 'The ID token does not match our request (nonce).'),
  oidc_issuer_mismatch: h(
    'Issuer',
    'The ID token comes from another issuer than configured: check the issuer URL.',
  ),
  oidc_audience_mismatch: h(
    'Audience and recipient',
    'The ID token is for another client: check the client id.',
  ),
  oidc_id_token_expired: h('Time window', 'The ID token had expired: check the IdP’s clock.'),
  oidc_id_token_issued_in_future: h(
    'Time window',
    'The ID token is dated in the future: the IdP’s clock is ahead.',
  ),
  oidc_email_unverified: h(
    'Email and domain',
    'The IdP does not say the email is verified (email_verified).',
  ),
  oidc_id_token_algorithm: h(
    'Signature',
    'The IdP signs ID tokens with an algorithm this connection does not accept.',
  ),
  oidc_id_token_invalid: h('Signature', 'The ID token’s signature or content is invalid.'),
  oidc_token_exchange_failed: h(
    'Answer received',
    'The IdP refused the code exchange: check the client secret and the redirect URI.',
  ),
  oidc_provider_unavailable: h('Answer received', 'The IdP could not be reached. Try again later.'),
  email_missing: h(
    'Email and domain',
    'The IdP sent no email address: add the email attribute shown in the guide.',
  ),
  email_domain_not_verified: h(
    'Email and domain',
    'The email’s domain is not verified for your organisation: verify it on the Domains page.',
  ),
  email_domain_of_other_tenant: h('Email and domain', 'The email’s domain belongs to another organisation.'),
  user_not_provisioned: h(
    'Person provisioned',
    'Just-in-time provisioning is off and the person was not pushed by SCIM: provision them first.',
  ),
  user_suspended: h('Person provisioned', 'The person is suspended in the directory.'),
  user_deleted: h('Person provisioned', 'The person was removed from the directory.'),
  user_ambiguous: h('Person provisioned', 'More than one person matches this sign-in: ask the operator.'),
  // Single logout (issue 16): not a sign-in step, but a code the same pages can show.
  saml_logout_request_invalid: h('Answer received', 'The IdP’s logout message is not valid SAML.'),
  saml_logout_signature_invalid: h(
    'Signature',
    `The IdP’s logout message is not signed by its certificate. ${REUPLOAD}`,
  ),
  saml_logout_issuer_mismatch: h('Issuer', `The logout message came from another IdP entity id. ${REUPLOAD}`),
  saml_logout_destination_mismatch: h(
    'Audience and recipient',
    'The logout message names another SLO URL: copy ours into the IdP.',
  ),
  saml_logout_expired: h('Time window', 'The logout message had expired: check the IdP server’s clock.'),
  saml_logout_replayed: h('Replay and request match', 'This logout message was already used.'),
  saml_logout_in_response_to_invalid: h(
    'Replay and request match',
    'The logout answer does not match a logout we sent.',
  ),
  saml_logout_response_failed: h('Answer received', 'The IdP reported that single logout did not complete.'),
  temporarily_unavailable: h(
    'Answer received',
    'Gatehouse was briefly unavailable. Try again in a few seconds.',
  ),
  server_error: h(
    'Answer received',
    'Something went wrong on our side. Try again; if it persists, give the operator the reference.',
  ),
};

const FALLBACK: Hint = h(
  'Answer received',
  'The sign-in was refused. Give the operator the reason code and the reference.',
);

export function hintFor(reason: string): Hint {
  return (REASON_HINTS as Record<string, Hint | undefined>)[reason] ?? FALLBACK;
}
