import { Router, type Request } from 'express';
import { z } from 'zod';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { NotFoundError } from '../errors.js';
import { createScimToken, listScimTokens, revokeScimToken } from '../scim/scim-tokens.service.js';
import { auditContext } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { pageQuery, parseBody, parseQuery, uuidParam } from './validation.js';

const createBody = z.strictObject({ description: z.string().trim().max(200).default('') });

function tokenIdParam(req: Request): string {
  const parsed = uuidParam.safeParse(req.params.tokenId);
  if (!parsed.success) throw new NotFoundError('SCIM token');
  return parsed.data;
}

export function scimTokensRouter(db: Database, config: Pick<Config, 'baseUrl'>): Router {
  const router = Router();

  router.post('/tenants/:tenantId/scim-tokens', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const input = parseBody(createBody, req);
    res.status(201).json(await createScimToken(db, config.baseUrl, tenantId, input, auditContext(req)));
  });

  router.get('/tenants/:tenantId/scim-tokens', async (req, res) => {
    const tenantId = tenantIdParam(req);
    const page = parseQuery(pageQuery, req);
    res.json({ ...(await listScimTokens(db, tenantId, page)), ...page });
  });

  // Revocation keeps the row (listed with revoked_at), so the answer is the token's metadata.
  router.delete('/tenants/:tenantId/scim-tokens/:tokenId', async (req, res) => {
    const tenantId = tenantIdParam(req);
    res.json(await revokeScimToken(db, tenantId, tokenIdParam(req), auditContext(req)));
  });

  return router;
}
