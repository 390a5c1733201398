import { randomBytes } from 'node:crypto';
import {
  SAML,
  ValidateInResponseTo,
  type CacheProvider,
  type Profile,
  type SamlConfig,
} from '@node-saml/node-saml';
import { signSamlPost } from '@node-saml/node-saml/lib/saml-post-signing.js';
import type { Request, Response } from 'express';
import { recordAudit } from '../../audit/audit.service.js';
import type { Connection } from '../../connections/connection.entity.js';
import { findConnectionForLogin } from '../../connections/connections.service.js';
import { BINDING_POST } from '../../connections/saml-metadata.js';
import { currentSigningKey } from '../../connections/sp-keys.service.js';
import { serviceProviderDetails } from '../../connections/sp.js';
import { escapeHtml, sendPage } from '../../http/pages.js';
import { revokeSessions } from '../../sessions/revoke-sessions.js';
import type { EndedSession } from '../login-handoff.js';
import { allowHttpForms, reasonOf, type SsoDeps } from '../outcome.js';
import { errorPage, postBindingPage } from '../pages.js';
import { LoginRefusedError, refuse } from '../reasons.js';
import { rememberAssertionId } from './assertion-replay.js';
import { samlOptions, type SamlTiming } from './saml-options.js';
import {
  checkLogoutMessage,
  inspectLogoutMessage,
  readPostMessage,
  readRedirectMessage,
  reasonOfLogoutError,
  STATUS_SUCCESS,
  type LogoutMessageFacts,
  type SloMessage,
} from './single-logout-checks.js';
import {
  consumePendingLogout,
  samlSessionOf,
  savePendingLogout,
  sessionsOfSubject,
  type SamlLogoutSubject,
} from './single-logout.service.js';
import type { SpSigningKey } from './sp-signing-key.js';

const NAMEID_UNSPECIFIED = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';
const LOGOUT_REQUEST_XPATH =
  '/*[local-name(.)="LogoutRequest" and namespace-uri(.)="urn:oasis:names:tc:SAML:2.0:protocol"]';
const LOGOUT_RESPONSE_XPATH =
  '/*[local-name(.)="LogoutResponse" and namespace-uri(.)="urn:oasis:names:tc:SAML:2.0:protocol"]';

/** Our LogoutRequests are never looked up through node-saml's cache: single-logout.service.ts keeps them. */
const NO_CACHE: CacheProvider = {
  saveAsync: () => Promise.resolve(null),
  getAsync: () => Promise.resolve(null),
  removeAsync: () => Promise.resolve(null),
};

/**
 * SAML 2.0 Single Logout (SAML profiles §4.4) at /saml/{connectionId}/slo,
 * HTTP-Redirect (GET) and HTTP-POST bindings:
 *
 * - IdP-initiated: the IdP's LogoutRequest, signed (always required) by one of
 *   the connection's certificates — verified by node-saml, never by hand —
 *   with this connection's IdP as Issuer, our SLO URL as Destination, fresh,
 *   and not seen before (its ID joins the assertion replay cache), revokes the
 *   sessions its NameID (+ SessionIndex) names through revokeSessions
 *   (reason `saml_slo`: back-channel logout to the app, other nodes notified),
 *   and is answered with a signed LogoutResponse by the binding it came with.
 *   Nothing matched is still Success (SAML profiles §4.4.3.4 lets the SP say
 *   it holds no session; the IdP's user is logged out either way).
 * - SP-initiated (endAtIdp): after RP-initiated logout ended a session a SAML
 *   login made, a signed LogoutRequest goes to the IdP's SLO URL; its signed
 *   LogoutResponse must answer that request (InResponseTo, consumed once) and
 *   then the browser continues to the app's validated post_logout_redirect_uri.
 *   A refused or failed answer shows a page with the reason; the session was
 *   revoked before the IdP was asked, so nothing revives it.
 */
export class SingleLogout {
  private readonly timing: SamlTiming;

  constructor(
    private readonly deps: SsoDeps,
    private readonly spSigning: SpSigningKey | null,
  ) {
    const { config } = deps;
    this.timing = {
      clockSkewMs: config.sso.clockSkewSeconds * 1000,
      requestTtlMs: config.tokens.loginTtl * 1000,
      maxAssertionAgeMs: config.sso.samlMaxAssertionAgeSeconds * 1000,
    };
  }

  /** GET and POST /saml/{connectionId}/slo */
  async receive(req: Request, res: Response, connectionId: string): Promise<void> {
    // The connection names the tenant, as at the ACS: resolved and loaded in one transaction.
    const found = await this.deps.db.withResolvedTenant(async (em, enterTenant) => {
      const tenantId = await enterTenant('connection', connectionId);
      if (!tenantId) return null;
      // idor check: the connection is read under the tenant its own id resolves to (RLS).
      return { tenantId, connection: await findConnectionForLogin(em, connectionId, { type: 'saml' }) };
    });
    if (!found?.connection)
      return this.refused(req, res, new LoginRefusedError('connection_unknown', connectionId));
    const { tenantId, connection } = found;
    req.tenantId = tenantId;
    try {
      if (connection.status !== 'active') refuse('connection_unknown', `connection is ${connection.status}`);
      const message =
        req.method === 'GET'
          ? readRedirectMessage(rawQueryOf(req), connection.samlAllowSha1)
          : readPostMessage(req.body);
      const facts = inspectLogoutMessage(message, {
        xmlLimits: this.deps.config.sso.xmlLimits,
        allowSha1: connection.samlAllowSha1,
      });
      await this.verifySignature(connection, message);
      const now = new Date();
      const { acceptableUntil } = checkLogoutMessage({
        facts,
        idpEntityId: connection.samlIdpEntityId,
        sloUrl: serviceProviderDetails(this.deps.config.baseUrl, connection.id).sloUrl,
        now,
        clockSkewMs: this.timing.clockSkewMs,
        maxAgeMs: this.timing.maxAssertionAgeMs,
      });
      if (message.kind === 'request')
        return await this.logoutRequested(req, res, connection, message, facts, { acceptableUntil, now });
      return await this.logoutAnswered(req, res, connection, facts, { acceptableUntil, now });
    } catch (error) {
      return this.refused(req, res, error);
    }
  }

  /** node-saml verifies the signature: the query's (Redirect) or the enveloped one over the root (POST). */
  private async verifySignature(connection: Connection, message: SloMessage): Promise<void> {
    const saml = new SAML(this.options(connection, {}));
    try {
      if (message.binding === 'redirect')
        await saml.validateRedirectAsync(message.container, message.originalQuery ?? '');
      else if (message.kind === 'request') await saml.validatePostRequestAsync(message.container);
      else await saml.validatePostResponseAsync(message.container);
    } catch (error) {
      throw reasonOfLogoutError(error, message.kind);
    }
  }

  /** IdP-initiated: revoke what the signed LogoutRequest names, then answer it. */
  private async logoutRequested(
    req: Request,
    res: Response,
    connection: Connection,
    message: SloMessage,
    facts: LogoutMessageFacts,
    time: { acceptableUntil: Date; now: Date },
  ): Promise<void> {
    const { tenantId } = connection;
    const revoked = await this.deps.db.withTenant(tenantId, async (em) => {
      // Namespaced so a LogoutRequest ID can never collide with an assertion ID of the same IdP.
      const fresh = await rememberAssertionId(em, {
        tenantId,
        connectionId: connection.id,
        assertionId: `slo:${facts.id}`,
        acceptableUntil: time.acceptableUntil,
        now: time.now,
      });
      if (!fresh) return null;
      const sessionIds = await sessionsOfSubject(em, {
        connectionId: connection.id,
        nameId: facts.nameId ?? '',
        sessionIndexes: facts.sessionIndexes,
      });
      const audit = {
        actor: { type: 'system' as const, id: `connection:${connection.id}` },
        requestId: req.requestId,
        sourceIp: req.ip,
      };
      let count = 0;
      for (const sessionId of sessionIds)
        count += (await revokeSessions(em, { session: sessionId }, 'saml_slo', { audit })).length;
      await recordAudit(em, tenantId, {
        ...audit,
        action: 'saml.logout',
        target: { type: 'connection', id: connection.id },
        after: { direction: 'idp_initiated', binding: message.binding, sessions_revoked: count },
      });
      return count;
    });
    if (revoked === null) refuse('saml_logout_replayed', `LogoutRequest ${facts.id}`);
    req.log.info(
      { tenant_id: tenantId, connection_id: connection.id, sessions_revoked: revoked },
      'SAML single logout from the IdP',
    );
    if (!connection.samlIdpSloUrl) return this.signedOut(res);
    const privateKey = await this.signingKey(connection);
    const saml = new SAML(this.options(connection, { privateKey }));
    const profile = {
      ID: facts.id,
      issuer: facts.issuer ?? '',
      nameID: facts.nameId ?? '',
      nameIDFormat: '',
    };
    if (message.binding === 'redirect') {
      // RelayState goes back as it came (SAML bindings §3.4.3); node-saml omits an empty one.
      const url = await saml.getLogoutResponseUrlAsync(profile, message.relayState ?? '', {}, true);
      return res.redirect(303, url);
    }
    const xml = signSamlPost(
      saml._generateLogoutResponse(profile, true),
      LOGOUT_RESPONSE_XPATH,
      signing(privateKey),
    );
    this.postToIdp(res, connection, 'SAMLResponse', xml, message.relayState);
  }

  /** SP-initiated, the IdP's answer: it must answer our request; then on to where the app asked. */
  private async logoutAnswered(
    req: Request,
    res: Response,
    connection: Connection,
    facts: LogoutMessageFacts,
    time: { acceptableUntil: Date; now: Date },
  ): Promise<void> {
    const { tenantId } = connection;
    if (!facts.inResponseTo) refuse('saml_logout_in_response_to_invalid', 'no InResponseTo');
    const inResponseTo = facts.inResponseTo;
    const pending = await this.deps.db.withTenant(tenantId, async (em) => {
      const fresh = await rememberAssertionId(em, {
        tenantId,
        connectionId: connection.id,
        assertionId: `slo:${facts.id}`,
        acceptableUntil: time.acceptableUntil,
        now: time.now,
      });
      if (!fresh) return 'replayed' as const;
      // idor check: the request row is found only for this tenant (RLS) and this connection.
      const found = await consumePendingLogout(em, {
        id: inResponseTo,
        connectionId: connection.id,
        now: time.now,
      });
      // Thrown inside: the transaction rolls back, so an unanswerable response leaves no trace.
      if (!found) refuse('saml_logout_in_response_to_invalid', `no pending LogoutRequest ${inResponseTo}`);
      await recordAudit(em, tenantId, {
        actor: { type: 'system', id: `connection:${connection.id}` },
        action: 'saml.logout',
        target: { type: 'connection', id: connection.id },
        requestId: req.requestId,
        sourceIp: req.ip,
        after: { direction: 'sp_initiated', status: facts.status },
      });
      return found;
    });
    if (pending === 'replayed') refuse('saml_logout_replayed', `LogoutResponse ${facts.id}`);
    if (facts.status !== STATUS_SUCCESS)
      refuse('saml_logout_response_failed', `status ${facts.status?.slice(0, 200) ?? '(none)'}`);
    if (pending.returnUrl) return res.redirect(303, pending.returnUrl);
    return this.signedOut(res);
  }

  /**
   * After RP-initiated logout ended `ended.sessionId`: a signed LogoutRequest
   * to the IdP when a SAML login made the session and the IdP has an SLO URL.
   * False (the caller answers) otherwise, or when the request cannot be made.
   */
  async endAtIdp(req: Request, res: Response, ended: EndedSession): Promise<boolean> {
    try {
      const found = await this.deps.db.withTenant(ended.tenantId, async (em) => {
        const subject = await samlSessionOf(em, ended.sessionId);
        if (!subject) return null;
        // idor check: RLS scopes the connection to the session's tenant.
        const connection = await findConnectionForLogin(em, subject.connectionId, { type: 'saml' });
        return connection?.samlIdpSloUrl ? { subject, connection } : null;
      });
      if (!found) return false;
      await this.sendLogoutRequest(res, found.connection, found.subject, ended.returnUrl);
      return true;
    } catch (error) {
      req.log.error(
        { err: error, request_id: req.requestId, tenant_id: ended.tenantId },
        'could not send the SAML LogoutRequest; signed out here only',
      );
      return false;
    }
  }

  private async sendLogoutRequest(
    res: Response,
    connection: Connection,
    subject: SamlLogoutSubject,
    returnUrl: string | null,
  ): Promise<void> {
    const id = `_${randomBytes(20).toString('hex')}`;
    const privateKey = await this.signingKey(connection);
    const saml = new SAML(this.options(connection, { privateKey, generateUniqueId: () => id }));
    const user: Profile = {
      issuer: connection.samlIdpEntityId ?? '',
      nameID: subject.nameId,
      nameIDFormat: subject.nameIdFormat ?? NAMEID_UNSPECIFIED,
      ...(subject.nameQualifier ? { nameQualifier: subject.nameQualifier } : {}),
      ...(subject.spNameQualifier ? { spNameQualifier: subject.spNameQualifier } : {}),
      ...(subject.sessionIndex ? { sessionIndex: subject.sessionIndex } : {}),
    };
    await this.deps.db.withTenant(connection.tenantId, (em) =>
      savePendingLogout(em, {
        tenantId: connection.tenantId,
        id,
        connectionId: connection.id,
        returnUrl,
        now: new Date(),
        ttlMs: this.timing.requestTtlMs,
      }),
    );
    // RelayState: the request id (≤ 80 bytes, SAML bindings §3.4.3); the signed InResponseTo is what counts.
    if (connection.samlIdpSloBinding === BINDING_POST) {
      const xml = signSamlPost(
        await saml._generateLogoutRequest(user),
        LOGOUT_REQUEST_XPATH,
        signing(privateKey),
      );
      return this.postToIdp(res, connection, 'SAMLRequest', xml, id);
    }
    res.redirect(303, await saml.getLogoutUrlAsync(user, id, {}));
  }

  /** SAML bindings §3.5: the auto-submitted form to the IdP's SLO URL. */
  private postToIdp(
    res: Response,
    connection: Connection,
    field: 'SAMLRequest' | 'SAMLResponse',
    xml: string,
    relayState: string | null,
  ): void {
    const fields: Record<string, string> = { [field]: Buffer.from(xml, 'utf8').toString('base64') };
    if (relayState) fields.RelayState = relayState;
    sendPage(res, {
      status: 200,
      title: 'Signing you out',
      body: postBindingPage({ action: connection.samlIdpSloUrl ?? '', fields }),
      allowHttpForms: allowHttpForms(this.deps.config),
      autoSubmit: true,
    });
  }

  /** The key our LogoutRequests and LogoutResponses are signed with (published in the SP metadata). */
  private async signingKey(connection: Connection): Promise<string> {
    // Single logout always signs (issue 16): the connection gets a signing key as if it signed AuthnRequests.
    const own = await currentSigningKey(
      this.deps.db,
      { tenantId: connection.tenantId, id: connection.id, samlSignAuthnRequests: true },
      { masterKey: this.deps.secrets.masterKey, deploymentSigningKey: this.spSigning !== null },
    );
    const pem = own?.privateKeyPem ?? this.spSigning?.privateKeyPem;
    if (!pem) throw new LoginRefusedError('connection_misconfigured', 'no SP signing key for single logout');
    return pem;
  }

  private options(connection: Connection, extra: Partial<SamlConfig>): SamlConfig {
    return {
      ...samlOptions({
        baseUrl: this.deps.config.baseUrl,
        connection,
        timing: this.timing,
        cacheProvider: NO_CACHE,
        saveRequestIds: false,
        responseSigned: true,
      }),
      logoutUrl: connection.samlIdpSloUrl ?? undefined,
      // InResponseTo of a LogoutResponse is checked against saml_logout_requests (logoutAnswered).
      validateInResponseTo: ValidateInResponseTo.never,
      ...extra,
    };
  }

  private signedOut(res: Response): void {
    sendPage(res, {
      status: 200,
      title: 'Signed out',
      body: `<h1>${escapeHtml('Signed out')}</h1><p>${escapeHtml('You are signed out.')}</p>`,
    });
  }

  /** A refused logout message: a page with the reason code and the support reference; nothing was changed. */
  private refused(req: Request, res: Response, error: unknown): void {
    if (res.headersSent) return;
    const page = errorPage({
      baseUrl: this.deps.config.baseUrl,
      reason: reasonOf(req, error),
      requestId: req.requestId,
    });
    sendPage(res, { status: page.status, title: 'Sign-out did not complete', body: page.body });
  }
}

/** The enveloped signature of our HTTP-POST messages: RSA-SHA256, SHA-256 digests (as every node-saml option here). */
function signing(privateKey: string) {
  return { privateKey, signatureAlgorithm: 'sha256' as const, digestAlgorithm: 'sha256' as const };
}

/** The query string exactly as sent: the HTTP-Redirect signature covers its encoded bytes. */
function rawQueryOf(req: Request): string {
  const at = req.originalUrl.indexOf('?');
  return at < 0 ? '' : req.originalUrl.slice(at + 1);
}
