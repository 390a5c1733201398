import * as client from 'openid-client';
import { createApp, findApp, listApps } from '../apps/apps.service.js';
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
 * absent. Public, not confidential: its secret could only live in this same
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

/** The portal's registered app: the oldest one that matches, or a new one (two nodes racing make two; both work). */
async function findOrCreatePortalApp(db: Database, baseUrl: string): Promise<string> {
  const callback = portalCallbackUrl(baseUrl);
  for (let offset = 0; ; offset += 100) {
    const page = await listApps(db, { limit: 100, offset });
    const hit = page.data.find(
      (a) => a.name === PORTAL_APP_NAME && a.client_type === 'public' && a.redirect_uris.includes(callback),
    );
    if (hit) return hit.client_id;
    if (page.data.length === 0 || offset + page.data.length >= page.total) break;
  }
  const created = await createApp(
    db,
    {
      name: PORTAL_APP_NAME,
      client_type: 'public',
      redirect_uris: [callback],
      post_logout_redirect_uris: [portalSigninUrl(baseUrl)],
    },
    { actor: { type: 'system', id: 'portal' } },
  );
  return created.client_id;
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
    const next = findOrCreatePortalApp(this.deps.db, this.deps.baseUrl);
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
