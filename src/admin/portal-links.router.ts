import { Router } from 'express';
import type { Database } from '../db/database.js';
import { DomainError } from '../errors.js';
import { createPortalLink } from '../portal/links.service.js';
import { auditContext, isOperator } from './principal.js';

/** POST /portal-links: the operator's one-time portal login link (15 minutes), answered once. */
export function portalLinksRouter(db: Database, baseUrl: string): Router {
  const router = Router();
  router.post('/portal-links', async (req, res) => {
    if (!isOperator(req)) throw new DomainError('forbidden', 'Only the operator can do this');
    res.status(201).json(await createPortalLink(db, baseUrl, auditContext(req)));
  });
  return router;
}
