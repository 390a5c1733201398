import type { App } from '../../apps/app.entity.js';
import { authorizationResponseUrl, validateAuthorizationRequest } from './authorize.js';
import { pkceS256Matches } from '../grants/grants.service.js';
import {
  CODE_PREFIX,
  mintSessionToken,
  parseSessionToken,
  REFRESH_TOKEN_PREFIX,
} from '../grants/opaque-tokens.js';

const app = {
  id: '6f1c8a52-3a57-4d6e-9d0f-5b7c7a0f6a11',
  clientType: 'confidential',
  redirectUris: ['https://app.example/callback'],
} as App;

const base = {
  client_id: app.id,
  redirect_uri: 'https://app.example/callback',
  response_type: 'code',
  scope: 'openid email',
  state: 's',
};

describe('validateAuthorizationRequest', () => {
  it('accepts a minimal confidential-client request and normalises what it keeps', () => {
    const outcome = validateAuthorizationRequest(
      { ...base, connection: 'A8F0C1B2-3C4D-4E5F-8A9B-0C1D2E3F4A5B' },
      app,
    );
    expect(outcome).toMatchObject({
      kind: 'valid',
      request: {
        scope: 'openid email',
        state: 's',
        codeChallenge: null,
        connectionId: 'a8f0c1b2-3c4d-4e5f-8a9b-0c1d2e3f4a5b',
      },
    });
  });

  it('answers with a page, not a redirect, until client and redirect_uri are known good', () => {
    expect(
      validateAuthorizationRequest({ ...base, redirect_uri: 'https://app.example/callback#x' }, app),
    ).toMatchObject({
      kind: 'page',
      reason: 'redirect_uri_mismatch',
    });
    expect(validateAuthorizationRequest(base, null)).toMatchObject({
      kind: 'page',
      reason: 'unknown_client',
    });
  });

  it('refuses repeated parameters and an over-long state without echoing it', () => {
    expect(validateAuthorizationRequest({ ...base, scope: ['openid', 'email'] }, app)).toMatchObject({
      kind: 'redirect_error',
      error: 'invalid_request',
      state: 's',
    });
    expect(validateAuthorizationRequest({ ...base, state: 'x'.repeat(2000) }, app)).toMatchObject({
      kind: 'redirect_error',
      error: 'invalid_request',
      state: null,
    });
  });

  it('keeps the redirect_uri query and adds iss (RFC 9207)', () => {
    const url = new URL(
      authorizationResponseUrl('https://app.example/cb?tenant=1', 'https://gh.example', {
        code: 'c',
        state: null,
      }),
    );
    expect(Object.fromEntries(url.searchParams)).toEqual({
      tenant: '1',
      code: 'c',
      iss: 'https://gh.example',
    });
  });
});

describe('PKCE and opaque tokens', () => {
  it('matches the RFC 7636 Appendix B example and nothing else', () => {
    const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
    expect(pkceS256Matches(verifier, 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')).toBe(true);
    expect(pkceS256Matches(verifier.replace('d', 'e'), 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')).toBe(
      false,
    );
    expect(pkceS256Matches('short', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')).toBe(false);
  });

  it('carries the session id, and only parses values of its own kind', () => {
    const sessionId = '0b6f7d0e-52b1-4a8e-9d7c-2c1f0e9a8b7c';
    const { token, hash } = mintSessionToken(CODE_PREFIX, sessionId);
    expect(parseSessionToken(CODE_PREFIX, token)).toEqual({ sessionId, hash });
    expect(parseSessionToken(REFRESH_TOKEN_PREFIX, token)).toBeNull();
    expect(parseSessionToken(CODE_PREFIX, `${token}x`)).toBeNull();
  });
});
