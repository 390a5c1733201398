import type { JWTPayload } from 'jose';
import type { SigningAlg } from './app.entity.js';

/**
 * Signs JWTs with Gatehouse's current signing key for an algorithm (keys live in
 * signing_keys, private parts sealed under the master key; see the sign-in
 * issue). Used for ID tokens, access tokens (typ at+jwt) and back-channel
 * logout tokens (typ logout+jwt). Verifiers use the JWKS.
 */
export interface TokenSigner {
  sign(payload: JWTPayload, options: { alg: SigningAlg; typ: string }): Promise<string>;
}
