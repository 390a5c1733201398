import { Router } from 'express';
import type { Config } from '../config/config.js';
import { SUPPORTED_SCOPES } from './authorize/authorize.js';
import { allowAnyOrigin } from './cors.js';
import type { SigningKeyStore } from './keys/key-store.js';
import { SIGNING_ALGS } from './keys/signing-keys.service.js';

/** OIDC Discovery 1.0 §3 (+ RFC 8414, RFC 9207) and the JWKS. */
export function openIdConfiguration(baseUrl: string): Record<string, unknown> {
  return {
    issuer: baseUrl,
    authorization_endpoint: `${baseUrl}/oauth/authorize`,
    token_endpoint: `${baseUrl}/oauth/token`,
    userinfo_endpoint: `${baseUrl}/oauth/userinfo`,
    jwks_uri: `${baseUrl}/.well-known/jwks.json`,
    end_session_endpoint: `${baseUrl}/oauth/logout`,
    introspection_endpoint: `${baseUrl}/oauth/introspect`,
    revocation_endpoint: `${baseUrl}/oauth/revoke`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [...SIGNING_ALGS],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: [...SUPPORTED_SCOPES],
    claims_supported: [
      'iss',
      'sub',
      'aud',
      'exp',
      'iat',
      'auth_time',
      'nonce',
      'sid',
      'email',
      'email_verified',
      'name',
      'given_name',
      'family_name',
      'tid',
      'roles',
    ],
    authorization_response_iss_parameter_supported: true,
    // OIDC Back-Channel Logout 1.0 §2.1: logout tokens (with sid) go to each app's registered URI.
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    claims_parameter_supported: false,
  };
}

export function discoveryRouter(config: Config, keys: SigningKeyStore): Router {
  const router = Router();
  const document = openIdConfiguration(config.baseUrl);
  router.get('/.well-known/openid-configuration', allowAnyOrigin, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').json(document);
  });
  router.get('/.well-known/jwks.json', allowAnyOrigin, async (_req, res) => {
    // Next keys are published a rotation ahead, so a verifier's cached copy stays good.
    res.set('Cache-Control', `public, max-age=${config.tokens.signingKeyCacheTtl}`).json(await keys.jwks());
  });
  return router;
}
