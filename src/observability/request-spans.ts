/**
 * Which requests get a span of ours, named by what they do? SCIM operations
 * (`scim <METHOD> <Resource>`, RFC 7644 §3) and the two IdP answers of a
 * sign-in (`gatehouse.saml.acs`: verify, JIT provision, completion;
 * `gatehouse.oidc.callback`). The span is active while the handlers run, so
 * the pg and HTTP-client spans nest under it. `tenant.id` is set at the end,
 * from the tenant a credential resolved (`req.tenantId`: the SCIM token, the
 * connection), never from the path a client wrote.
 */
import type { NextFunction, Request, Response } from 'express';
import { spanUntilAnswered } from './spans.js';

const SCIM = /^\/scim\/v2\/[^/?#]+\/([^/?#]*)/i;
const SCIM_NAMES = [
  'Users',
  'Groups',
  'Me',
  'Schemas',
  'ResourceTypes',
  'ServiceProviderConfig',
  'Bulk',
  '.search',
];
const SCIM_RESOURCES = new Map(SCIM_NAMES.map((name) => [name.toLowerCase(), name]));
const ACS = /^\/saml\/[^/?#]+\/acs(?:[?#]|$)/;
const CALLBACK = /^\/oidc\/[^/?#]+\/callback(?:[?#]|$)/;
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

const tenantOf = (req: Request) => () =>
  typeof req.tenantId === 'string' && req.tenantId !== '' ? { 'tenant.id': req.tenantId } : {};

export function traceRequests(req: Request, res: Response, next: NextFunction): void {
  const path = req.originalUrl;
  const scim = SCIM.exec(path);
  if (scim) {
    const resource = SCIM_RESOURCES.get((scim[1] ?? '').toLowerCase()) ?? 'other';
    const method = METHODS.has(req.method) ? req.method : 'OTHER';
    return spanUntilAnswered(
      `scim ${method} ${resource}`,
      { 'scim.resource': resource, 'http.request.method': method },
      tenantOf(req),
      res,
      next,
    );
  }
  if (req.method === 'POST' && ACS.test(path))
    return spanUntilAnswered(
      'gatehouse.saml.acs',
      { 'gatehouse.protocol': 'saml' },
      tenantOf(req),
      res,
      next,
    );
  if (req.method === 'GET' && CALLBACK.test(path))
    return spanUntilAnswered(
      'gatehouse.oidc.callback',
      { 'gatehouse.protocol': 'oidc' },
      tenantOf(req),
      res,
      next,
    );
  next();
}
