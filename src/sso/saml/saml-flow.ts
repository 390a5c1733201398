import {
  MultiSamlStrategy,
  SAML,
  type MultiStrategyConfig,
  type Profile,
  type SamlConfig,
  type VerifiedCallback,
} from '@node-saml/passport-saml';
import type { Request, Response } from 'express';
import { Passport, type Strategy } from 'passport';
import { resolveProfileAttributes } from '../../connections/attribute-mapping.js';
import { Connection } from '../../connections/connection.entity.js';
import { findConnectionForLogin } from '../../connections/connections.service.js';
import { BINDING_POST } from '../../connections/saml-metadata.js';
import { serviceProviderDetails } from '../../connections/sp.js';
import { currentSigningKey, decryptionKeys } from '../../connections/sp-keys.service.js';
import { bindBrowser, presentedBinding } from '../../http/browser-binding.js';
import { sendPage } from '../../http/pages.js';
import { completeLoginIn } from '../complete-login.js';
import { isTestLoginFor, traceKindOf } from '../login-trace-kind.js';
import type { LoginProfile } from '../../directory/jit.service.js';
import type { LoginResult } from '../login-handoff.js';
import { LoginTraceRecorder, STAGES } from '../login-trace-steps.js';
import {
  allowHttpForms,
  bindingOptions,
  finishLogin,
  refuseLogin,
  traceSink,
  type SsoDeps,
} from '../outcome.js';
import { postBindingPage, postBindingTitle } from '../pages.js';
import { LoginRefusedError, refuse } from '../reasons.js';
import { runStrategy } from '../run-strategy.js';
import { decryptAssertion } from './assertion-decryption.js';
import { rememberAssertionId } from './assertion-replay.js';
import { samlOptions, type SamlTiming } from './saml-options.js';
import { SamlRequestCache } from './saml-request-cache.js';
import { logoutSubjectOf } from './single-logout-checks.js';
import { withSamlSession, type SamlLogoutSubject } from './single-logout.service.js';
import { samlLoginSubject } from './saml-subject.js';
import { spendAssertion } from './saml-acs-statement.js';
import type { SpSigningKey } from './sp-signing-key.js';
import {
  assertionIdentity,
  checkSignedAssertion,
  inspectSamlResponse,
  MAX_SAML_RESPONSE_LENGTH,
  parseSignedAssertion,
  reasonOfSamlError,
  type AssertionFacts,
  type AssertionIdentity,
} from './saml-response-checks.js';

/** Per-request state handed to getSamlOptions and the verify callback (never shared between requests). */
interface RequestContext {
  options: SamlConfig;
  connection: Connection;
  /** At the ACS: what the unsigned envelope says, and this browser's pending requests. */
  acs?: { envelopeInResponseTo: string | null; requests: SamlRequestCache; trace: LoginTraceRecorder };
}

/**
 * What verify read from the signed assertion (no database work: the ACS spends
 * the assertion and provisions the person in one transaction after it).
 */
interface VerifiedAssertion {
  identity: AssertionIdentity;
  /** Null when the signed checks refused: `checkRefusal` is thrown once the ID is spent. */
  facts: AssertionFacts | null;
  checkRefusal: unknown;
  attributes: Record<string, unknown>;
  /** What Single Logout sends back and looks up (issue 16), from the signed assertion. */
  logoutSubject: SamlLogoutSubject | null;
}

const STRATEGY = 'saml';

/**
 * SAML 2.0 Web Browser SSO through passport + MultiSamlStrategy
 * (`session: false`): SP-initiated HTTP-Redirect AuthnRequests and the
 * HTTP-POST ACS at /saml/{connectionId}/acs. node-saml checks the signature,
 * time window and audience; inspectSamlResponse (before it, on the unsigned
 * envelope: refusals only) and verify (after it, on the signed assertion:
 * replay, subject, recipient, and which request it answers) make the rest.
 * An EncryptedAssertion is opened by assertion-decryption.ts with the
 * connection's SP keys between the two, and then goes through the same checks.
 * docs/security.md states the rule: a login uses only signed bytes.
 */
export class SamlFlow {
  private readonly authenticator = new Passport();
  private readonly contexts = new WeakMap<Request, RequestContext>();
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
    // passport-saml carries its own copy of the express types: requests cross as `unknown`.
    const options: MultiStrategyConfig = {
      passReqToCallback: true,
      getSamlOptions: (req, done) => {
        const context = this.contexts.get(req as unknown as Request);
        if (context) done(null, context.options);
        else done(new Error('no SAML connection for this request'));
      },
    };
    const signon = (req: unknown, profile: Profile | null, done: VerifiedCallback) => {
      let verified: VerifiedAssertion;
      try {
        verified = this.verify(req as Request, profile);
      } catch (error) {
        done(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      done(null, { verified });
    };
    const logout = (_req: unknown, _profile: Profile | null, done: VerifiedCallback) =>
      done(new Error('SAML single logout is not supported'));
    const strategy = new MultiSamlStrategy(options, signon, logout);
    this.authenticator.use(STRATEGY, strategy as unknown as Strategy);
  }

  /** Sends the browser to the IdP with an AuthnRequest answering the app's pending login. */
  async start(req: Request, res: Response, connection: Connection, loginId: string): Promise<void> {
    if (!connection.samlSsoUrl || connection.samlCertificates.length === 0)
      throw new LoginRefusedError(
        'connection_misconfigured',
        `connection ${connection.id} lacks SSO URL or certificates`,
      );
    const browserHash = bindBrowser(req, res, bindingOptions(this.deps.config));
    const cacheProvider = new SamlRequestCache(this.deps.db, {
      tenantId: connection.tenantId,
      connectionId: connection.id,
      browserHash,
      pending: { loginId, ttlMs: this.timing.requestTtlMs },
    });
    const options = this.options(connection, cacheProvider, true, false);
    if (connection.samlSignAuthnRequests) {
      // node-saml signs the redirect query (SAMLRequest, SigAlg) with RSA-SHA256. Precedence
      // (connections/sp-keys.service.ts): the connection's own current signing key, else the
      // deployment-wide one, else an own key made now (published in the SP metadata).
      const own = await currentSigningKey(this.deps.db, connection, {
        masterKey: this.deps.secrets.masterKey,
        deploymentSigningKey: this.spSigning !== null,
      });
      const privateKeyPem = own?.privateKeyPem ?? this.spSigning?.privateKeyPem;
      if (!privateKeyPem)
        throw new LoginRefusedError(
          'connection_misconfigured',
          'signed AuthnRequests asked, no SP signing key',
        );
      options.privateKey = privateKeyPem;
    }
    if (connection.samlSsoBinding === BINDING_POST) return this.startWithPost(res, options);
    this.contexts.set(req, { options, connection });
    const outcome = await runStrategy(this.authenticator, STRATEGY, req, res);
    if (outcome.kind === 'error') throw outcome.error;
    if (outcome.kind !== 'responded') throw new Error(`SAML start ended with ${outcome.kind}`);
  }

  /**
   * An IdP that takes AuthnRequests only by HTTP-POST: node-saml makes (and,
   * when asked, signs) the request; the form is our page, because the
   * strategy's own page relies on an inline script our CSP refuses.
   */
  private async startWithPost(res: Response, options: SamlConfig): Promise<void> {
    // SAML bindings §3.5.4: the POST binding carries the request base64-encoded, not deflated.
    const saml = new SAML({ ...options, authnRequestBinding: 'HTTP-POST', skipRequestCompression: true });
    const message = await saml.getAuthorizeMessageAsync('', undefined, {});
    const fields = Object.fromEntries(
      Object.entries(message).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''),
    );
    sendPage(res, {
      status: 200,
      title: postBindingTitle,
      body: postBindingPage({ action: options.entryPoint ?? '', fields }),
      allowHttpForms: allowHttpForms(this.deps.config),
      autoSubmit: true,
    });
  }

  /** POST /saml/{connectionId}/acs */
  async acs(req: Request, res: Response, connectionId: string): Promise<void> {
    // The connection names the tenant; resolving it and loading the connection is one transaction.
    const found = await this.deps.db.withResolvedTenant(async (em, enterTenant) => {
      const tenantId = await enterTenant('connection', connectionId);
      if (!tenantId) return null;
      // idor check: the connection is read under the tenant its own id resolves to (RLS).
      return { tenantId, connection: await findConnectionForLogin(em, connectionId, { type: 'saml' }) };
    });
    if (!found)
      return refuseLogin(this.deps, req, res, new LoginRefusedError('connection_unknown', connectionId));
    const { tenantId, connection } = found;
    req.tenantId = tenantId;
    if (!connection)
      return refuseLogin(this.deps, req, res, new LoginRefusedError('connection_unknown', connectionId));

    let requests: SamlRequestCache | null = null;
    let envelopeInResponseTo: string | null = null;
    let unspent: AssertionIdentity | null = null;
    // Issue 15: the login's trace, stored with its outcome (src/sso/login-trace-*.ts).
    const trace = new LoginTraceRecorder('saml');
    const posted = (req.body as Record<string, unknown> | undefined)?.SAMLResponse;
    if (typeof posted === 'string' && posted.length <= MAX_SAML_RESPONSE_LENGTH) trace.rawResponse = posted;
    try {
      const sp = serviceProviderDetails(this.deps.config.baseUrl, connection.id);
      const envelope = trace.check(STAGES.samlEnvelope, () =>
        inspectSamlResponse({
          samlResponse: posted,
          acsUrl: sp.acsUrl,
          idpEntityId: connection.samlIdpEntityId,
          allowSha1: connection.samlAllowSha1,
          xmlLimits: this.deps.config.sso.xmlLimits,
          requireEncrypted: connection.samlRequireEncryptedAssertions,
        }),
      );
      envelopeInResponseTo = envelope.envelopeInResponseTo;
      requests = new SamlRequestCache(this.deps.db, {
        tenantId,
        connectionId: connection.id,
        browserHash: presentedBinding(req, bindingOptions(this.deps.config)),
      });
      // After the request cache exists: a refused decryption still returns this browser to its app.
      let assertionSigned = envelope.assertionSigned;
      let decryptionPvk: string | undefined;
      if (envelope.encryptedAssertionXml !== null) {
        const decrypted = await decryptAssertion({
          encryptedAssertionXml: envelope.encryptedAssertionXml,
          keys: await decryptionKeys(this.deps.db, connection, this.deps.secrets.masterKey),
          allowSha1: connection.samlAllowSha1,
          xmlLimits: this.deps.config.sso.xmlLimits,
        });
        assertionSigned = decrypted.assertionSigned;
        decryptionPvk = decrypted.key.privateKeyPem;
      }
      const options = this.options(connection, requests, false, envelope.responseSigned);
      // Only the key that opened it: node-saml decrypts the same bytes again, then verifies the
      // signature over the decrypted assertion (wantAssertionsSigned) exactly as for a plain one.
      if (decryptionPvk !== undefined) options.decryptionPvk = decryptionPvk;
      this.contexts.set(req, { options, connection, acs: { envelopeInResponseTo, requests, trace } });

      const outcome = await runStrategy(this.authenticator, STRATEGY, req, res);
      if (outcome.kind === 'error') {
        const refusal = reasonOfSamlError(outcome.error, {
          expectsAssertionSignature: connection.samlSignedElement !== 'response',
          responseSigned: envelope.responseSigned,
          assertionSigned,
        });
        trace.refusedIn(STAGES.samlSignature, refusal);
        throw refusal;
      }
      if (outcome.kind !== 'success') refuse('saml_response_invalid', `strategy ended with ${outcome.kind}`);
      const { verified } = outcome.user as { verified: VerifiedAssertion };
      unspent = verified.identity;
      const login = await this.spendAndComplete(req, connection, requests, verified, trace);
      unspent = null;
      if ('refusal' in login) throw login.refusal;
      await finishLogin(this.deps, req, res, login.loginId, login.result);
    } catch (error) {
      // A verified assertion whose transaction failed (not a refusal: those commit) is spent now.
      if (unspent && requests) await this.spendAfterFailure(req, connection, unspent);
      const loginId = await this.pendingLoginOfRefusal(requests, envelopeInResponseTo);
      // The answer named a request of this browser: it was sent (a refusal of that step still wins).
      if (loginId !== null) trace.pass('request_sent');
      await refuseLogin(this.deps, req, res, error, {
        tenantId,
        connectionId: connection.id,
        loginId,
        trace,
      });
    }
  }

  /**
   * Where a refused answer sends the person back to: the app's login this
   * browser has pending under the request id — the signed one if verify
   * consumed it, else the envelope's (only this browser's own request can be
   * found, so the unsigned value can at most end this browser's own attempt
   * with an error, never sign anyone in).
   */
  private async pendingLoginOfRefusal(
    requests: SamlRequestCache | null,
    envelopeInResponseTo: string | null,
  ): Promise<string | null> {
    if (!requests) return null;
    const consumed = requests.consumedLoginId();
    if (consumed) return consumed;
    if (!envelopeInResponseTo) return null;
    try {
      return (await requests.getAsync(envelopeInResponseTo))
        ? requests.loginIdOf(envelopeInResponseTo)
        : null;
    } catch {
      return null;
    }
  }

  private options(
    connection: Connection,
    cacheProvider: SamlRequestCache,
    saveRequestIds: boolean,
    responseSigned: boolean,
  ): SamlConfig {
    return samlOptions({
      baseUrl: this.deps.config.baseUrl,
      connection,
      timing: this.timing,
      cacheProvider,
      saveRequestIds,
      responseSigned,
    });
  }

  /**
   * The verify callback: node-saml has verified the signature and handed over
   * the signed assertion; every fact of the login is read from it, parsed
   * once (parseSignedAssertion): its ID and how long to remember it, then
   * subject, issuer, recipient, time and the signed InResponseTo. Pure: the
   * ACS's transaction (spendAndComplete) remembers the ID, consumes the
   * request and refuses, in that order.
   */
  private verify(req: Request, profile: Profile | null): VerifiedAssertion {
    const context = this.contexts.get(req);
    if (!context?.acs || !profile) refuse('saml_response_invalid', 'no profile');
    const assertionXml = profile.getAssertionXml?.();
    if (!assertionXml) refuse('saml_response_invalid', 'no signed assertion');
    const now = new Date();
    const { connection, acs } = context;
    const { trace } = acs;
    // node-saml called back: it verified the signature and the Conditions (time window, audience).
    trace.pass(...STAGES.samlSignature.completes);
    const assertion = parseSignedAssertion(assertionXml);
    const identity = assertionIdentity({
      assertion,
      now,
      clockSkewMs: this.timing.clockSkewMs,
      maxAssertionAgeMs: this.timing.maxAssertionAgeMs,
    });
    let facts: AssertionFacts | null = null;
    let checkRefusal: unknown = null;
    try {
      facts = checkSignedAssertion({
        assertion,
        acsUrl: serviceProviderDetails(this.deps.config.baseUrl, connection.id).acsUrl,
        idpEntityId: connection.samlIdpEntityId,
        envelopeInResponseTo: acs.envelopeInResponseTo,
        allowIdpInitiated: connection.samlAllowIdpInitiated,
        now,
        clockSkewMs: this.timing.clockSkewMs,
      });
    } catch (error) {
      checkRefusal = error;
    }
    if (facts) trace.pass(...STAGES.samlSignedAssertion.completes);
    else trace.refusedIn(STAGES.samlSignedAssertion, checkRefusal);
    return {
      identity,
      facts,
      checkRefusal,
      attributes: (profile.attributes ?? {}) as Record<string, unknown>,
      logoutSubject: facts ? logoutSubjectOf(facts, profile) : null,
    };
  }

  /**
   * The login's one tenant transaction (issue 13; issue 9 made it two): the
   * first statement spends the assertion, consumes the request and reads what
   * the checks need (saml-acs-statement.ts); then the refusals in their order
   * (replayed, the signed checks, the request, the connection's status, the
   * subject), then provisioning, the audit event and the trace
   * (completeLoginIn). A refusal is returned, not thrown, so the transaction
   * commits and the verified assertion stays spent; provisioning refuses
   * before it writes anything. A thrown error rolls everything back
   * (spendAfterFailure then spends the assertion on its own).
   */
  private async spendAndComplete(
    req: Request,
    connection: Connection,
    requests: SamlRequestCache,
    verified: VerifiedAssertion,
    trace: LoginTraceRecorder,
  ): Promise<{ loginId: string | null; result: LoginResult } | { refusal: unknown }> {
    const { facts, identity } = verified;
    const tenantId = connection.tenantId;
    const now = new Date();
    // Pure, before the transaction: who the signed assertion names, after attribute mapping.
    const person = facts
      ? samlLoginSubject({
          facts,
          attributes: verified.attributes,
          mapping: connection.attributeMapping,
        })
      : null;
    const resolved = person
      ? resolveProfileAttributes(connection.attributeMapping, verified.attributes, person.profileNameId)
      : null;
    const profile: LoginProfile | null =
      person && resolved
        ? { connectionId: connection.id, subject: person.subject, emailAssertedByIdp: true, ...resolved }
        : null;
    const inResponseTo = facts?.inResponseTo ?? null;
    return this.deps.db.withTenant(tenantId, async (em) => {
      const first = await spendAssertion(em, {
        tenantId,
        connectionId: connection.id,
        identity,
        now,
        requests,
        inResponseTo,
        profile,
      });
      const refused = (refusal: unknown) => ({ refusal });
      if (!first.fresh)
        return refused(new LoginRefusedError('saml_assertion_replayed', `assertion ${identity.assertionId}`));
      trace.pass(...STAGES.samlReplay.completes);
      if (!facts || !profile || !person || !resolved) return refused(verified.checkRefusal);
      if (inResponseTo !== null && !first.loginId)
        return refused(
          new LoginRefusedError('saml_in_response_to_invalid', 'no pending request of this browser'),
        );
      const loginId = first.loginId;
      if (loginId !== null) trace.pass('request_sent');
      trace.kind = traceKindOf(this.deps.secrets.masterKey, loginId);
      // An inactive connection answers only a portal test sign-in.
      if (
        connection.status !== 'active' &&
        !isTestLoginFor(this.deps.secrets.masterKey, loginId, tenantId, connection.id)
      )
        return refused(new LoginRefusedError('connection_unknown', `connection is ${connection.status}`));
      trace.profile = {
        subject: person.subject,
        email: resolved.email,
        given_name: resolved.givenName,
        family_name: resolved.familyName,
        display_name: resolved.displayName,
        groups: resolved.groups,
        attribute_names: Object.keys(verified.attributes).slice(0, 100),
      };
      if (person.subject === null && resolved.email === null)
        return refused(
          new LoginRefusedError(
            'saml_nameid_transient',
            'transient NameID, no persistent identifier attribute, no email',
          ),
        );
      try {
        const result = await completeLoginIn(
          em,
          connection,
          profile,
          facts.authnInstant ?? new Date(),
          { requestId: req.requestId, sourceIp: req.ip, trace: traceSink(this.deps, trace) },
          { domainOfOtherTenant: first.domainOfOtherTenant, jit: first.jit },
          now,
        );
        return {
          loginId,
          result: verified.logoutSubject ? withSamlSession(result, verified.logoutSubject) : result,
        };
      } catch (error) {
        // completeLoginIn refuses before it writes: the spent assertion still commits.
        if (error instanceof LoginRefusedError) return { refusal: error };
        throw error;
      }
    });
  }

  /** After a failed login transaction: the verified assertion enters the replay cache on its own. */
  private async spendAfterFailure(req: Request, connection: Connection, identity: AssertionIdentity) {
    try {
      await this.deps.db.withTenant(connection.tenantId, (em) =>
        rememberAssertionId(em, {
          tenantId: connection.tenantId,
          connectionId: connection.id,
          assertionId: identity.assertionId,
          acceptableUntil: identity.acceptableUntil,
          now: new Date(),
        }),
      );
    } catch (error) {
      req.log.error({ err: error, request_id: req.requestId }, 'could not spend a verified SAML assertion');
    }
  }
}
