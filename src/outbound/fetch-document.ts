import { BadRequestError } from '../errors.js';
import { targetUrl } from './address-policy.js';
import { OutboundFailure, pinnedRequest, type OutboundPolicy } from './pinned-request.js';

/**
 * How is a document an admin pointed us at fetched? (IdP metadata URL, OIDC
 * issuer discovery when a connection is saved.) A GET under the outbound
 * rules (pinned-request.ts) that accepts only a final 200: a redirect is
 * refused (give the final URL), and every failure becomes a
 * `FetchRefusedError` whose message names the field (`metadata_url: …`) —
 * the admin API answers it as 400 `bad_request`.
 */
export interface FetchRequest {
  /** Names the input in error messages, e.g. `metadata_url`. */
  what: string;
  accept: string;
  maxBytes: number;
}

export interface FetchedDocument {
  body: string;
  contentType: string | null;
  /** The answer's headers, e.g. its ETag / Last-Modified for a later conditional GET. */
  headers: Record<string, string | string[] | undefined>;
}

export class FetchRefusedError extends BadRequestError {}

/** Checks the URL's form before anything is resolved. */
export function checkFetchUrl(raw: string, what: string, options: { allowPrivate: boolean }): URL {
  const url = targetUrl(raw, options);
  if (typeof url === 'string') throw new FetchRefusedError(`${what}: ${url}`);
  return url;
}

/** GET with the rules above; the body as UTF-8 text. */
export async function fetchDocument(
  raw: string,
  request: FetchRequest,
  policy: OutboundPolicy,
): Promise<FetchedDocument> {
  const { what, maxBytes } = request;
  const url = checkFetchUrl(raw, what, policy);
  try {
    const res = await pinnedRequest(
      url,
      {
        method: 'GET',
        headers: { accept: request.accept, 'user-agent': 'Gatehouse' },
        maxBytes,
        checkHead: (status) => {
          if (status >= 300 && status < 400)
            return new FetchRefusedError(
              `${what}: answered a redirect (HTTP ${status}); redirects are not followed, give the final URL`,
            );
          if (status !== 200) return new FetchRefusedError(`${what}: answered HTTP ${status}`);
          return undefined;
        },
      },
      policy,
    );
    const contentType = res.headers['content-type'] ?? null;
    return { body: res.body.toString('utf8'), contentType, headers: res.headers };
  } catch (error) {
    if (!(error instanceof OutboundFailure)) throw error;
    throw new FetchRefusedError(`${what}: ${refusalMessage(error, maxBytes)}`, { cause: error.cause });
  }
}

function refusalMessage(failure: OutboundFailure, maxBytes: number): string {
  switch (failure.kind) {
    case 'refused_address':
      return `${failure.message}; refused`;
    case 'network':
      return `could not be fetched (${describeNetworkError(failure.cause)})`;
    case 'too_large':
      return `the document is larger than ${maxBytes} bytes`;
    default:
      return failure.message;
  }
}

function describeNetworkError(error: unknown): string {
  // Not `instanceof Error`: socket errors may come from another realm (jest's VM contexts).
  if (typeof error !== 'object' || error === null) return String(error);
  const { code, message } = error as NodeJS.ErrnoException;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code))
    return 'the TLS certificate is not trusted';
  return code ?? message;
}
