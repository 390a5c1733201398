import type { Response } from 'express';
import { sendPage } from '../http/pages.js';
import { t } from '../http/strings.js';
import { PORTAL_ASSETS } from './assets.js';
import { html, type Html } from './html.js';
import { INTENT_LABELS, type Intent } from './intents.js';
import type { PortalPrincipal } from './portal-sessions.js';

/**
 * The frame of every portal page: navigation by the session's intents and
 * sign-out in the header of the one shared layout (http/pages.ts: the app's
 * name and logo, the shared stylesheet, the strict CSP), plus the portal's own
 * script; the frame's words are http/strings.ts's.
 */

const NAV: { intent: Intent; path: string; label: string }[] = [
  { intent: 'sso', path: 'sso', label: 'Single sign-on' },
  { intent: 'dsync', path: 'dsync', label: 'Directory sync' },
  { intent: 'domain_verification', path: 'domains', label: 'Domains' },
  { intent: 'sso', path: 'roles', label: 'Role mappings' },
  { intent: 'sso', path: 'sso/traces', label: 'Sign-in traces' },
  { intent: 'certificate_renewal', path: 'certificates', label: 'Certificates' },
  { intent: 'audit_log', path: 'audit', label: 'Audit log' },
];

/** A form that posts back to the portal with the session's CSRF token. */
export function csrfField(session: PortalPrincipal): Html {
  return html`<input type="hidden" name="_csrf" value="${session.csrf}" />`;
}

export function sendPortalPage(
  res: Response,
  page: {
    status?: number;
    title: string;
    session: PortalPrincipal | null;
    /** The tenant the page is about (navigation links). */
    tenantId?: string;
    body: Html;
  },
): void {
  const s = page.session;
  const nav =
    s && page.tenantId
      ? NAV.filter((n) => s.intents.includes(n.intent)).map(
          (n) => html`<a href="/portal/t/${page.tenantId}/${n.path}">${n.label}</a>`,
        )
      : [];
  const header = html`<nav aria-label="${t.portal.sections}">${nav}</nav>
    ${s ? html`<form method="post" action="/portal/logout">${csrfField(s)}<button class="secondary" type="submit">${t.portal.signOut}</button></form>` : ''}`;
  // The shared layout (http/pages.ts) supplies the header's brand, <main> and the strict CSP.
  sendPage(res, {
    status: page.status ?? 200,
    title: page.title,
    body: html`<h1>${page.title}</h1>
      ${page.body}`.value,
    header: header.value,
    homeHref: '/portal',
    brandSuffix:
      s?.kind === 'operator'
        ? t.portal.operator
        : s?.kind === 'tenant_admin'
          ? t.portal.tenantAdmin
          : t.portal.setup,
    assets: PORTAL_ASSETS,
  });
}

export function intentList(intents: readonly Intent[]): Html {
  return html`<ul>
    ${intents.map((i) => html`<li>${INTENT_LABELS[i]}</li>`)}
  </ul>`;
}

/** A value to paste elsewhere, with a copy button (portal script); `id` must be unique on the page. */
export function copyable(id: string, value: string): Html {
  return html`<span class="value" id="${id}">${value}</span
    ><button type="button" class="copy secondary" data-copy="${id}">${t.portal.copy}</button>`;
}
