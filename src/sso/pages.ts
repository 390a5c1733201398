import { AUTO_SUBMIT_SCRIPT, escapeHtml } from '../http/pages.js';
import { REASONS, type ReasonCode } from './reasons.js';

/**
 * What do the sign-in pages say? The bodies of the few pages a person sees
 * during sign-in: the email form, the connection chooser, the error page, the
 * SAML POST-binding form. Every value escaped, no script but the auto-submit
 * one. Errors show a reason code and a support reference (the request id),
 * never a stack trace or a library message. Layout, escaping and the
 * Content-Security-Policy are http/pages.ts's (sendPage).
 */

/** Gatehouse's own URLs are absolute from its base URL (it may be served under a path). */
export function loginUrl(baseUrl: string, params: Record<string, string>): string {
  return `${baseUrl}/login?${new URLSearchParams(params).toString()}`;
}

export function emailPage(input: {
  baseUrl: string;
  loginId: string;
  email?: string;
  notice?: string;
}): string {
  const notice = input.notice ? `<p>${escapeHtml(input.notice)}</p>` : '';
  return (
    `<h1>Sign in with your work account</h1>${notice}` +
    `<form method="get" action="${escapeHtml(`${input.baseUrl}/login`)}">` +
    `<input type="hidden" name="login" value="${escapeHtml(input.loginId)}">` +
    `<p><label for="email">Work email</label><br>` +
    `<input id="email" type="email" name="email" autocomplete="username" required value="${escapeHtml(input.email ?? '')}"></p>` +
    `<p><button type="submit">Continue</button></p></form>`
  );
}

export function chooserPage(input: {
  baseUrl: string;
  loginId: string;
  /** What found the tenant: the person's email, or the app's organization. */
  hint: { email: string } | { organization: string };
  connections: { id: string; name: string }[];
}): string {
  const items = input.connections
    .map((c) => {
      const href = loginUrl(input.baseUrl, { login: input.loginId, ...input.hint, connection: c.id });
      return `<li><a href="${escapeHtml(href)}">${escapeHtml(c.name)}</a></li>`;
    })
    .join('');
  const who = 'email' in input.hint ? `<p>${escapeHtml(input.hint.email)}</p>` : '';
  return `<h1>Choose how to sign in</h1>${who}<ul>${items}</ul>`;
}

export interface ErrorPageInput {
  baseUrl: string;
  reason: ReasonCode;
  requestId: string;
  /** "Try another email": back to the email form of this login. */
  retryLoginId?: string;
  /** "Back to the application": ends the app's authorization request with an OAuth error. */
  returnUrl?: string;
}

export function errorPage(input: ErrorPageInput): { status: number; body: string } {
  const spec = REASONS[input.reason];
  const links: string[] = [];
  if (input.retryLoginId)
    links.push(
      `<a href="${escapeHtml(loginUrl(input.baseUrl, { login: input.retryLoginId }))}">Use another email address</a>`,
    );
  if (input.returnUrl) links.push(`<a href="${escapeHtml(input.returnUrl)}">Back to the application</a>`);
  return {
    status: spec.status,
    body:
      `<h1>Sign-in did not complete</h1><p>${escapeHtml(spec.message)}</p>` +
      (links.length ? `<p>${links.join(' · ')}</p>` : '') +
      `<p class="ref">Reason: <code>${escapeHtml(input.reason)}</code><br>` +
      `Support reference: <code>${escapeHtml(input.requestId)}</code></p>`,
  };
}

/** SAML HTTP-POST binding (§3.5): the AuthnRequest form, submitted by script or by the button. */
export function postBindingPage(input: { action: string; fields: Record<string, string> }): string {
  const hidden = Object.entries(input.fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('');
  return (
    `<h1>Continuing to your identity provider…</h1>` +
    `<form method="post" action="${escapeHtml(input.action)}">${hidden}` +
    `<p><button type="submit">Continue</button></p></form><script>${AUTO_SUBMIT_SCRIPT}</script>`
  );
}

export function noApplicationPage(input: { requestId: string }): string {
  return (
    `<h1>You are signed in at your identity provider</h1>` +
    `<p>No application asked for this sign-in. Open your application and sign in from there.</p>` +
    `<p class="ref">Support reference: <code>${escapeHtml(input.requestId)}</code></p>`
  );
}
