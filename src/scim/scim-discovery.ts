import { Router, type Request } from 'express';
import SCIMMY from 'scimmy';
import { ScimError } from './scim-context.js';
import { listResponse } from './scim-list.js';

/**
 * /ServiceProviderConfig, /Schemas and /ResourceTypes (RFC 7644 §4), describing
 * exactly what this service does. Served here rather than by scimmy-routers
 * because scimmy keeps one global base path, and every `meta.location` must
 * name the requesting tenant's own base URL.
 */
export function discoveryRouter(options: {
  baseUrlOf: (req: Request) => string;
  maxPageSize: number;
  /** /Bulk limits (RFC 7644 §3.7.4), advertised as enforced by scim-bulk.ts. */
  bulk: BulkLimits;
}): Router {
  const router = Router({ mergeParams: true });

  router.get('/ServiceProviderConfig', (req, res) => {
    const base = options.baseUrlOf(req);
    res.send(
      new SCIMMY.Schemas.ServiceProviderConfig(
        serviceProviderConfig(options.maxPageSize, options.bulk),
        `${base}/ServiceProviderConfig`,
      ),
    );
  });

  router.get('/Schemas', (req, res) => {
    const base = `${options.baseUrlOf(req)}/Schemas`;
    const schemas = SCIMMY.Schemas.declared().map((s) => s.describe(base));
    res.send(listResponse(schemas as never[], schemas.length, 1));
  });

  router.get('/Schemas/:id', (req, res) => {
    const definition = SCIMMY.Schemas.declared().find((s) => s.id === req.params.id);
    if (!definition) throw new ScimError(404, '', `Schema ${req.params.id} not found`);
    res.send(definition.describe(`${options.baseUrlOf(req)}/Schemas`));
  });

  router.get('/ResourceTypes', (req, res) => {
    const base = `${options.baseUrlOf(req)}/ResourceTypes`;
    const types = Object.values(SCIMMY.Resources.declared()).map(
      (R) => new SCIMMY.Schemas.ResourceType((R as typeof SCIMMY.Types.Resource).describe(), base),
    );
    res.send(listResponse(types, types.length, 1));
  });

  router.get('/ResourceTypes/:id', (req, res) => {
    const type = Object.values(SCIMMY.Resources.declared())
      .map((R) => (R as typeof SCIMMY.Types.Resource).describe())
      .find((d) => d.id === req.params.id || d.name === req.params.id);
    if (!type) throw new ScimError(404, '', `ResourceType ${req.params.id} not found`);
    res.send(new SCIMMY.Schemas.ResourceType(type, `${options.baseUrlOf(req)}/ResourceTypes`));
  });

  return router;
}

/** RFC 7643 §5 `bulk`: the most operations and bytes one /Bulk request may carry. */
export interface BulkLimits {
  maxOperations: number;
  maxPayloadSize: number;
}

export const AUTHENTICATION_SCHEME = {
  type: 'oauthbearertoken',
  name: 'OAuth Bearer Token',
  description: 'A tenant SCIM token (gh_scim_…) issued in the admin API, sent as a bearer token',
  specUri: 'https://datatracker.ietf.org/doc/html/rfc6750',
  primary: true,
};

/**
 * What works, and only that (test/scim/sorting.test.ts checks each claim
 * against the live endpoints): PATCH, filters with the real page cap as
 * maxResults, sorting (RFC 7644 §3.4.2.3), ETags; no password change.
 */
export function serviceProviderConfig(maxPageSize: number, bulkLimits: BulkLimits) {
  return {
    patch: { supported: true },
    bulk: { supported: true, ...bulkLimits },
    filter: { supported: true, maxResults: maxPageSize },
    changePassword: { supported: false },
    sort: { supported: true },
    etag: { supported: true },
    authenticationSchemes: [AUTHENTICATION_SCHEME],
  };
}
