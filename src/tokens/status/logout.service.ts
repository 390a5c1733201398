import { t } from '../../http/strings.js';
import { compactVerify } from 'jose';
import { z } from 'zod';
import type { Config } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { resolveTenantBySession } from '../../db/resolvers.js';
import { findSession } from '../../sessions/sessions.service.js';
import { findClient } from '../grants/client-auth.js';
import { revokeSessionAudited } from '../session-revocation.js';
import type { SigningKeyStore } from '../keys/key-store.js';
import { SIGNING_ALGS } from '../keys/signing-keys.service.js';
import { ID_TOKEN_TYP } from '../grants/token-claims.js';

/**
 * RP-Initiated Logout 1.0: the app sends the browser to end_session_endpoint
 * with the ID token it holds (id_token_hint); Gatehouse ends that session and
 * returns to a post_logout_redirect_uri only if it exactly matches one the app
 * registered. The hint may have expired (the spec asks OPs to accept that), so
 * its signature is checked against published and recently retired keys and
 * the expiry is not.
 */
export interface LogoutDeps {
  config: Config;
  db: Database;
  keys: SigningKeyStore;
}

export interface LogoutRequest {
  idTokenHint: string | null;
  postLogoutRedirectUri: string | null;
  state: string | null;
  clientId: string | null;
}

/** The session this logout ended (null: none was live), for SAML Single Logout at the IdP (issue 16). */
export interface EndedSessionRef {
  tenantId: string;
  sessionId: string;
}

export type LogoutOutcome =
  | { kind: 'redirect'; url: string; ended: EndedSessionRef | null }
  | { kind: 'signed_out'; ended: EndedSessionRef | null }
  | { kind: 'error'; reason: string; message: string; sessionEnded: boolean };

const hintSchema = z.object({
  iss: z.string(),
  sub: z.uuid(),
  aud: z.uuid(),
  sid: z.uuid(),
  tid: z.uuid(),
});

async function readHint(keys: SigningKeyStore, issuer: string, token: string) {
  try {
    const { payload, protectedHeader } = await compactVerify(
      token,
      (header, input) => keys.recentKey(header, input),
      { algorithms: [...SIGNING_ALGS] },
    );
    // An access token (typ at+jwt) is not an ID token.
    if (protectedHeader.typ !== ID_TOKEN_TYP) return null;
    const claims = hintSchema.safeParse(JSON.parse(new TextDecoder().decode(payload)));
    return claims.success && claims.data.iss === issuer ? claims.data : null;
  } catch {
    return null;
  }
}

export async function endSession(
  deps: LogoutDeps,
  request: LogoutRequest,
  context: { requestId?: string; sourceIp?: string },
): Promise<LogoutOutcome> {
  const error = (reason: string, message: string, sessionEnded = false): LogoutOutcome => ({
    kind: 'error',
    reason,
    message,
    sessionEnded,
  });
  if (!request.idTokenHint) return error('id_token_hint_required', t.authorize.logout.idTokenHintRequired);
  const hint = await readHint(deps.keys, deps.config.baseUrl, request.idTokenHint);
  if (!hint) return error('invalid_id_token_hint', t.authorize.logout.invalidIdTokenHint);
  if (request.clientId !== null && request.clientId !== hint.aud)
    return error('client_mismatch', t.authorize.logout.clientMismatch);
  const app = await findClient(deps.db, hint.aud);
  if (!app) return error('unknown_client', t.authorize.unknownClient);

  const tenantId = await resolveTenantBySession(deps.db, hint.sid);
  let ended: EndedSessionRef | null = null;
  // idor check: the session must be in the token's tenant and belong to its subject
  if (tenantId && tenantId === hint.tid) {
    await deps.db.withTenant(tenantId, async (em) => {
      const session = await findSession(em, hint.sid);
      if (session?.userId !== hint.sub) return;
      const revoked = await revokeSessionAudited(em, tenantId, session.id, 'rp_initiated_logout', {
        actor: { type: 'user', id: hint.sub },
        ...context,
      });
      if (revoked) ended = { tenantId, sessionId: session.id };
    });
  }

  if (request.postLogoutRedirectUri === null) return { kind: 'signed_out', ended };
  // Exact string match, as for redirect_uri: no redirect to anything unregistered.
  if (!app.postLogoutRedirectUris.includes(request.postLogoutRedirectUri))
    return error('post_logout_redirect_uri_mismatch', t.authorize.logout.postLogoutRedirectUriMismatch, true);
  const url = new URL(request.postLogoutRedirectUri);
  if (request.state !== null) url.searchParams.set('state', request.state);
  return { kind: 'redirect', url: url.toString(), ended };
}
