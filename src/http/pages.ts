import { createHash } from 'node:crypto';
import type { Response } from 'express';

/**
 * How does Gatehouse put a page in front of a person? Every browser page (the
 * sign-in pages of sso/, the error pages of tokens/authorize/) is written by
 * this one renderer: one layout, one HTML escape, one Content-Security-Policy,
 * no caching. Feature folders supply only the page's body (docs/architecture.md,
 * "http").
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

/**
 * The one script Gatehouse serves, allowed by its hash: submit the SAML
 * AuthnRequest form (HTTP-POST binding) without a click. Kept beside the hash
 * so the two cannot drift apart.
 */
export const AUTO_SUBMIT_SCRIPT = 'document.forms[0].submit();';
const AUTO_SUBMIT_HASH = `sha256-${createHash('sha256').update(AUTO_SUBMIT_SCRIPT).digest('base64')}`;

/**
 * Nothing may load but the inline style; no framing (clickjacking), no <base>.
 * form-action: a sign-in page's form submits to Gatehouse and the answer may
 * redirect to the IdP; Chrome applies form-action to that redirect, so IdP
 * origins (any https, and http in development) are allowed as form targets.
 * A page without a form allows no form target at all.
 */
function contentSecurityPolicy(forms: 'none' | 'https' | 'https+http', scriptHash?: string): string {
  const formTargets =
    forms === 'none' ? "'none'" : forms === 'https' ? "'self' https:" : "'self' https: http:";
  const script = scriptHash ? `; script-src '${scriptHash}'` : '';
  return `default-src 'none'; style-src 'unsafe-inline'; form-action ${formTargets}; frame-ancestors 'none'; base-uri 'none'${script}`;
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2933}
h1{font-size:1.4rem}input,button{font-size:1rem;padding:.5rem}input[type=email]{width:100%;box-sizing:border-box}
.ref{color:#52606d;font-size:.85rem}ul{padding-left:1.2rem}li{margin:.4rem 0}`;

export interface PageOptions {
  status: number;
  /** Plain text; escaped here. */
  title: string;
  /** HTML: every value interpolated into it already passed through escapeHtml. */
  body: string;
  /**
   * Set on pages with a form whose answer may redirect to an IdP (the sign-in
   * pages): true also allows http form targets (development, private IdPs).
   * Omitted: the page has no form and the CSP allows none.
   */
  allowHttpForms?: boolean;
  /** Serve the auto-submit script (the AuthnRequest form of the HTTP-POST binding). */
  autoSubmit?: boolean;
  /**
   * Same-origin files instead of the inline style (the Admin Portal, src/portal):
   * the CSP then allows styles and scripts from 'self' only, nothing inline,
   * and forms that post back to Gatehouse only.
   */
  assets?: { stylesheet: string; script?: string };
}

const SELF_ASSETS_CSP =
  "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function sendPage(res: Response, page: PageOptions): void {
  if (page.assets) return sendAssetPage(res, page, page.assets);
  const forms = page.allowHttpForms === undefined ? 'none' : page.allowHttpForms ? 'https+http' : 'https';
  res
    .status(page.status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': contentSecurityPolicy(forms, page.autoSubmit ? AUTO_SUBMIT_HASH : undefined),
    })
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
        `<title>${escapeHtml(page.title)}</title><style>${STYLE}</style></head><body>${page.body}</body></html>`,
    );
}

function sendAssetPage(res: Response, page: PageOptions, assets: NonNullable<PageOptions['assets']>): void {
  const script = assets.script ? `<script src="${escapeHtml(assets.script)}" defer></script>` : '';
  res
    .status(page.status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': SELF_ASSETS_CSP,
    })
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
        `<title>${escapeHtml(page.title)}</title><link rel="stylesheet" href="${escapeHtml(assets.stylesheet)}">${script}</head>` +
        `<body>${page.body}</body></html>`,
    );
}
