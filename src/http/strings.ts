/**
 * What does a browser page say, word for word? Every user-visible string of
 * the shared layout, the home page, the sign-in pages (src/sso/pages.ts), the
 * OAuth authorize error pages (src/tokens/authorize/error-page.ts) and the
 * portal's frame (src/portal/layout.ts), in one object: a translation is one
 * more object of the same type. Values are plain text (escaped where they are
 * rendered); functions take the values they interpolate, also plain text.
 *
 * Not here yet: the refusal messages per reason code (src/sso/reasons.ts,
 * where reason codes are declared with their status), the authorize leg's
 * failure texts (see `authorize` below) and the bodies of the portal's
 * section pages (src/portal/*.pages.ts).
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
  /**
   * The OAuth authorize leg's pages (src/tokens/authorize). Their titles and
   * messages per failure are still beside their callers this round
   * (authorize.ts, browser.router.ts, completer.ts, tokens/rate-limits.ts):
   * files other work is changing now; they move here next.
   */
  authorize: {
    signedOut: { title: 'Signed out', message: 'You are signed out.' },
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
