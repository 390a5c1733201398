import type { Request, Response } from 'express';
import { escapeHtml, sendPage, supportReference } from '../http/pages.js';
import { t } from '../http/strings.js';
import { REASONS, type ReasonCode } from './reasons.js';

/**
 * What do the sign-in pages say? The bodies of the few pages a person sees
 * during sign-in: the email form, the connection chooser, the error page, the
 * SAML POST-binding form, the GET on an ACS URL. Every value escaped, no
 * inline script. Errors show a reason code and a support reference (the
 * request id), never a stack trace or a library message. Words are
 * http/strings.ts's (the refusal per reason code is reasons.ts's); layout,
 * escaping and the Content-Security-Policy are http/pages.ts's (sendPage).
 */

/** Gatehouse's own URLs are absolute from its base URL (it may be served under a path). */
export function loginUrl(baseUrl: string, params: Record<string, string>): string {
  return `${baseUrl}/login?${new URLSearchParams(params).toString()}`;
}

export function emailPage(input: {
  baseUrl: string;
  loginId: string;
  email?: string;
  /** Why the email was not accepted: shown under the field and tied to it (aria-describedby). */
  notice?: string;
}): string {
  const s = t.email;
  const invalid = input.notice ? ` aria-invalid="true" aria-describedby="email-error"` : '';
  const notice = input.notice
    ? `<p id="email-error" class="field-error">${escapeHtml(input.notice)}</p>`
    : '';
  return (
    `<h1>${escapeHtml(s.heading)}</h1>` +
    `<form method="get" action="${escapeHtml(`${input.baseUrl}/login`)}">` +
    `<input type="hidden" name="login" value="${escapeHtml(input.loginId)}">` +
    `<label for="email">${escapeHtml(s.label)}</label>` +
    `<input id="email" type="email" name="email" autocomplete="username" required${invalid} value="${escapeHtml(input.email ?? '')}">` +
    notice +
    `<button type="submit">${escapeHtml(s.button)}</button></form>`
  );
}

export function chooserPage(input: {
  baseUrl: string;
  loginId: string;
  /** What found the tenant: the person's email, or the app's organization. */
  hint: { email: string } | { organization: string };
  connections: { id: string; name: string }[];
  /** The tenant's display name, when known. */
  tenantName?: string;
}): string {
  const s = t.chooser;
  const items = input.connections
    .map((c) => {
      const href = loginUrl(input.baseUrl, { login: input.loginId, ...input.hint, connection: c.id });
      return `<li><a href="${escapeHtml(href)}">${escapeHtml(c.name)}</a></li>`;
    })
    .join('');
  const who =
    'email' in input.hint ? `<p class="muted">${escapeHtml(s.signingInAs(input.hint.email))}</p>` : '';
  const org = input.tenantName ? `<p>${escapeHtml(s.organization(input.tenantName))}</p>` : '';
  return (
    `<h1>${escapeHtml(s.heading)}</h1>${who}${org}` +
    `<ul class="choices" aria-label="${escapeHtml(s.listLabel)}">${items}</ul>`
  );
}

export interface ErrorPageInput {
  baseUrl: string;
  reason: ReasonCode;
  requestId: string;
  /** "Try another email": back to the email form of this login. */
  retryLoginId?: string;
  /** "Back to the application": ends the app's authorization request with an OAuth error. */
  returnUrl?: string;
  /** The tenant's display name, when the refusal knows the tenant. */
  tenantName?: string;
}

export function errorPage(input: ErrorPageInput): { status: number; title: string; body: string } {
  const s = t.signInError;
  const spec = REASONS[input.reason];
  const links: string[] = [];
  if (input.retryLoginId)
    links.push(
      `<a href="${escapeHtml(loginUrl(input.baseUrl, { login: input.retryLoginId }))}">${escapeHtml(s.useAnotherEmail)}</a>`,
    );
  if (input.returnUrl) links.push(`<a href="${escapeHtml(input.returnUrl)}">${escapeHtml(s.backToApp)}</a>`);
  const org = input.tenantName ? `<p>${escapeHtml(s.organization(input.tenantName))}</p>` : '';
  return {
    status: spec.status,
    title: s.title,
    body:
      `<h1>${escapeHtml(s.heading)}</h1>${org}<p>${escapeHtml(spec.message)}</p>` +
      (links.length ? `<p>${links.join(' · ')}</p>` : '') +
      supportReference(input.reason, input.requestId),
  };
}

/**
 * SAML HTTP-POST binding (§3.5): the AuthnRequest form, submitted by the
 * shared same-origin script (sendPage's autoSubmit) or by the button.
 */
export function postBindingPage(input: { action: string; fields: Record<string, string> }): string {
  const s = t.postBinding;
  const hidden = Object.entries(input.fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('');
  return (
    `<h1>${escapeHtml(s.heading)}</h1>` +
    `<form method="post" action="${escapeHtml(input.action)}" data-auto-submit>${hidden}` +
    `<button type="submit">${escapeHtml(s.button)}</button></form>`
  );
}

export const postBindingTitle = t.postBinding.title;

export function noApplicationPage(input: { requestId: string }): string {
  const s = t.noApplication;
  return (
    `<h1>${escapeHtml(s.heading)}</h1><p>${escapeHtml(s.message)}</p>` +
    `<p class="ref">${escapeHtml(t.signInError.supportReference)} <code>${escapeHtml(input.requestId)}</code></p>`
  );
}

export const noApplicationTitle = t.noApplication.title;

/**
 * GET on an ACS URL (`/saml/{id}/acs` takes only the IdP's POST, SAML bindings
 * §3.5): 405 with `Allow: POST` (RFC 9110 §15.5.6). A person who bookmarked or
 * typed it gets a page saying where to start; other clients a JSON error.
 * Reads nothing: the connection id is not looked up.
 */
export function sendAcsGet(req: Request, res: Response): void {
  res.set('Allow', 'POST').vary('Accept');
  if (req.accepts(['application/json', 'text/html']) !== 'text/html') {
    res.status(405).json({
      code: 'method_not_allowed',
      message: 'The ACS URL accepts only the identity provider’s POST (SAML HTTP-POST binding)',
      request_id: req.requestId,
    });
    return;
  }
  const s = t.acsGet;
  sendPage(res, {
    status: 405,
    title: s.title,
    body: `<h1>${escapeHtml(s.heading)}</h1><p>${escapeHtml(s.message)}</p>`,
  });
}
