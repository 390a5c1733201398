import { Router, type Request } from 'express';
import { z } from 'zod';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { DomainError, NotFoundError } from '../errors.js';
import { INTENTS } from '../portal/intents.js';
import { createSetupLink, listSetupLinks, revokeSetupLink } from '../portal/links.service.js';
import { auditContext, isOperator } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { pageQuery, parseBody, parseQuery, uuidParam } from './validation.js';

/**
 * tenants/{tenantId}/setup-links: the operator's links into the portal for a
 * customer's IT admin (issue 15). The URL is in the creation answer only.
 */

const createBody = z.strictObject({
  intents: z.array(z.enum(INTENTS)).min(1).max(INTENTS.length),
  /** Seconds; GATEHOUSE_SETUP_LINK_TTL when absent. */
  ttl: z.number().int().min(300).max(31_536_000).optional(),
});

function operatorOnly(req: Request): void {
  if (!isOperator(req)) throw new DomainError('forbidden', 'Only the operator can do this');
}

function linkIdParam(req: Request): string {
  const parsed = uuidParam.safeParse(req.params.linkId);
  if (!parsed.success) throw new NotFoundError('Setup link');
  return parsed.data;
}

export function setupLinksRouter(db: Database, config: Pick<Config, 'baseUrl' | 'portal'>): Router {
  const router = Router();
  const base = '/tenants/:tenantId/setup-links';

  router.post(base, async (req, res) => {
    const tenantId = tenantIdParam(req);
    operatorOnly(req);
    const input = parseBody(createBody, req);
    const ttlSeconds = input.ttl ?? config.portal.setupLinkTtlSeconds;
    res
      .status(201)
      .json(
        await createSetupLink(
          db,
          config.baseUrl,
          tenantId,
          { intents: input.intents, ttlSeconds },
          auditContext(req),
        ),
      );
  });

  router.get(base, async (req, res) => {
    const tenantId = tenantIdParam(req);
    operatorOnly(req);
    const page = parseQuery(pageQuery, req);
    res.json({ ...(await listSetupLinks(db, tenantId, page)), ...page });
  });

  router.delete(`${base}/:linkId`, async (req, res) => {
    const tenantId = tenantIdParam(req);
    operatorOnly(req);
    res.json(await revokeSetupLink(db, tenantId, linkIdParam(req), auditContext(req)));
  });

  return router;
}
