import { Router, type Request } from 'express';
import { z } from 'zod';
import { DomainError } from '../errors.js';
import type { SigningKeyStore } from '../tokens/keys/key-store.js';
import { auditContext, isOperator } from './principal.js';
import { parseBody } from './validation.js';

function operatorOnly(req: Request): void {
  if (!isOperator(req)) throw new DomainError('forbidden', 'Only the operator can do this');
}

/**
 * /admin/v1/signing-keys (operator only): the token signing keys and rotation
 * on command. Rotation promotes the already-published next key, retires the
 * active one (it stays in the JWKS until its tokens have expired) and
 * publishes a new next key; it is audited under the platform tenant.
 */
export function signingKeysRouter(keys: SigningKeyStore): Router {
  const router = Router();

  router.get('/signing-keys', async (req, res) => {
    operatorOnly(req);
    res.json({ data: await keys.list() });
  });

  router.post('/signing-keys/rotate', async (req, res) => {
    operatorOnly(req);
    parseBody(z.strictObject({}), req);
    const result = await keys.rotate(auditContext(req));
    res.json({
      activated: result.activated,
      retired: result.retired.map((r) => ({
        kid: r.kid,
        alg: r.alg,
        published_until: r.publishedUntil.toISOString(),
      })),
      published: result.published,
    });
  });

  return router;
}
