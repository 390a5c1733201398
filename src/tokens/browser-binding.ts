import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { hashToken } from './opaque-tokens.js';

/**
 * Binds a pending authorization to the browser that made it: a random value in
 * an HttpOnly, SameSite=Lax cookie; only its SHA-256 is stored with the
 * request. The value is reused while the cookie lives, so two tabs of one
 * browser can sign in at once. Over https the cookie is Secure and __Host-.
 *
 * SameSite=Lax is not sent on the IdP's cross-site POST to the ACS, so the
 * check happens one step later, on the same-site GET /oauth/authorize/continue
 * that the completed login redirects to (see completer.ts).
 */
const VALUE = /^[A-Za-z0-9_-]{43}$/;

export function bindingCookieName(secure: boolean): string {
  return secure ? '__Host-gatehouse_authz' : 'gatehouse_authz';
}

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

/** The hash of this browser's binding value; sets (or refreshes) the cookie. */
export function bindAuthorizationToBrowser(
  req: Request,
  res: Response,
  options: { secure: boolean; ttlSeconds: number },
): string {
  const name = bindingCookieName(options.secure);
  const value = readCookie(req, name) ?? randomBytes(32).toString('base64url');
  res.cookie(name, value, {
    httpOnly: true,
    secure: options.secure,
    sameSite: 'lax',
    path: '/',
    maxAge: options.ttlSeconds * 1000,
  });
  return hashToken(value);
}

/** The hash of the binding value this browser presents, or null. */
export function presentedBrowserBinding(req: Request, secure: boolean): string | null {
  const value = readCookie(req, bindingCookieName(secure));
  return value ? hashToken(value) : null;
}
