import { createHash, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';

/**
 * Binds a login in progress to the browser that started it: a random value in
 * an HttpOnly cookie, whose SHA-256 is stored with the pending AuthnRequest or
 * OIDC state. An answer arriving in another browser (a forwarded link, an
 * attacker's response injected into a victim's session) finds nothing.
 *
 * The IdP returns with a cross-site POST (SAML) or a top-level GET (OIDC), so
 * the cookie is SameSite=None; over https it is also Secure and __Host-
 * prefixed (no Domain, Path=/), so no sibling host can set or read it.
 */
const VALUE = /^[A-Za-z0-9_-]{43}$/;

function cookieName(secure: boolean): string {
  return secure ? '__Host-gatehouse_sso' : 'gatehouse_sso';
}

function readCookie(req: Request, name: string): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return VALUE.test(value) ? value : null;
    }
  }
  return null;
}

export function hashBinding(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

export interface BindingOptions {
  /** Whether Gatehouse is served over https (its base URL). */
  secure: boolean;
  ttlSeconds: number;
}

/**
 * The hash of this browser's binding value, setting the cookie when absent. An
 * existing value is kept, so logins in two tabs of one browser both complete.
 */
export function bindBrowser(req: Request, res: Response, options: BindingOptions): string {
  const name = cookieName(options.secure);
  let value = readCookie(req, name);
  if (!value) value = randomBytes(32).toString('base64url');
  res.cookie(name, value, {
    httpOnly: true,
    secure: options.secure,
    // SameSite=None requires Secure; plain-http development falls back to Lax.
    sameSite: options.secure ? 'none' : 'lax',
    path: '/',
    maxAge: options.ttlSeconds * 1000,
  });
  return hashBinding(value);
}

/** The hash of the binding value this browser presents, or null. */
export function presentedBinding(req: Request, options: Pick<BindingOptions, 'secure'>): string | null {
  const value = readCookie(req, cookieName(options.secure));
  return value ? hashBinding(value) : null;
}
