import { createHash } from 'node:crypto';
import * as client from 'openid-client';
import { findApp } from '../apps/apps.service.js';
import { ensureWellKnownPublicApp } from '../apps/well-known-app.js';
import type { Database } from '../db/database.js';
import { DomainError } from '../errors.js';

/**
 * As which client, and how, does the portal sign tenant admins in? The portal
 * is an OAuth 2.0 / OIDC client of Gatehouse's own OpenID Provider, exactly
 * as the main app is: a registered app (platform table `apps`, through
 * apps.service), discovery, the authorization code flow with PKCE, state and
 * nonce, the code redeemed at /oauth/token and the ID token verified by
 * openid-client against the JWKS — the tokens are issued by the OP and
 * checked as any client checks them, with no shortcut into src/tokens.
 *
 * The app: `Gatehouse Admin Portal`, a public client (RFC 6749 §2.1) whose one
 * redirect URI is `${baseUrl}/portal/oidc/callback`, created on first use when
 * absent, under a well-known id (portalAppId), so nodes racing create one. Public, not confidential: its secret could only live in this same
 * process, so it would prove nothing the exact redirect URI on Gatehouse's own
 * origin and PKCE (required for public clients, RFC 9700 §2.1.1) do not. It is
 * not GATEHOUSE_ADMIN_CLIENT_ID: that app's tokens open /admin/v1, and a
 * portal sign-in must not mint tokens for the admin API.
 *
 * The server-side calls (discovery, token, JWKS) go over HTTP to the base URL,
 * or to GATEHOUSE_PORTAL_OP_URL when the node cannot reach its own public URL
 * (behind a proxy without hairpin routing): only the origin is rewritten; the
 * issuer, and so the ID token's `iss`, stays the base URL.
 */

export const PORTAL_APP_NAME = 'Gatehouse Admin Portal';
/** How long a discovered configuration (and its JWKS copy) is reused. */
const DISCOVERY_TTL_MS = 5 * 60_000;
/** The OP is this installation: its clock is ours, but nodes may differ by a little. */
const CLOCK_TOLERANCE_SECONDS = 5;

export const portalCallbackUrl = (baseUrl: string) => `${baseUrl}/portal/oidc/callback`;
export const portalSigninUrl = (baseUrl: string) => `${baseUrl}/portal/signin`;

export interface PortalClientDeps {
  db: Database;
  baseUrl: string;
  /** GATEHOUSE_PORTAL_OP_URL; unset: the base URL itself. */
  opUrl?: string;
}

/** Deleted portal apps skipped before giving up (each deletion moves the portal to its next id). */
const MAX_GENERATIONS = 1000;

/**
 * The portal app's well-known id for this callback URL: a UUID (RFC 9562 §5.8, version 8) from SHA-256 over the
 * callback and a generation. Every node derives the same id, so a first sign-in racing on several nodes creates
 * one app (INSERT … ON CONFLICT DO NOTHING, then read: apps/well-known-app.ts). Generation n+1 is used once
 * app n was deleted (its row stays, soft-deleted), so "the next sign-in registers it again" still holds.
 */
export function portalAppId(baseUrl: string, generation: number): string {
  const hex = createHash('sha256')
    .update(`gatehouse:portal-app:${portalCallbackUrl(baseUrl)}:${generation}`)
    .digest('hex');
  const variant = ((parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The portal's registered app: the first of its well-known ids that is not deleted, created when absent. */
export async function ensurePortalApp(db: Database, baseUrl: string): Promise<string> {
  for (let generation = 0; generation < MAX_GENERATIONS; generation++) {
    const app = await ensureWellKnownPublicApp(
      db,
      portalAppId(baseUrl, generation),
      {
        name: PORTAL_APP_NAME,
        redirect_uris: [portalCallbackUrl(baseUrl)],
        post_logout_redirect_uris: [portalSigninUrl(baseUrl)],
      },
      { actor: { type: 'system', id: 'portal' } },
    );
    if (app) return app.client_id;
  }
  throw new Error(`portal app: ${MAX_GENERATIONS} deleted portal apps; none left to create`);
}

export class PortalOidcClient {
  private appId: Promise<string> | null = null;
  private discovered: { until: number; config: Promise<client.Configuration> } | null = null;

  constructor(private readonly deps: PortalClientDeps) {}

  /** The portal app's client_id; looked up again when the app was deleted since. */
  async clientId(): Promise<string> {
    if (this.appId) {
      const id = await this.appId.catch(() => null);
      if (id && (await findApp(this.deps.db, id))) return id;
      this.discovered = null;
    }
    const next = ensurePortalApp(this.deps.db, this.deps.baseUrl);
    this.appId = next;
    next.catch(() => {
      if (this.appId === next) this.appId = null;
    });
    return next;
  }

  /** The openid-client Configuration, every security option set here rather than left to a default. */
  async configuration(now = Date.now()): Promise<client.Configuration> {
    const clientId = await this.clientId();
    if (!this.discovered || this.discovered.until <= now) {
      const config = this.discover(clientId).catch((cause: unknown) => {
        // Named, not mistaken for a database outage: the node cannot reach its own OP (docs/portal.md).
        throw new DomainError(
          'unavailable',
          'The portal cannot reach Gatehouse’s sign-in service; try again',
          {
            detail: `discovery at ${this.deps.opUrl ?? this.deps.baseUrl} failed: ${String(cause)}`,
            cause,
          },
        );
      });
      const entry = { until: now + DISCOVERY_TTL_MS, config };
      this.discovered = entry;
      config.catch(() => {
        if (this.discovered === entry) this.discovered = null;
      });
    }
    return this.discovered.config;
  }

  private async discover(clientId: string): Promise<client.Configuration> {
    const { baseUrl } = this.deps;
    const insecure = new URL(baseUrl).protocol === 'http:';
    const fetchViaOpUrl = this.fetchViaOpUrl();
    const config = await client.discovery(
      new URL(baseUrl),
      clientId,
      { [client.clockTolerance]: CLOCK_TOLERANCE_SECONDS },
      // A public client: RFC 6749 §2.3 none, PKCE instead of a secret.
      client.None(),
      {
        execute: insecure ? [client.allowInsecureRequests] : [],
        [client.customFetch]: fetchViaOpUrl,
        timeout: 10,
      },
    );
    config[client.customFetch] = fetchViaOpUrl;
    // The ID token's signature is checked against the OP's JWKS, not trusted from the token response alone.
    client.enableNonRepudiationChecks(config);
    return config;
  }

  /** Every request to the OP, with the base URL's origin replaced by GATEHOUSE_PORTAL_OP_URL when set. */
  private fetchViaOpUrl(): client.CustomFetch {
    const { baseUrl, opUrl } = this.deps;
    return (url, options) => {
      const target = opUrl && url.startsWith(`${baseUrl}/`) ? `${opUrl}${url.slice(baseUrl.length)}` : url;
      return fetch(target, options as RequestInit);
    };
  }
}
