import { Router, type Request } from 'express';
import { z } from 'zod';
import { DomainError } from '../errors.js';
import {
  createApp,
  DEFAULT_ROTATION_OVERLAP_SECONDS,
  deleteApp,
  getApp,
  listApps,
  type OperatorUrlPolicy,
  rotateAppSecret,
  rotateWebhookSecret,
  updateApp,
} from '../apps/apps.service.js';
import { redirectUriProblem } from '../apps/redirect-uri.js';
import { DEFAULT_WEBHOOK_ROTATION_OVERLAP_SECONDS } from '../webhooks/webhook-secrets.js';
import { auditContext, isOperator } from './principal.js';
import { pageQuery, parseBody, parseQuery } from './validation.js';

const uri = z
  .string()
  .max(2048)
  .superRefine((value, ctx) => {
    const problem = redirectUriProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
const uris = (min: number) =>
  z
    .array(uri)
    .min(min)
    .max(20)
    .transform((list) => [...new Set(list)]);
const name = z.string().trim().min(1).max(200);
const alg = z.enum(['ES256', 'EdDSA', 'RS256']);

const createBody = z.strictObject({
  name,
  redirect_uris: uris(1),
  client_type: z.enum(['confidential', 'public']).optional(),
  post_logout_redirect_uris: uris(0).optional(),
  backchannel_logout_uri: uri.nullable().optional(),
  token_signing_alg: alg.optional(),
  webhook_url: uri.nullable().optional(),
  initiate_login_uri: uri.nullable().optional(),
});
const updateBody = z
  .strictObject({
    name: name.optional(),
    redirect_uris: uris(1).optional(),
    post_logout_redirect_uris: uris(0).optional(),
    backchannel_logout_uri: uri.nullable().optional(),
    token_signing_alg: alg.optional(),
    webhook_url: uri.nullable().optional(),
    initiate_login_uri: uri.nullable().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, 'nothing to change');
const rotateBody = z.strictObject({
  overlap_seconds: z
    .number()
    .int()
    .min(0)
    .max(30 * 86_400)
    .default(DEFAULT_ROTATION_OVERLAP_SECONDS),
});

const rotateWebhookBody = z.strictObject({
  overlap_seconds: z
    .number()
    .int()
    .min(0)
    .max(30 * 86_400)
    .default(DEFAULT_WEBHOOK_ROTATION_OVERLAP_SECONDS),
});

/** Apps are platform-wide: the operator's alone (tenant admins get 403). */
function operatorOnly(req: Request): void {
  if (!isOperator(req)) throw new DomainError('forbidden', 'Only the operator can manage apps');
}

/** `masterKey` seals webhook signing secrets (src/webhooks/webhook-secrets.ts). */
export function appsRouter(
  db: Parameters<typeof getApp>[0],
  masterKey?: Buffer,
  outbound?: OperatorUrlPolicy,
): Router {
  const router = Router();
  router.use('/apps', (req, _res, next) => {
    operatorOnly(req);
    next();
  });

  router.post('/apps', async (req, res) => {
    res
      .status(201)
      .json(await createApp(db, parseBody(createBody, req), auditContext(req), masterKey, outbound));
  });

  router.get('/apps', async (req, res) => {
    const page = parseQuery(pageQuery, req);
    res.json({ ...(await listApps(db, page)), ...page });
  });

  router.get('/apps/:appId', async (req, res) => {
    res.json(await getApp(db, req.params.appId));
  });

  router.patch('/apps/:appId', async (req, res) => {
    res.json(
      await updateApp(
        db,
        req.params.appId,
        parseBody(updateBody, req),
        auditContext(req),
        masterKey,
        outbound,
      ),
    );
  });

  router.delete('/apps/:appId', async (req, res) => {
    await deleteApp(db, req.params.appId, auditContext(req));
    res.status(204).end();
  });

  router.post('/apps/:appId/secrets', async (req, res) => {
    const { overlap_seconds } = parseBody(rotateBody, req);
    const rotated = await rotateAppSecret(
      db,
      req.params.appId,
      { overlapSeconds: overlap_seconds },
      auditContext(req),
    );
    res.status(201).json(rotated);
  });

  router.post('/apps/:appId/webhook-secret', async (req, res) => {
    if (!masterKey) throw new DomainError('unavailable', 'Webhook secrets are not available');
    const { overlap_seconds } = parseBody(rotateWebhookBody, req);
    const rotated = await rotateWebhookSecret(
      db,
      masterKey,
      req.params.appId,
      { overlapSeconds: overlap_seconds },
      auditContext(req),
    );
    res.status(201).json(rotated);
  });

  return router;
}
