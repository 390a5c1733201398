import { Router, type Request } from 'express';
import { z } from 'zod';
import { PROFILE_FIELDS } from '../connections/attribute-mapping.js';
import {
  createConnection,
  deleteConnection,
  getConnection,
  listConnections,
  updateConnection,
  type ConnectionDeps,
} from '../connections/connections.service.js';
import { ID_TOKEN_ALGS } from '../connections/oidc-issuer-metadata.js';
import { OIDC_CLIENT_AUTH_METHODS, SAML_SIGNED_ELEMENTS } from '../connections/connection.entity.js';
import { NotFoundError } from '../errors.js';
import { isPrototypeKey } from './input-guard.js';
import { auditContext } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { pageQuery, parseBody, parseQuery, uuidParam } from './validation.js';

const name = z.string().trim().min(1).max(200);
const roleName = z
  .string()
  .regex(/^[a-z][a-z0-9_:.-]{0,63}$/, 'a role name: lower-case letter first, then [a-z0-9_:.-], ≤ 64');
// Looked up as a key of the IdP's attributes: never a prototype key (issue 8).
const attributeName = z
  .string()
  .trim()
  .min(1)
  .max(512)
  .refine((v) => !isPrototypeKey(v), 'not an attribute name');
const attributeMapping = z.strictObject(
  Object.fromEntries(PROFILE_FIELDS.map((f) => [f, attributeName.optional()])) as Record<
    (typeof PROFILE_FIELDS)[number],
    z.ZodOptional<typeof attributeName>
  >,
);
// RFC 6749 §3.3 scope-token.
const scopes = z
  .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'not a valid scope'))
  .min(1)
  .max(30)
  .refine((list) => list.includes('openid'), 'must include openid');
const idTokenAlgs = z
  .array(z.string())
  .min(1)
  .max(ID_TOKEN_ALGS.length)
  .superRefine((algs, ctx) => {
    for (const alg of algs) {
      if (alg.toLowerCase() === 'none') ctx.addIssue({ code: 'custom', message: '"none" is never accepted' });
      else if (/^HS/i.test(alg)) {
        ctx.addIssue({
          code: 'custom',
          message: `${alg} is symmetric (keyed with the client secret); refused`,
        });
      } else if (!(ID_TOKEN_ALGS as readonly string[]).includes(alg)) {
        ctx.addIssue({ code: 'custom', message: `${alg} is not one of ${ID_TOKEN_ALGS.join(', ')}` });
      }
    }
  });
const url = z.string().trim().min(1).max(2048);

const common = {
  status: z.enum(['draft', 'active', 'inactive']).optional(),
  jit_enabled: z.boolean().optional(),
  default_role: roleName.optional(),
  allow_unverified_email: z.boolean().optional(),
  attribute_mapping: attributeMapping.optional(),
};
const saml = {
  metadata_xml: z.string().min(1).optional(),
  metadata_url: url.optional(),
  allow_idp_initiated: z.boolean().optional(),
  allow_sha1: z.boolean().optional(),
  sign_authn_requests: z.boolean().optional(),
  signed_element: z.enum(SAML_SIGNED_ELEMENTS).optional(),
  require_encrypted_assertions: z.boolean().optional(),
  idp_initiated_app_id: z.uuid().nullable().optional(),
  idp_slo_url: url.nullable().optional(),
};
const oidc = {
  client_id: z.string().min(1).max(512),
  client_secret: z.string().min(1).max(4096),
  scopes: scopes.optional(),
  id_token_algs: idTokenAlgs.optional(),
  trust_email_unverified: z.boolean().optional(),
  // Issue 16: private_key_jwt and none need no client_secret (the service checks the pair).
  client_auth_method: z.enum(OIDC_CLIENT_AUTH_METHODS).optional(),
};

// `force`: create even when an active connection already uses the IdP's entity id (409 idp_entity_id_in_use).
const force = z.boolean().optional();
const createBody = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('saml'), name, force, ...common, ...saml }),
    z.strictObject({
      type: z.literal('oidc'),
      name,
      issuer: url,
      force,
      ...common,
      ...oidc,
      client_secret: oidc.client_secret.optional(),
    }),
  ],
  { error: 'type: must be "saml" or "oidc"' },
);
const updateBody = z
  .strictObject({
    name: name.optional(),
    ...common,
    ...saml,
    certificates: z.array(z.string().min(1).max(16384)).min(1).max(10).optional(),
    issuer: url.optional(),
    client_id: oidc.client_id.optional(),
    client_secret: oidc.client_secret.optional(),
    scopes: oidc.scopes,
    id_token_algs: oidc.id_token_algs,
    trust_email_unverified: oidc.trust_email_unverified,
    client_auth_method: oidc.client_auth_method,
  })
  .refine((body) => Object.keys(body).length > 0, 'nothing to change');

function connectionIdParam(req: Request): string {
  const parsed = uuidParam.safeParse(req.params.connectionId);
  if (!parsed.success) throw new NotFoundError('Connection');
  return parsed.data;
}

/** tenants/{tenantId}/connections: operator, or an admin of that tenant. */
export function connectionsRouter(deps: ConnectionDeps): Router {
  const router = Router();
  const base = '/tenants/:tenantId/connections';

  router.post(base, async (req, res) => {
    const tenantId = tenantIdParam(req);
    const input = parseBody(createBody, req);
    res.status(201).json(await createConnection(deps, tenantId, input, auditContext(req)));
  });

  router.get(base, async (req, res) => {
    const tenantId = tenantIdParam(req);
    const page = parseQuery(pageQuery, req);
    res.json({ ...(await listConnections(deps, tenantId, page)), ...page });
  });

  router.get(`${base}/:connectionId`, async (req, res) => {
    const tenantId = tenantIdParam(req);
    res.json(await getConnection(deps, tenantId, connectionIdParam(req)));
  });

  router.patch(`${base}/:connectionId`, async (req, res) => {
    const tenantId = tenantIdParam(req);
    const connectionId = connectionIdParam(req);
    const input = parseBody(updateBody, req);
    res.json(await updateConnection(deps, tenantId, connectionId, input, auditContext(req)));
  });

  router.delete(`${base}/:connectionId`, async (req, res) => {
    const tenantId = tenantIdParam(req);
    await deleteConnection(deps, tenantId, connectionIdParam(req), auditContext(req));
    res.status(204).end();
  });

  return router;
}
