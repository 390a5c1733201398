import * as client from 'openid-client';
import { open } from '../../config/secret-box.js';
import type { Connection } from '../../connections/connection.entity.js';
import { LoginRefusedError } from '../reasons.js';
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
}

/**
 * openid-client Configurations per connection: discovery (issuer must match
 * exactly — openid-client checks), the client secret opened from its sealed
 * column, the ID token algorithms pinned to the connection's list by
 * narrowing the metadata's `id_token_signing_alg_values_supported` to it, and
 * the ID token signature verified against the IdP's JWKS (openid-client
 * otherwise trusts TLS to the token endpoint alone).
 * Cached per connection version, so an edited connection is rediscovered.
 */
export class OidcConfigurations {
  private readonly cache = new Map<string, { until: number; config: Promise<client.Configuration> }>();

  constructor(private readonly options: OidcClientOptions) {}

  forConnection(connection: Connection, now = Date.now()): Promise<client.Configuration> {
    const key = `${connection.tenantId}:${connection.id}:${connection.updatedAt.getTime()}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.config;
    const config = this.discover(connection);
    this.cache.set(key, { until: now + this.options.cacheTtlMs, config });
    config.catch(() => this.cache.delete(key));
    return config;
  }

  private async discover(connection: Connection): Promise<client.Configuration> {
    if (!connection.oidcIssuer || !connection.oidcClientId || !connection.oidcClientSecretEnc)
      throw new LoginRefusedError(
        'connection_misconfigured',
        `connection ${connection.id} lacks issuer or client`,
      );
    const algorithms = pinnedIdTokenAlgorithms(connection);
    if (algorithms.length === 0)
      throw new LoginRefusedError('connection_misconfigured', 'no acceptable ID token algorithm pinned');
    let secret: string;
    try {
      secret = open(this.options.masterKey, connection.oidcClientSecretEnc, clientSecretContext(connection));
    } catch (cause) {
      throw new LoginRefusedError('connection_misconfigured', 'the client secret does not open', { cause });
    }

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
    const methods = metadata.token_endpoint_auth_methods_supported;
    // OIDC Discovery §3: absent means client_secret_basic.
    const auth =
      !methods || methods.includes('client_secret_basic')
        ? client.ClientSecretBasic(secret)
        : client.ClientSecretPost(secret);
    const config = new client.Configuration(
      metadata,
      connection.oidcClientId,
      { [client.clockTolerance]: this.options.clockSkewSeconds },
      auth,
    );
    config[client.customFetch] = this.options.fetch;
    if (this.options.allowInsecureRequests) client.allowInsecureRequests(config);
    // The ID token's signature is checked against the IdP's JWKS too, not only TLS to its token endpoint.
    client.enableNonRepudiationChecks(config);
    config.timeout = Math.ceil(this.options.timeoutMs / 1000);
    return config;
  }
}
