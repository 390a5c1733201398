import { BadRequestError } from '../errors.js';
import { checkFetchUrl, fetchDocument } from '../outbound/fetch-document.js';
import type { OutboundPolicy } from '../outbound/pinned-request.js';

const DISCOVERY_MAX_BYTES = 64 * 1024;

/** ID token algorithms a connection may pin (asymmetric only). */
export const ID_TOKEN_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

/** What Gatehouse checks of an IdP's discovery document when the connection is saved. */
export interface OidcProviderMetadata {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  jwksUri: string;
  userinfoEndpoint: string | null;
  idTokenSigningAlgs: string[] | null;
}

export class DiscoveryError extends BadRequestError {}

function fail(message: string): never {
  throw new DiscoveryError(`issuer: ${message}`);
}

/**
 * An issuer as OIDC Discovery 1.0 §2 defines it: an https URL with no query or
 * fragment (http only with the development setting).
 */
export function checkIssuer(issuer: string, allowHttp: boolean): URL {
  const url = checkFetchUrl(issuer, 'issuer', { allowPrivate: allowHttp });
  if (url.search || url.hash || issuer.includes('#') || issuer.includes('?')) {
    fail('must not contain a query or fragment');
  }
  return url;
}

/**
 * Fetches `${issuer}/.well-known/openid-configuration` (Discovery §4) through
 * src/outbound/fetch-document.ts and validates it: the `issuer` it states equals the one given
 * exactly (§4.3: otherwise the document must not be used), the endpoints the
 * login needs are there and are https, and the pinned ID token algorithms are
 * ones the provider says it uses.
 */
export async function discoverOidcProvider(
  issuer: string,
  pinnedAlgs: readonly string[],
  fetchOptions: OutboundPolicy,
): Promise<OidcProviderMetadata> {
  checkIssuer(issuer, fetchOptions.allowPrivate);
  const wellKnown = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const fetched = await fetchDocument(
    wellKnown,
    { what: 'issuer discovery', accept: 'application/json', maxBytes: DISCOVERY_MAX_BYTES },
    fetchOptions,
  );
  let doc: unknown;
  try {
    doc = JSON.parse(fetched.body);
  } catch {
    fail(`${wellKnown} is not a JSON document`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) fail(`${wellKnown} is not a JSON object`);
  const d = doc as Record<string, unknown>;
  if (d.issuer !== issuer) {
    fail(`the discovery document names the issuer ${JSON.stringify(d.issuer)}, not "${issuer}"`);
  }
  const endpoint = (name: string): string => {
    const value = d[name];
    if (typeof value !== 'string') return fail(`the discovery document has no ${name}`);
    const url = URL.parse(value);
    const httpAllowed = fetchOptions.allowPrivate && url?.protocol === 'http:';
    if (!url || (url.protocol !== 'https:' && !httpAllowed)) fail(`${name} must be an https URL`);
    return value;
  };
  const algs = d.id_token_signing_alg_values_supported;
  const idTokenSigningAlgs = Array.isArray(algs) ? algs.filter((a) => typeof a === 'string') : null;
  if (idTokenSigningAlgs && !pinnedAlgs.some((alg) => idTokenSigningAlgs.includes(alg))) {
    fail(
      `the provider signs ID tokens with ${idTokenSigningAlgs.join(', ')}; ` +
        `none of id_token_algs (${pinnedAlgs.join(', ')})`,
    );
  }
  return {
    issuer,
    authorizationEndpoint: endpoint('authorization_endpoint'),
    tokenEndpoint: endpoint('token_endpoint'),
    jwksUri: endpoint('jwks_uri'),
    userinfoEndpoint: d.userinfo_endpoint === undefined ? null : endpoint('userinfo_endpoint'),
    idTokenSigningAlgs,
  };
}
