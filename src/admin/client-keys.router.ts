import { Router, type Request } from 'express';
import { z } from 'zod';
import {
  activateNextClientKey,
  CLIENT_KEY_ALGS,
  clientKeyView,
  listClientKeys,
  rotateClientKeys,
} from '../connections/client-keys.js';
import { loadConnection, type ConnectionDeps } from '../connections/connections.service.js';
import { NotFoundError } from '../errors.js';
import { requireLiveTenant } from '../tenants/tenant-guard.js';
import { auditContext } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { parseBody, uuidParam } from './validation.js';

function connectionIdParam(req: Request): string {
  const parsed = uuidParam.safeParse(req.params.connectionId);
  if (!parsed.success) throw new NotFoundError('Connection');
  return parsed.data;
}

const rotateBody = z.strictObject({ alg: z.enum(CLIENT_KEY_ALGS).optional() });

/**
 * tenants/{tenantId}/connections/{connectionId}/client-keys (operator, or an
 * admin of that tenant): the key pairs Gatehouse signs private_key_jwt client
 * assertions with at this OIDC connection's IdP (src/connections/client-keys.ts).
 * `rotate` publishes a next key at the connection's JWKS URL; `activate`
 * makes it the signing key. Both audited.
 */
export function clientKeysRouter(deps: ConnectionDeps): Router {
  const router = Router();
  const base = '/tenants/:tenantId/connections/:connectionId/client-keys';

  router.get(base, async (req, res) => {
    const tenantId = tenantIdParam(req);
    const connectionId = connectionIdParam(req);
    const keys = await deps.db.withTenant(tenantId, async (em) => {
      await loadConnection(em, connectionId);
      return listClientKeys(em, connectionId, { masterKey: deps.masterKey, now: new Date() });
    });
    res.json({ data: keys.map(clientKeyView) });
  });

  router.post(`${base}/rotate`, async (req, res) => {
    const tenantId = tenantIdParam(req);
    const connectionId = connectionIdParam(req);
    const body = parseBody(rotateBody, req);
    const key = await deps.db.withTenant(tenantId, async (em) => {
      await requireLiveTenant(em, tenantId);
      const connection = await loadConnection(em, connectionId);
      return rotateClientKeys(
        em,
        deps.masterKey,
        connection,
        body.alg ?? 'RS256',
        auditContext(req),
        new Date(),
      );
    });
    res.status(201).json(clientKeyView(key));
  });

  router.post(`${base}/activate`, async (req, res) => {
    const tenantId = tenantIdParam(req);
    const connectionId = connectionIdParam(req);
    parseBody(z.strictObject({}), req);
    const result = await deps.db.withTenant(tenantId, async (em) => {
      await requireLiveTenant(em, tenantId);
      const connection = await loadConnection(em, connectionId);
      return activateNextClientKey(em, connection, auditContext(req), new Date());
    });
    res.json({
      activated: clientKeyView(result.activated),
      retired: result.retired ? clientKeyView(result.retired) : null,
    });
  });

  return router;
}
