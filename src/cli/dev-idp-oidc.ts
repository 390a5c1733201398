import type { Request, Response, Router } from 'express';
import express from 'express';
import type { JWK } from 'jose';
import { isLoopbackUrl } from './dev-idp-saml.js';
import { pickerPage, splitName, type DevPerson } from './dev-idp-users.js';

/**
 * The development IdP's OpenID Provider: `oidc-provider` (an independent,
 * certified OP), mounted at /oidc, with one confidential client for
 * Gatehouse whose redirect URIs are any `/oidc/{connectionId}/callback` on
 * this machine (Gatehouse names the callback after the connection, known
 * only once the connection exists). Logins go through the picker page.
 */
export const DEV_CLIENT_ID = 'gatehouse';
const CALLBACK_PATH = /^\/oidc\/[^/]+\/callback$/;

export async function createOidcProvider(options: {
  baseUrl: string;
  clientSecret: string;
  signingKey: JWK;
  cookieKey: string;
  people: () => DevPerson[];
}): Promise<{ router: Router; issuer: string }> {
  const { default: Provider } = await import('oidc-provider');
  const issuer = `${options.baseUrl}/oidc`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: DEV_CLIENT_ID,
        client_secret: options.clientSecret,
        redirect_uris: ['http://localhost:8080/oidc/dev-idp/callback'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [options.signingKey] },
    cookies: { keys: [options.cookieKey] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'groups'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    // Every claim in the ID token too, so a relying party that reads only the ID token sees them.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    // Lifetimes set explicitly (seconds): a sign-in page left open for ten minutes, a day's session.
    ttl: { Interaction: 600, Session: 86_400, Grant: 86_400, AccessToken: 600, IdToken: 600 },
    interactions: { url: (_ctx, interaction) => `/oidc/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => {
      const person = options.people().find((p) => p.email === sub);
      if (!person) return undefined;
      const { given, family } = splitName(person.name);
      return {
        accountId: sub,
        claims: () => ({
          sub,
          email: person.email,
          email_verified: true,
          name: person.name,
          given_name: given,
          ...(family ? { family_name: family } : {}),
          groups: person.groups,
        }),
      };
    },
  });
  // oidc-provider's documented recipe for redirect URI patterns: the registered list plus
  // Gatehouse's per-connection callback, on this machine only.
  const prototype = provider.Client.prototype;
  const registered = (client: typeof prototype, uri: string): boolean =>
    client.redirectUris?.includes(uri) ?? false;
  prototype.redirectUriAllowed = function (this: typeof prototype, uri: string) {
    return (isLoopbackUrl(uri) && CALLBACK_PATH.test(new URL(uri).pathname)) || registered(this, uri);
  };

  async function interaction(req: Request, res: Response): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      const email = (req.body as Record<string, unknown> | undefined)?.email;
      const person = options.people().find((p) => p.email === email);
      if (req.method === 'GET' || !person) {
        res
          .type('html')
          .send(
            pickerPage(
              'Sign in with OpenID Connect',
              `/oidc/interaction/${details.uid}`,
              options.people(),
              {},
            ),
          );
        return;
      }
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: person.email } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    // Consent: granted at once for the one client (a development IdP asks nothing).
    const grant = new provider.Grant({
      accountId: details.session?.accountId ?? '',
      clientId: DEV_CLIENT_ID,
    });
    grant.addOIDCScope(typeof details.params.scope === 'string' ? details.params.scope : 'openid');
    await provider.interactionFinished(
      req,
      res,
      { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true },
    );
  }

  const router = express.Router();
  router.get('/oidc/interaction/:uid', interaction);
  router.post('/oidc/interaction/:uid', express.urlencoded({ extended: false }), interaction);
  const callback = provider.callback();
  router.use('/oidc', (req, res) => {
    void callback(req, res);
  });
  return { router, issuer };
}
