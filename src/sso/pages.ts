import { createHash } from 'node:crypto';
import type { Response } from 'express';
import { REASONS, type ReasonCode } from './reasons.js';

/**
 * The few pages a person sees during sign-in: small, server-rendered, every
 * value escaped, no script. Errors show a reason code and a support reference
 * (the request id), never a stack trace or a library message.
 */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/**
 * The email form submits here and the answer may redirect to the IdP; Chrome
 * applies form-action to that redirect, so IdP origins (any https, and http in
 * development) are allowed as form targets. Nothing else may load.
 */
function contentSecurityPolicy(allowHttpForms: boolean, scriptHash?: string): string {
  const formTargets = allowHttpForms ? "'self' https: http:" : "'self' https:";
  const script = scriptHash ? `; script-src '${scriptHash}'` : '';
  return `default-src 'none'; style-src 'unsafe-inline'; form-action ${formTargets}; frame-ancestors 'none'; base-uri 'none'${script}`;
}

/** The one script Gatehouse serves, allowed by its hash: submit the AuthnRequest form without a click. */
const AUTO_SUBMIT = 'document.forms[0].submit();';
const AUTO_SUBMIT_HASH = `sha256-${createHash('sha256').update(AUTO_SUBMIT).digest('base64')}`;

const STYLE = `body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2933}
h1{font-size:1.4rem}input,button{font-size:1rem;padding:.5rem}input[type=email]{width:100%;box-sizing:border-box}
.ref{color:#52606d;font-size:.85rem}ul{padding-left:1.2rem}li{margin:.4rem 0}`;

export interface PageOptions {
  status: number;
  title: string;
  body: string;
  allowHttpForms: boolean;
  /** Serve the auto-submit script (the AuthnRequest form of the HTTP-POST binding). */
  autoSubmit?: boolean;
}

export function sendPage(res: Response, page: PageOptions): void {
  res
    .status(page.status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': contentSecurityPolicy(
        page.allowHttpForms,
        page.autoSubmit ? AUTO_SUBMIT_HASH : undefined,
      ),
    })
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
        `<title>${escapeHtml(page.title)}</title><style>${STYLE}</style></head><body>${page.body}</body></html>`,
    );
}

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
    `<p><button type="submit">Continue</button></p></form><script>${AUTO_SUBMIT}</script>`
  );
}

export function noApplicationPage(input: { requestId: string }): string {
  return (
    `<h1>You are signed in at your identity provider</h1>` +
    `<p>No application asked for this sign-in. Open your application and sign in from there.</p>` +
    `<p class="ref">Support reference: <code>${escapeHtml(input.requestId)}</code></p>`
  );
}
