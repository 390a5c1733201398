import type { JWTPayload } from 'jose';

/** The algorithms Gatehouse signs with (apps choose one; ES256 by default). */
export type SigningAlg = 'ES256' | 'EdDSA' | 'RS256';

/**
 * Signs JWTs with Gatehouse's current signing key for an algorithm (keys live in
 * signing_keys, private parts sealed under the master key; see the sign-in
 * issue). Used for ID tokens, access tokens (typ at+jwt) and back-channel
 * logout tokens (typ logout+jwt). Verifiers use the JWKS. The port is declared
 * here, where back-channel logout needs it, and implemented in src/tokens, so
 * sessions never imports tokens/ (docs/architecture.md, dependency direction).
 */
export interface TokenSigner {
  sign(payload: JWTPayload, options: { alg: SigningAlg; typ: string }): Promise<string>;
  /**
   * Resolves once `sign` no longer reads the database. Await it before opening a transaction inside
   * which `sign` runs: a connection must never be held waiting for another from the same pool.
   */
  ready(): Promise<void>;
}
