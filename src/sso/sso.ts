import { Router, type ErrorRequestHandler, type Request, type Response } from 'express';
import type { Connection } from '../connections/connection.entity.js';
import { resolveTenantByEmailDomain } from '../db/resolvers.js';
import { presentedBinding } from '../http/browser-binding.js';
import { sendPage } from '../http/pages.js';
import { t } from '../http/strings.js';
import { emailDomain } from '../tenants/domain-name.js';
import { findTenantByIdOrSlug } from '../tenants/tenants.service.js';
import { findConnectionForLogin } from '../connections/connections.service.js';
import { chosenConnection, discover, normalizeEmail } from './home-realm.js';
import { openTestLoginId } from './login-trace-kind.js';
import { LoginTraceRecorder } from './login-trace-steps.js';
import { openFailureHandoff } from './failure-link.js';
import type { LoginFlow, PendingLogin } from './login-handoff.js';
import { serveClientJwks } from './oidc/client-jwks.js';
import { OidcFlow } from './oidc/oidc-flow.js';
import { allowHttpForms, bindingOptions, refuseLogin, type SsoDeps } from './outcome.js';
import { chooserPage, emailPage, sendAcsGet } from './pages.js';
import { LoginRefusedError, refuse } from './reasons.js';
import { SamlFlow } from './saml/saml-flow.js';
import { SingleLogout } from './saml/single-logout.js';
import { loadSpSigningKey } from './saml/sp-signing-key.js';

export type { SsoDeps, UnsolicitedLoginCompleter } from './outcome.js';

/** The app's pending login id as it travels in our URLs: opaque, but of a sane shape. */
const LOGIN_ID = /^[A-Za-z0-9._~-]{1,128}$/;

interface BeginInput {
  loginId: string;
  email: string | null;
  organization: string | null;
  connectionId: string | null;
  /** The person picked the connection on the chooser page (not the app). */
  chosenByPerson: boolean;
}

function queryString(req: Request, name: string, maxLength = 512): string | null {
  const value = req.query[name];
  return typeof value === 'string' && value.length > 0 && value.length <= maxLength ? value : null;
}

/**
 * The IdP side of sign-in (issue 4): home realm discovery, then SAML or OIDC
 * at the tenant's IdP, then completeLogin, then the app's completer.
 * `loginFlow` is what the OpenID Provider side (src/tokens) calls from
 * /oauth/authorize; `router` serves /login, the ACS, the OIDC callback and
 * /sso/continue.
 */
export function createSso(deps: SsoDeps): {
  loginFlow: LoginFlow;
  router: Router;
  /** For SP metadata: the certificate IdPs verify signed AuthnRequests with (null: none configured). */
  spSigningCertificate: () => Promise<string | null>;
} {
  const spSigning = loadSpSigningKey(deps.config.sso);
  const saml = new SamlFlow(deps, spSigning);
  const singleLogout = new SingleLogout(deps, spSigning);
  const oidc = new OidcFlow(deps);
  const page = (res: Response, title: string, body: string) =>
    sendPage(res, { status: 200, title, body, allowHttpForms: allowHttpForms(deps.config) });

  async function connectionFor(req: Request, res: Response, input: BeginInput): Promise<Connection | null> {
    // A portal test sign-in (issue 15): the connection its id is bound to (MAC), active or not yet.
    const test = openTestLoginId(deps.secrets.masterKey, input.loginId);
    if (test) {
      if (input.connectionId !== null && input.connectionId !== test.connectionId)
        refuse('discovery_conflict', 'a test sign-in names another connection');
      const connection = await deps.db.withTenant(test.tenantId, (em) =>
        findConnectionForLogin(em, test.connectionId),
      );
      if (!connection) refuse('discovery_connection_unknown', test.connectionId);
      return connection;
    }
    if (input.chosenByPerson && input.connectionId) {
      // idor check: a connection picked by the person must belong to the tenant their email or org names.
      const email = input.email ? normalizeEmail(input.email) : null;
      const domain = email ? emailDomain(email) : null;
      const tenantId = domain
        ? await resolveTenantByEmailDomain(deps.db, domain)
        : input.organization
          ? ((await findTenantByIdOrSlug(deps.db, input.organization))?.id ?? null)
          : null;
      if (!tenantId) refuse('discovery_connection_unknown', 'no tenant for the chosen connection');
      return chosenConnection(deps.db, tenantId, input.connectionId);
    }
    const outcome = await discover(deps.db, {
      email: input.email,
      organization: input.organization,
      connectionId: input.connectionId,
    });
    if (outcome.kind === 'connection') return outcome.connection;
    if (outcome.kind === 'ask_email') {
      page(res, t.email.title, emailPage({ baseUrl: deps.config.baseUrl, loginId: input.loginId }));
    } else {
      const email = input.email ? normalizeEmail(input.email) : null;
      const hint = email ? { email } : { organization: input.organization ?? outcome.tenantId };
      // The tenant's display name on the chooser (issue 15): discovery already named this tenant.
      const tenant = await findTenantByIdOrSlug(deps.db, outcome.tenantId);
      page(
        res,
        t.chooser.title,
        chooserPage({
          baseUrl: deps.config.baseUrl,
          loginId: input.loginId,
          hint,
          connections: outcome.connections,
          tenantName: tenant?.name,
        }),
      );
    }
    return null;
  }

  async function begin(req: Request, res: Response, input: BeginInput): Promise<void> {
    let connection: Connection | null = null;
    try {
      connection = await connectionFor(req, res, input);
      if (!connection) return;
      req.tenantId = connection.tenantId;
      if (connection.type === 'saml') await saml.start(req, res, connection, input.loginId);
      else
        await oidc.start(
          req,
          res,
          connection,
          input.loginId,
          input.email ? normalizeEmail(input.email) : null,
        );
    } catch (error) {
      await refuseLogin(deps, req, res, error, {
        tenantId: connection?.tenantId,
        connectionId: connection?.id,
        loginId: input.loginId,
        trace: connection ? new LoginTraceRecorder(connection.type) : undefined,
        retry: connection === null,
      });
    }
  }

  const loginFlow: LoginFlow = {
    start: (req, res, pending: PendingLogin) =>
      begin(req, res, {
        loginId: pending.loginId,
        email: pending.loginHint,
        organization: pending.organization,
        connectionId: pending.connectionId,
        chosenByPerson: false,
      }),
    endAtIdp: (req, res, ended) => singleLogout.endAtIdp(req, res, ended),
  };

  const router = Router();

  // The email form and the chooser page land here (GET, so no form re-post prompts).
  router.get('/login', async (req, res) => {
    const loginId = queryString(req, 'login');
    if (!loginId || !LOGIN_ID.test(loginId))
      return refuseLogin(deps, req, res, new LoginRefusedError('login_request_invalid'));
    const connectionId = queryString(req, 'connection');
    return begin(req, res, {
      loginId,
      email: queryString(req, 'email'),
      organization: queryString(req, 'organization'),
      connectionId,
      chosenByPerson: connectionId !== null,
    });
  });

  router.post('/saml/:connectionId/acs', (req, res) => saml.acs(req, res, req.params.connectionId));
  // SAML Single Logout (issue 16): HTTP-Redirect and HTTP-POST bindings at one URL.
  router.get('/saml/:connectionId/slo', (req, res) =>
    singleLogout.receive(req, res, req.params.connectionId),
  );
  router.post('/saml/:connectionId/slo', (req, res) =>
    singleLogout.receive(req, res, req.params.connectionId),
  );
  router.get('/saml/:connectionId/acs', sendAcsGet); // a person who opens the ACS URL: 405 and a page (issue 15)
  router.get('/oidc/:connectionId/callback', (req, res) => oidc.callback(req, res, req.params.connectionId));
  router.get('/oidc/:connectionId/jwks', (req, res) => serveClientJwks(deps.db, req, res)); // issue 16

  // "Back to the application" from an error page: the app gets its OAuth error.
  router.get('/sso/continue', async (req, res) => {
    const sealed = queryString(req, 'handoff', 4096);
    const handoff = sealed ? openFailureHandoff(deps.secrets.masterKey, sealed, new Date()) : null;
    const binding = presentedBinding(req, bindingOptions(deps.config));
    if (!handoff || binding !== handoff.binding)
      return refuseLogin(deps, req, res, new LoginRefusedError('handoff_invalid'));
    await deps.completer.fail(req, res, handoff.loginId, handoff.failure);
  });

  // Browser flows end on a page: never a stack trace or a library message.
  // Returned, not voided: Express 5 handles a rejection of the returned promise, so a failure while
  // refusing can never become an unhandled rejection that stops the process.
  const onError: ErrorRequestHandler = (error: unknown, req, res, _next) =>
    refuseLogin(deps, req, res, error);
  router.use(onError);

  return {
    loginFlow,
    router,
    spSigningCertificate: () => Promise.resolve(spSigning?.certificatePem ?? null),
  };
}
