import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { sha256Base64url } from '../digest.js';

/**
 * Binds a flow in progress to the browser that started it: a random value in
 * an HttpOnly cookie, whose SHA-256 is stored server-side with the pending
 * request. An answer arriving in another browser (a forwarded link, an
 * attacker's response injected into a victim's session) finds nothing.
 *
 * The value is kept while the cookie lives, so flows in two tabs of one
 * browser both complete. Over https the cookie is Secure and `__Host-`
 * prefixed (no Domain, Path=/), so no sibling host can set or read it.
 */
export interface BrowserBinding {
  /** The cookie's name; over https it is sent as `__Host-<name>`. */
  name: string;
  /**
   * 'none' when the cookie must ride a cross-site request (an IdP's POST to
   * the ACS). SameSite=None requires Secure, so over plain http other than
   * localhost it falls back to 'lax'.
   */
  sameSite: 'lax' | 'none';
  /** How browsers reach Gatehouse (its base URL): `browserTransportOf`. */
  transport: BrowserTransport;
  ttlSeconds: number;
}

/**
 * - `https`: Secure cookies, `__Host-` prefixed.
 * - `localhost`: plain http to a localhost name. Browsers treat it as a secure
 *   context (W3C Secure Contexts §3.1, "potentially trustworthy"; RFC 6761 §6.3
 *   keeps the name on loopback), so they accept and send `Secure;
 *   SameSite=None` cookies over it (Chromium 89+, Firefox 75+) and an IdP's
 *   cross-site POST to the ACS carries the binding. No `__Host-` prefix: not
 *   every browser honours it without TLS.
 * - `http`: any other plain-http URL. Secure cookies are refused there, so the
 *   cookie falls back to SameSite=Lax and a cross-site POST (SAML) arrives
 *   without it; `plainHttpWarning` says so at start.
 */
export type BrowserTransport = 'https' | 'localhost' | 'http';

export function browserTransportOf(baseUrl: string): BrowserTransport {
  const url = new URL(baseUrl);
  if (url.protocol === 'https:') return 'https';
  // Only the name: 127.0.0.1 is trustworthy too, but a SAML IdP on another loopback
  // address or port is then same-site, and the name is what the default base URL uses.
  const host = url.hostname.toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') ? 'localhost' : 'http';
}

/** The start-up warning for a base URL whose SSO cookies cannot ride an IdP's cross-site POST; null when they can. */
export function plainHttpWarning(baseUrl: string): string | null {
  if (browserTransportOf(baseUrl) !== 'http') return null;
  return (
    `GATEHOUSE_BASE_URL ${baseUrl} is plain http on a host other than localhost: browsers refuse ` +
    'Secure cookies there, so the SSO binding cookie is SameSite=Lax and is not sent on a SAML ' +
    "IdP's cross-site POST to the ACS; those sign-ins will fail with saml_in_response_to_invalid. " +
    'Use https, or http://localhost for local development.'
  );
}

const VALUE = /^[A-Za-z0-9_-]{43}$/;

const cookieName = (binding: Pick<BrowserBinding, 'name' | 'transport'>) =>
  binding.transport === 'https' ? `__Host-${binding.name}` : binding.name;

/** The first cookie of that name, when it has the shape of a binding value. */
function readCookie(req: Request, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq >= 0 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return VALUE.test(value) ? value : null;
    }
  }
  return null;
}

/** The hash of this browser's binding value; sets the cookie when absent and refreshes its lifetime. */
export function bindBrowser(req: Request, res: Response, binding: BrowserBinding): string {
  const name = cookieName(binding);
  const value = readCookie(req, name) ?? randomBytes(32).toString('base64url');
  res.cookie(name, value, {
    httpOnly: true,
    secure: binding.transport !== 'http',
    sameSite: binding.transport === 'http' ? 'lax' : binding.sameSite,
    path: '/',
    maxAge: binding.ttlSeconds * 1000,
  });
  return sha256Base64url(value);
}

/** The hash of the binding value this browser presents, or null. */
export function presentedBinding(
  req: Request,
  binding: Pick<BrowserBinding, 'name' | 'transport'>,
): string | null {
  const value = readCookie(req, cookieName(binding));
  return value ? sha256Base64url(value) : null;
}
