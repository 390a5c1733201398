import { Router, type Request } from 'express';
import { z } from 'zod';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { SP_KEY_USES } from '../connections/sp-keys.entity.js';
import {
  changeSpKeys,
  listSpKeys,
  type SpKeyChange,
  type SpKeyOptions,
} from '../connections/sp-keys.service.js';
import { NotFoundError } from '../errors.js';
import { auditContext } from './principal.js';
import { tenantIdParam } from './tenants.router.js';
import { parseBody, uuidParam } from './validation.js';

const changeBody = z.strictObject({ use: z.enum(SP_KEY_USES) });

function connectionIdParam(req: Request): string {
  const parsed = uuidParam.safeParse(req.params.connectionId);
  if (!parsed.success) throw new NotFoundError('Connection');
  return parsed.data;
}

/**
 * /tenants/{tenantId}/connections/{connectionId}/sp-keys (operator, or an
 * admin of that tenant): a SAML connection's own SP signing and encryption
 * keys. GET lists them (certificates, never private keys); rotate publishes a
 * next key in the SP metadata, activate puts it in use (the old one stays
 * accepted and published as previous), retire drops previous. Each change is
 * audited (connection.sp_key_rotated, …_activated, …_retired).
 */
export function spKeysRouter(deps: { db: Database; config: Config; masterKey: Buffer }): Router {
  const router = Router();
  const base = '/tenants/:tenantId/connections/:connectionId/sp-keys';
  const options: SpKeyOptions = {
    masterKey: deps.masterKey,
    deploymentSigningKey: Boolean(deps.config.sso.spSigningKeyFile),
  };

  router.get(base, async (req, res) => {
    const tenantId = tenantIdParam(req);
    res.json({ data: await listSpKeys(deps.db, tenantId, connectionIdParam(req), options) });
  });

  for (const action of ['rotate', 'activate', 'retire'] as const satisfies readonly SpKeyChange[]) {
    router.post(`${base}/${action}`, async (req, res) => {
      const tenantId = tenantIdParam(req);
      const connectionId = connectionIdParam(req);
      const { use } = parseBody(changeBody, req);
      const data = await changeSpKeys(
        deps.db,
        tenantId,
        connectionId,
        { action, use },
        options,
        auditContext(req),
      );
      res.json({ data });
    });
  }

  return router;
}
