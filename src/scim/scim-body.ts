import express, { type RequestHandler } from 'express';
import { ScimError } from './scim-context.js';

/**
 * Which request bodies does the SCIM surface read as JSON, and which
 * methods do the discovery endpoints take? RFC 7644 §3.1 names
 * `application/scim+json` and says servers accept `application/json`; real
 * clients also send `text/json`, a `charset` parameter, or no Content-Type at
 * all (Okta's SCIM 2.0 spec test posts a user with only Authorization and
 * Accept). All of those are parsed as JSON; a declared type that is not JSON
 * (a form, XML, plain text) is 415 with an RFC 7644 §3.12 body. Invalid JSON
 * stays 400 invalidSyntax (scimErrorHandler maps the body parser's error).
 */

const JSON_MEDIA_TYPES = new Set(['application/scim+json', 'application/json', 'text/json']);

/** The media type of a Content-Type header, lower-cased, without parameters; undefined when absent. */
function mediaTypeOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const type = header.split(';')[0]?.trim().toLowerCase() ?? '';
  return type === '' ? undefined : type;
}

/** JSON media types: the three above and any `application/…+json` (RFC 6839 §3.1). */
export function isJsonMediaType(type: string): boolean {
  return JSON_MEDIA_TYPES.has(type) || /^application\/[\w.+-]+\+json$/.test(type);
}

/** The SCIM body parser: JSON whatever the (JSON or absent) Content-Type, within `limit`. */
export function scimBodyParser(limit: string | number): RequestHandler {
  const json = express.json({ limit, type: () => true });
  return (req, res, next) => {
    const type = mediaTypeOf(req.header('content-type'));
    const hasBody = req.header('transfer-encoding') !== undefined || Number(req.header('content-length')) > 0;
    if (!hasBody) return next();
    if (type !== undefined && !isJsonMediaType(type))
      throw new ScimError(
        415,
        '',
        `Unsupported media type '${type.slice(0, 100)}': send application/scim+json or application/json`,
      );
    json(req, res, next);
  };
}

const DISCOVERY_PATH = /^\/(?:ServiceProviderConfig|Schemas|ResourceTypes)(?:\/.*)?$/i;

/**
 * RFC 7644 §4: /ServiceProviderConfig, /Schemas and /ResourceTypes are
 * read-only. Any other method is 405 with `Allow: GET`, decided on the path
 * alone, before the body is read, so an invalid JSON body gets 405 too.
 */
export const discoveryIsReadOnly: RequestHandler = (req, res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD' || !DISCOVERY_PATH.test(req.path)) return next();
  res.setHeader('Allow', 'GET');
  throw new ScimError(405, '', `${req.path.split('/')[1] ?? ''} is read-only: only GET is allowed`);
};
