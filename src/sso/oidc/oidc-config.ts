import * as client from 'openid-client';
import { open } from '../../config/secret-box.js';
import type { Connection } from '../../connections/connection.entity.js';

/** base64url SHA-1 and SHA-256 of the client key's certificate (connections/client-keys.ts). */
interface CertificateThumbprints {
  x5t: string;
  'x5t#S256': string;
}
import { LoginRefusedError } from '../reasons.js';
import { JwksRefetchGate } from './jwks-refetch.js';
import { loginRefusalIn } from './oidc-errors.js';

/** ID token algorithms a connection may pin: never `none`, never HS* (the "key" would be public). */
const ASYMMETRIC = /^(RS|PS|ES)(256|384|512)$|^EdDSA$|^Ed25519$/;

export function pinnedIdTokenAlgorithms(connection: Pick<Connection, 'oidcIdTokenAlgs'>): string[] {
  return connection.oidcIdTokenAlgs.filter((alg) => ASYMMETRIC.test(alg));
}

export function clientSecretContext(connection: Pick<Connection, 'tenantId' | 'id'>): string {
  return `connection:${connection.tenantId}:${connection.id}:oidc_client_secret`;
}

export interface OidcClientOptions {
  masterKey: Buffer;
  /** Development only (GATEHOUSE_ALLOW_PRIVATE_METADATA_URLS): http:// issuers. */
  allowInsecureRequests: boolean;
  clockSkewSeconds: number;
  timeoutMs: number;
  /** How long a discovered configuration is reused. */
  cacheTtlMs: number;
  /** Every request to the IdP (discovery, JWKS, token, userinfo) goes through it (src/outbound/fetch-client.ts). */
  fetch: client.CustomFetch;
  /** At most one JWKS refetch on an unknown `kid` per this many ms per connection (jwks-refetch.ts). */
  jwksRefetchCooldownMs: number;
  /** private_key_jwt: the connection's current client key, opened (src/connections/client-keys.ts). */
  loadClientKey?: (
    connection: Connection,
  ) => Promise<{ key: client.CryptoKey; kid: string; thumbprints: CertificateThumbprints } | null>;
}

/** What discovery found for a connection, kept between logins. */
interface Discovered {
  metadata: client.ServerMetadata;
  clientId: string;
  auth: client.ClientAuth;
  jwks: JwksRefetchGate;
}

/** One login's Configuration and the JWKS copy it started from. */
interface Issued {
  gate: JwksRefetchGate;
  presented: client.ExportedJWKSCache | undefined;
}

/**
 * openid-client Configurations per connection: discovery (issuer must match
 * exactly — openid-client checks), the client secret opened from its sealed
 * column, the ID token algorithms pinned to the connection's list by
 * narrowing the metadata's `id_token_signing_alg_values_supported` to it, and
 * the ID token signature verified against the IdP's JWKS (openid-client
 * otherwise trusts TLS to the token endpoint alone).
 * Discovery is cached per connection version, so an edited connection is
 * rediscovered; each call gets a Configuration of its own, so the IdP's JWKS
 * copy is handed over by JwksRefetchGate (an unknown `kid` refetches at once).
 */
export class OidcConfigurations {
  private readonly cache = new Map<string, { until: number; discovered: Promise<Discovered> }>();
  private readonly issued = new WeakMap<client.Configuration, Issued>();

  constructor(private readonly options: OidcClientOptions) {}

  async forConnection(connection: Connection, now = Date.now()): Promise<client.Configuration> {
    const key = `${connection.tenantId}:${connection.id}:${connection.updatedAt.getTime()}`;
    let hit = this.cache.get(key);
    if (!hit || hit.until <= now) {
      const discovered = this.discover(connection);
      hit = { until: now + this.options.cacheTtlMs, discovered };
      this.cache.set(key, hit);
      discovered.catch(() => this.cache.delete(key));
    }
    return this.configure(await hit.discovered, now);
  }

  /** After a login's token exchange, accepted or not: keep the JWKS it fetched for the next logins. */
  keepJwks(config: client.Configuration): void {
    const issued = this.issued.get(config);
    issued?.gate.keep(issued.presented, client.getJwksCache(config));
  }

  private configure(discovered: Discovered, now: number): client.Configuration {
    const config = new client.Configuration(
      discovered.metadata,
      discovered.clientId,
      { [client.clockTolerance]: this.options.clockSkewSeconds },
      discovered.auth,
    );
    config[client.customFetch] = discovered.jwks.wrap(this.options.fetch);
    if (this.options.allowInsecureRequests) client.allowInsecureRequests(config);
    // The ID token's signature is checked against the IdP's JWKS too, not only TLS to its token endpoint.
    client.enableNonRepudiationChecks(config);
    config.timeout = Math.ceil(this.options.timeoutMs / 1000);
    const presented = discovered.jwks.present(now);
    if (presented) client.setJwksCache(config, presented);
    this.issued.set(config, { gate: discovered.jwks, presented });
    return config;
  }

  /** The client secret in clear, for the methods that use it. */
  private secretOf(connection: Connection): string {
    if (!connection.oidcClientSecretEnc)
      throw new LoginRefusedError(
        'connection_misconfigured',
        `connection ${connection.id} has no client secret`,
      );
    try {
      return open(this.options.masterKey, connection.oidcClientSecretEnc, clientSecretContext(connection));
    } catch (cause) {
      throw new LoginRefusedError('connection_misconfigured', 'the client secret does not open', { cause });
    }
  }

  /**
   * Token endpoint authentication (OIDC Core §9), as the connection sets it.
   * Unset keeps the old choice: client_secret_basic unless the IdP lists only
   * client_secret_post (OIDC Discovery §3: an absent list means basic).
   * client_secret_jwt signs an HS256 assertion with the secret; private_key_jwt
   * (RFC 7523 §2.2) signs with the connection's current key, its `kid` in the
   * header so the IdP picks it from our JWKS.
   */
  private async clientAuth(
    connection: Connection,
    metadata: client.ServerMetadata,
  ): Promise<client.ClientAuth> {
    switch (connection.oidcClientAuthMethod) {
      case 'client_secret_basic':
        return client.ClientSecretBasic(this.secretOf(connection));
      case 'client_secret_post':
        return client.ClientSecretPost(this.secretOf(connection));
      case 'client_secret_jwt':
        return client.ClientSecretJwt(this.secretOf(connection));
      case 'none':
        return client.None();
      case 'private_key_jwt': {
        let loaded: { key: client.CryptoKey; kid: string; thumbprints: CertificateThumbprints } | null;
        try {
          loaded = (await this.options.loadClientKey?.(connection)) ?? null;
        } catch (cause) {
          throw new LoginRefusedError('connection_misconfigured', 'the client key does not open', { cause });
        }
        if (!loaded) throw new LoginRefusedError('connection_misconfigured', 'no current client key');
        const { thumbprints } = loaded;
        // RFC 7515 §4.1.7-4.1.8: Entra ID finds the uploaded certificate by `x5t` (newer docs: `x5t#S256`).
        return client.PrivateKeyJwt(
          { key: loaded.key, kid: loaded.kid },
          {
            [client.modifyAssertion]: (header) => {
              header.x5t = thumbprints.x5t;
              header['x5t#S256'] = thumbprints['x5t#S256'];
            },
          },
        );
      }
      default: {
        const methods = metadata.token_endpoint_auth_methods_supported;
        const secret = this.secretOf(connection);
        return !methods || methods.includes('client_secret_basic')
          ? client.ClientSecretBasic(secret)
          : client.ClientSecretPost(secret);
      }
    }
  }

  private async discover(connection: Connection): Promise<Discovered> {
    if (!connection.oidcIssuer || !connection.oidcClientId)
      throw new LoginRefusedError(
        'connection_misconfigured',
        `connection ${connection.id} lacks issuer or client`,
      );
    const algorithms = pinnedIdTokenAlgorithms(connection);
    if (algorithms.length === 0)
      throw new LoginRefusedError('connection_misconfigured', 'no acceptable ID token algorithm pinned');

    let discovered: client.Configuration;
    try {
      discovered = await client.discovery(
        new URL(connection.oidcIssuer),
        connection.oidcClientId,
        undefined,
        undefined,
        {
          execute: this.options.allowInsecureRequests ? [client.allowInsecureRequests] : [],
          timeout: Math.ceil(this.options.timeoutMs / 1000),
          [client.customFetch]: this.options.fetch,
        },
      );
    } catch (cause) {
      // An address the guard refused says so; anything else is an unreachable or broken IdP.
      throw (
        loginRefusalIn(cause) ??
        new LoginRefusedError('oidc_provider_unavailable', 'discovery failed', { cause })
      );
    }
    // The discovered document as plain JSON (without openid-client's helper methods), algorithms narrowed.
    const metadata: client.ServerMetadata = {
      ...(JSON.parse(JSON.stringify(discovered.serverMetadata())) as client.ServerMetadata),
      id_token_signing_alg_values_supported: algorithms,
    };
    const auth = await this.clientAuth(connection, metadata);
    return {
      metadata,
      clientId: connection.oidcClientId,
      auth,
      jwks: new JwksRefetchGate(metadata.jwks_uri, this.options.jwksRefetchCooldownMs),
    };
  }
}
