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
   * the ACS). SameSite=None requires Secure, so over plain http (development)
   * it falls back to 'lax'.
   */
  sameSite: 'lax' | 'none';
  /** Whether Gatehouse is served over https (its base URL). */
  secure: boolean;
  ttlSeconds: number;
}

const VALUE = /^[A-Za-z0-9_-]{43}$/;

const cookieName = (binding: Pick<BrowserBinding, 'name' | 'secure'>) =>
  binding.secure ? `__Host-${binding.name}` : binding.name;

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
    secure: binding.secure,
    sameSite: binding.secure ? binding.sameSite : 'lax',
    path: '/',
    maxAge: binding.ttlSeconds * 1000,
  });
  return sha256Base64url(value);
}

/** The hash of the binding value this browser presents, or null. */
export function presentedBinding(
  req: Request,
  binding: Pick<BrowserBinding, 'name' | 'secure'>,
): string | null {
  const value = readCookie(req, cookieName(binding));
  return value ? sha256Base64url(value) : null;
}
