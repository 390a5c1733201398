import type * as client from 'openid-client';

/**
 * When may Gatehouse fetch an OIDC IdP's JWKS again?
 *
 * oauth4webapi (under openid-client) keeps a JWKS copy per Configuration for
 * five minutes and, on an ID token whose `kid` it does not know, refetches
 * only once its copy is 60 s old; before that the token is refused. An IdP
 * that rotates its key would see its first logins refused for up to a minute.
 *
 * This gate makes an unknown `kid` refetch at once, bounded against kid
 * spraying: each exchange gets a fresh Configuration (oidc-config.ts) whose
 * copy is presented as 60 s old (`present`), so the library goes to fetch on
 * an unknown kid; the fetch goes through `fetch` below, which lets at most one
 * such refetch per `cooldownMs` reach the IdP per connection and answers the
 * others from the last JWKS it received (the library then refuses the token,
 * as before). The first fetch of a connection is not a refetch and is never
 * held back. The clock is an argument everywhere.
 */

/** oauth4webapi refetches on an unknown kid once its copy is this old (seconds). */
const LIBRARY_REFETCH_AGE_S = 60;
/** oauth4webapi discards a copy this old (seconds): presented as is, it is refetched anyway. */
const LIBRARY_MAX_AGE_S = 300;

interface Received {
  /** When it came from the IdP (epoch seconds). */
  atS: number;
  status: number;
  headers: [string, string][];
  body: string;
}

export class JwksRefetchGate {
  /** The JWKS and when it was fetched, as the library exports it. */
  private cache: client.ExportedJWKSCache | undefined;
  private lastReceived: Received | null = null;
  private lastRefetchMs: number | null = null;
  private inflight: Promise<Received> | null = null;

  constructor(
    readonly jwksUri: string | undefined,
    private readonly cooldownMs: number,
  ) {}

  /** The copy one exchange starts from: aged so that an unknown kid makes the library fetch. */
  present(nowMs: number): client.ExportedJWKSCache | undefined {
    if (!this.cache) return undefined;
    const nowS = Math.floor(nowMs / 1000);
    const age = nowS - this.cache.uat;
    if (age >= LIBRARY_MAX_AGE_S) return undefined;
    return { jwks: this.cache.jwks, uat: Math.min(this.cache.uat, nowS - LIBRARY_REFETCH_AGE_S) };
  }

  /** After an exchange: keep the JWKS the library fetched, if it fetched one. */
  keep(presented: client.ExportedJWKSCache | undefined, after: client.ExportedJWKSCache | undefined): void {
    if (!after || after.uat === presented?.uat) return;
    // A copy the gate answered from its last JWKS is as old as that JWKS.
    this.cache = { jwks: after.jwks, uat: Math.min(after.uat, this.lastReceived?.atS ?? after.uat) };
  }

  /** Wraps the connection's fetch: a GET of the JWKS goes through the gate, everything else straight on. */
  wrap(inner: client.CustomFetch, now: () => number = Date.now): client.CustomFetch {
    return async (url, options) => {
      if (url !== this.jwksUri || options.method !== 'GET') return inner(url, options);
      return responseOf(await this.jwks(() => inner(url, options), now()));
    };
  }

  private async jwks(fetchNow: () => Promise<Response>, nowMs: number): Promise<Received> {
    if (this.inflight) return this.inflight;
    const refetch = this.cache !== undefined;
    if (
      refetch &&
      this.lastReceived &&
      this.lastRefetchMs !== null &&
      nowMs - this.lastRefetchMs < this.cooldownMs
    )
      return this.lastReceived;
    if (refetch) this.lastRefetchMs = nowMs;
    this.inflight = (async () => {
      const response = await fetchNow();
      const received: Received = {
        atS: Math.floor(nowMs / 1000),
        status: response.status,
        headers: [...response.headers.entries()],
        body: await response.text(),
      };
      if (received.status === 200) this.lastReceived = received;
      return received;
    })();
    try {
      return await this.inflight;
    } finally {
      this.inflight = null;
    }
  }
}

function responseOf(received: Received): Response {
  return new Response(received.body, { status: received.status, headers: received.headers });
}
