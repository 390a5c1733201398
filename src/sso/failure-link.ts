import { open, seal } from '../config/secret-box.js';
import type { LoginFailure } from './login-handoff.js';

/**
 * "Back to the application" on an error page: GET /sso/continue ends the
 * app's pending authorization with an OAuth error through the completer. The
 * link carries the login id and the failure sealed under the master key (so
 * nobody can forge a failure or pick another login), bound to this browser's
 * SSO cookie and expiring with the login.
 */
export interface FailureHandoff {
  loginId: string;
  failure: LoginFailure;
  /** Hash of the browser binding the continuation must present. */
  binding: string;
  /** Epoch milliseconds after which the value is refused. */
  expiresAt: number;
}

const CONTEXT = 'sso_failure_handoff:v1';

interface SealedShape {
  l: string;
  b: string;
  e: number;
  f: LoginFailure;
}

export function sealFailureHandoff(masterKey: Buffer, handoff: FailureHandoff): string {
  const shape: SealedShape = {
    l: handoff.loginId,
    b: handoff.binding,
    e: handoff.expiresAt,
    f: handoff.failure,
  };
  return seal(masterKey, JSON.stringify(shape), CONTEXT);
}

/** The handoff, or null when it does not open, is malformed or has expired at `now`. */
export function openFailureHandoff(masterKey: Buffer, sealed: string, now: Date): FailureHandoff | null {
  let shape: SealedShape;
  try {
    shape = JSON.parse(open(masterKey, sealed, CONTEXT)) as SealedShape;
  } catch {
    return null;
  }
  if (typeof shape.e !== 'number' || shape.e <= now.getTime()) return null;
  if (typeof shape.l !== 'string' || typeof shape.b !== 'string' || typeof shape.f?.reason !== 'string')
    return null;
  return { loginId: shape.l, binding: shape.b, expiresAt: shape.e, failure: shape.f };
}
