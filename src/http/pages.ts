import type { RequestHandler, Response } from 'express';
import type { Config } from '../config/config.js';
import { ASSET_PATHS } from './assets.js';
import { t } from './strings.js';

/**
 * How does Gatehouse put a page in front of a person? Every browser page (the
 * home page, the sign-in pages of sso/, the error pages of tokens/authorize/,
 * the Admin Portal's pages) is written by this one renderer: one layout (the
 * app's name and logo in a header, one `<main>`), one HTML escape, one
 * same-origin stylesheet and script (http/assets.ts), one strict
 * Content-Security-Policy with nothing inline, no caching. Feature folders
 * supply only the page's body; words come from http/strings.ts
 * (docs/architecture.md, "http").
 */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for an element body or a quoted attribute value. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** The reason code and the request id, which support looks a sign-in up by (every error page ends with them). */
export function supportReference(reason: string, requestId: string): string {
  const s = t.signInError;
  return (
    `<p class="ref">${escapeHtml(s.reason)} <code>${escapeHtml(reason)}</code><br>` +
    `${escapeHtml(s.supportReference)} <code>${escapeHtml(requestId)}</code></p>`
  );
}

/** What every page's header shows, from GATEHOUSE_APP_NAME / GATEHOUSE_APP_LOGO_URL. */
export interface PageBrand {
  appName: string;
  /** An https URL or a path on this origin. */
  logoUrl?: string;
  /** The base URL's path ('' at the root): asset and home links are under it. */
  basePath: string;
}

const DEFAULT_BRAND: PageBrand = { appName: 'Gatehouse', basePath: '' };
const BRAND_LOCAL = 'gatehousePageBrand';

export function brandFromConfig(config: Pick<Config, 'baseUrl' | 'pages'>): PageBrand {
  return {
    appName: config.pages.appName,
    logoUrl: config.pages.logoUrl,
    basePath: new URL(config.baseUrl).pathname.replace(/\/+$/, ''),
  };
}

/** Puts the brand where sendPage finds it (res.locals): no module state, so apps with other configs can share a process. */
export function usePageBrand(brand: PageBrand): RequestHandler {
  return (_req, res, next) => {
    res.locals[BRAND_LOCAL] = brand;
    next();
  };
}

export function pageBrandOf(res: Response): PageBrand {
  const brand = res.locals[BRAND_LOCAL] as PageBrand | undefined;
  return brand ?? DEFAULT_BRAND;
}

type FormTargets = 'none' | 'self' | 'https' | 'https+http';

/**
 * Nothing inline and nothing from elsewhere: styles and scripts from this
 * origin only (script-src only on the page that needs one), images from this
 * origin and the logo's; no framing (clickjacking), no <base>.
 * form-action: a sign-in page's form submits to Gatehouse and the answer may
 * redirect to the IdP; Chrome applies form-action to that redirect, so IdP
 * origins (any https, and http in development) are allowed as form targets.
 * A page without a form allows no form target at all; portal forms post back only.
 */
function contentSecurityPolicy(forms: FormTargets, script: boolean, brand: PageBrand): string {
  const formTargets =
    forms === 'none'
      ? "'none'"
      : forms === 'self'
        ? "'self'"
        : forms === 'https'
          ? "'self' https:"
          : "'self' https: http:";
  const logoOrigin = brand.logoUrl?.startsWith('https://') ? ` ${new URL(brand.logoUrl).origin}` : '';
  return (
    `default-src 'none'; style-src 'self'; img-src 'self'${logoOrigin}; form-action ${formTargets}; ` +
    `frame-ancestors 'none'; base-uri 'none'${script ? "; script-src 'self'" : ''}`
  );
}

export interface PageOptions {
  status: number;
  /** Plain text; escaped here. The document title adds the app's name. */
  title: string;
  /** HTML for inside `<main>`, starting with the page's one h1: every value interpolated into it already passed through escapeHtml. */
  body: string;
  /**
   * Set on pages with a form whose answer may redirect to an IdP (the sign-in
   * pages): true also allows http form targets (development, private IdPs).
   * Omitted: the page has no form and the CSP allows none.
   */
  allowHttpForms?: boolean;
  /** The page's form marked data-auto-submit is submitted by the shared script (the SAML HTTP-POST binding). */
  autoSubmit?: boolean;
  /**
   * The Admin Portal (src/portal): its own extra script (copy buttons), forms
   * that post back to Gatehouse only, a wide layout. `stylesheet` is ignored
   * (every page has the shared one) and kept for callers written before.
   */
  assets?: { stylesheet?: string; script?: string };
  /** HTML after the app's name in the header (the portal's navigation and sign-out). */
  header?: string;
  /** Where the app's name links to (default: the home page). */
  homeHref?: string;
  /** Plain text after the app's name ("Operator portal"). */
  brandSuffix?: string;
}

function headerHtml(page: PageOptions, brand: PageBrand): string {
  const logo = brand.logoUrl ? `<img src="${escapeHtml(brand.logoUrl)}" alt="">` : '';
  const home = page.homeHref ?? `${brand.basePath}/`;
  const suffix = page.brandSuffix ? ` · ${escapeHtml(page.brandSuffix)}` : '';
  return (
    `<header><span class="brand"><a href="${escapeHtml(home)}"">` +
    `${logo}${escapeHtml(brand.appName)}</a>${suffix}</span>${page.header ?? ''}</header>`
  );
}

export function sendPage(res: Response, page: PageOptions): void {
  const brand = pageBrandOf(res);
  const forms: FormTargets = page.assets
    ? 'self'
    : page.allowHttpForms === undefined
      ? 'none'
      : page.allowHttpForms
        ? 'https+http'
        : 'https';
  const scripts = [
    ...(page.autoSubmit ? [`${brand.basePath}${ASSET_PATHS.script}`] : []),
    ...(page.assets?.script ? [page.assets.script] : []),
  ];
  const head =
    `<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${escapeHtml(t.layout.documentTitle(page.title, brand.appName))}</title>` +
    `<link rel="stylesheet" href="${escapeHtml(`${brand.basePath}${ASSET_PATHS.stylesheet}`)}">` +
    scripts.map((src) => `<script src="${escapeHtml(src)}" defer></script>`).join('');
  const main = page.assets
    ? `<main>${page.body}</main>`
    : `<main class="narrow"><section>${page.body}</section></main>`;
  res
    .status(page.status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': contentSecurityPolicy(forms, scripts.length > 0, brand),
    })
    .send(
      `<!doctype html><html lang="${escapeHtml(t.lang)}"><head>${head}</head>` +
        `<body>${headerHtml(page, brand)}${main}</body></html>`,
    );
}
