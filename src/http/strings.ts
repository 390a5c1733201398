/**
 * What does a browser page say, word for word? Every user-visible string of
 * the shared layout, the home page, the sign-in pages (src/sso/pages.ts), the
 * OAuth authorize error pages (src/tokens/authorize/error-page.ts) and the
 * portal's frame (src/portal/layout.ts), in one object: a translation is one
 * more object of the same type. Values are plain text (escaped where they are
 * rendered); functions take the values they interpolate, also plain text.
 *
 * The bodies of the Admin Portal's section pages (src/portal/*.pages.ts), read
 * by administrators rather than by people signing in, stay with their pages.
 */
export const en = {
  /** BCP 47 tag for `<html lang>` (WCAG 3.1.1). */
  lang: 'en',
  layout: {
    /** Page `<title>`: the page's own title, then the app's name. */
    documentTitle: (title: string, appName: string) => `${title} · ${appName}`,
  },
  home: {
    title: 'Sign-in service',
    heading: (appName: string) => `${appName} sign-in`,
    intro: (appName: string) =>
      `This is where people sign in to ${appName}'s applications with their company account. ` +
      'To sign in, open your application: it sends you here and on to your identity provider.',
    adminsHeading: 'Administrators',
    portalLink: 'Sign in to the admin portal',
    developersHeading: 'Developers',
    discoveryLabel: 'OpenID Connect discovery document:',
  },
  acsGet: {
    title: 'Nothing to open here',
    heading: 'This address is not a page to open',
    message:
      'This address receives sign-in responses from your identity provider. ' +
      'To sign in, start from your application.',
  },
  email: {
    title: 'Sign in',
    heading: 'Sign in with your work account',
    label: 'Work email',
    button: 'Continue',
  },
  chooser: {
    title: 'Choose how to sign in',
    heading: 'Choose how to sign in',
    /** Above the list when the organization is known by name. */
    organization: (tenantName: string) => `Sign in to ${tenantName} with:`,
    signingInAs: (email: string) => `Signing in as ${email}`,
    listLabel: 'Ways to sign in',
  },
  signInError: {
    title: 'Sign-in did not complete',
    heading: 'Sign-in did not complete',
    organization: (tenantName: string) => `Organization: ${tenantName}`,
    useAnotherEmail: 'Use another email address',
    backToApp: 'Back to the application',
    reason: 'Reason:',
    supportReference: 'Support reference:',
  },
  postBinding: {
    title: 'Continuing to your identity provider',
    heading: 'Continuing to your identity provider…',
    button: 'Continue',
  },
  noApplication: {
    title: 'Signed in',
    heading: 'You are signed in at your identity provider',
    message: 'No application asked for this sign-in. Open your application and sign in from there.',
  },
  /** The OAuth authorize leg's pages (src/tokens/authorize, tokens/status/logout.service.ts, tokens/rate-limits.ts). */
  authorize: {
    signedOut: { title: 'Signed out', message: 'You are signed out.' },
    /** /oauth/authorize refused before any redirect is safe (RFC 6749 §4.1.2.1: a page, not a redirect). */
    requestNotAccepted: 'Sign-in request not accepted',
    invalidClient: 'The application did not identify itself correctly (client_id).',
    unknownClient: 'This application is not registered with Gatehouse.',
    redirectUriMissing: 'The application did not say where to return (redirect_uri).',
    redirectUriMismatch: 'The return address is not registered for this application.',
    /** /oauth/authorize/continue, per failure. */
    continue: {
      login_not_found: {
        title: 'Sign-in not found',
        message: 'Go back to the application and sign in again.',
      },
      login_not_finished: {
        title: 'Sign-in not finished',
        message: 'This sign-in has not been completed at your identity provider.',
      },
      login_already_used: {
        title: 'Sign-in already used',
        message: 'This sign-in has already been used. Go back to the application and sign in again.',
      },
      login_expired: { title: 'Sign-in expired', message: 'Go back to the application and sign in again.' },
      browser_mismatch: {
        title: 'Sign-in started elsewhere',
        message:
          'This sign-in was started in another browser, so it cannot finish here. Start again from the application in this browser.',
      },
      session_ended: { title: 'Session ended', message: 'Go back to the application and sign in again.' },
    },
    otherBrowser: {
      title: 'Sign-in did not complete',
      message:
        'This sign-in did not complete. It was started in another browser, so it cannot return to the application from here. Start again from the application.',
    },
    expired: {
      title: 'This sign-in has expired',
      message: 'This sign-in is no longer in progress. Go back to the application and sign in again.',
    },
    rateLimited: {
      title: 'Too many sign-in attempts',
      message: 'Too many sign-in attempts came from your network. Wait a minute, then try again.',
    },
    unavailable: {
      title: 'Briefly unavailable',
      message: 'Sign-in is briefly unavailable. Try again from the application in a few seconds.',
    },
    failed: {
      title: 'Something went wrong',
      message: 'Gatehouse could not finish this request. Try again from the application.',
    },
    /** RP-initiated logout (/oauth/logout) that could not do all it was asked. */
    logout: {
      endedTitle: 'Signed out',
      notCompletedTitle: 'Sign-out not completed',
      idTokenHintRequired: 'The application did not say which sign-in to end.',
      invalidIdTokenHint: 'The sign-in to end could not be verified.',
      clientMismatch: 'The application does not match the sign-in to end.',
      postLogoutRedirectUriMismatch:
        'You are signed out, but the address to return to is not registered for this application.',
    },
  },
  /**
   * What a person reads when a sign-in is refused, per reason code (src/sso/reasons.ts
   * declares each code with its HTTP status and OAuth error). Never a library message.
   */
  reasons: {
    /** Said for every refusal whose detail only the IdP's admin can act on. */
    /** Said for every refused single-logout message (SAML SLO) whose detail only the IdP's admin can act on. */
    logoutProblem:
      'Your identity provider sent a sign-out message Gatehouse cannot accept. Ask your IT administrator to check the single logout configuration.',
    idpProblem:
      'Your identity provider sent an answer Gatehouse cannot accept. Ask your IT administrator to check the single sign-on configuration.',
    login_request_invalid: 'This sign-in link is incomplete or malformed. Start again from your application.',
    discovery_email_invalid: 'Enter a work email address such as name@company.com.',
    discovery_domain_unknown:
      'No organization has set up single sign-on for this email domain. Check the address or ask your IT administrator.',
    discovery_organization_unknown: 'This organization is not known to Gatehouse, or is not active.',
    discovery_no_connection:
      'Your organization has no active single sign-on connection. Ask your IT administrator.',
    discovery_connection_unknown: 'This sign-in connection does not exist or is not active.',
    discovery_conflict: 'The requested connection does not belong to the organization of this email.',
    connection_unknown: 'This sign-in connection does not exist or is not active.',
    connection_misconfigured:
      "Your organization's single sign-on connection is not completely configured. Ask your IT administrator.",
    handoff_invalid:
      'This sign-in step expired or was opened in another browser. Start again from your application.',
    saml_response_missing: 'The sign-in answer from your identity provider is missing.',
    saml_idp_error: 'Your identity provider did not sign you in.',
    saml_decryption_failed:
      "Gatehouse could not decrypt the sign-in answer from your identity provider. Ask your IT administrator to check that the identity provider encrypts to the certificate in this connection's SP metadata.",
    saml_assertion_not_encrypted:
      'This connection accepts only encrypted sign-in answers, and your identity provider sent one in the clear. Ask your IT administrator to turn on assertion encryption at the identity provider.',
    saml_assertion_unsigned_response_signed:
      'Your identity provider signed the sign-in answer but not the assertion inside it, which this connection requires. Ask your IT administrator to have the identity provider sign the assertion, or to set the connection\'s signed_element to "response".',
    saml_nameid_transient:
      'Your identity provider sent a one-time identifier for you and nothing Gatehouse can recognise you by. Ask your IT administrator to send a persistent NameID, a persistent identifier attribute, or your email address.',
    saml_assertion_expired: 'The sign-in answer has expired. Please sign in again.',
    saml_assertion_not_yet_valid:
      'The sign-in answer is not valid yet (the clocks may disagree). Please try again.',
    saml_in_response_to_invalid:
      'This sign-in was not started in this browser, was already used, or took too long. Please sign in again.',
    saml_unsolicited_response:
      'Sign-in started at your identity provider is not enabled for this connection. Start from your application.',
    saml_assertion_replayed: 'This sign-in answer was already used. Please sign in again.',
    saml_logout_replayed: 'This sign-out message was already used.',
    saml_logout_in_response_to_invalid:
      'You are signed out of the application. Your identity provider answered a sign-out this browser did not start, or one that took too long.',
    saml_logout_response_failed:
      'You are signed out of the application, but your identity provider did not confirm that it signed you out there. Close your browser to end that session.',
    oidc_state_invalid:
      'This sign-in was not started in this browser, was already used, or took too long. Please sign in again.',
    oidc_idp_error: 'Your identity provider did not sign you in.',
    oidc_id_token_expired: 'The sign-in answer has expired. Please sign in again.',
    oidc_id_token_issued_in_future:
      'The sign-in answer is dated in the future (the clocks may disagree). Please try again.',
    oidc_email_unverified:
      'Your identity provider did not confirm your email address, so Gatehouse cannot use it. Ask your IT administrator.',
    email_missing: 'Your identity provider did not send an email address for you.',
    email_domain_not_verified:
      'Your email address is not in a domain your organization has verified, so no account can be created for you. Ask your IT administrator.',
    email_domain_of_other_tenant:
      'Your email address belongs to another organization. Sign in through that organization instead.',
    user_not_provisioned:
      'You have no account in this organization yet. Ask your IT administrator to give you access.',
    user_suspended: 'Your account is suspended. Ask your IT administrator.',
    user_deleted: 'Your account has been removed. Ask your IT administrator.',
    user_ambiguous:
      'More than one account matches your email address. Ask your IT administrator to resolve it.',
    oidc_provider_unavailable: 'Your identity provider could not be reached. Please try again later.',
    temporarily_unavailable: 'Sign-in is briefly unavailable. Please try again in a few seconds.',
    server_error: 'Something went wrong on our side. Please try again.',
  },
  /** The frame of the Admin Portal's pages (src/portal/layout.ts); section bodies stay with their pages. */
  portal: {
    operator: 'Operator portal',
    /** A tenant admin signed in through their own IdP. */
    tenantAdmin: 'Admin portal',
    setup: 'Setup',
    sections: 'Sections',
    signOut: 'Sign out',
    copy: 'Copy',
  },
};

export type Strings = typeof en;

/** The strings pages render with. */
export const t: Strings = en;
