import type { Express } from 'express';

/**
 * Which test proves each mounted route cannot reach another tenant's data
 * (issue 8, "a test enumerates the mounted routes"). route-coverage.test.ts
 * walks the real app's router and fails when a route is in neither list
 * below, when an entry names a route no longer mounted, or when a named test
 * does not exist in the named file.
 *
 * Keys are `METHOD path-template` as Express mounts them (mount paths joined,
 * no trailing slash). A test counts when it drives that route with another
 * tenant's credential, id or handle and checks the refusal and that nothing
 * of the other tenant was read or written.
 */
export interface CoveringTest {
  /** Path from the repository root. */
  file: string;
  /** The exact name given to it()/test(). */
  test: string;
}

const ADMIN = 'test/security/cross-tenant-admin.security.test.ts';
const ADMIN_ALL =
  "refuses tenant A's admin on every admin route of tenant B with 404, and changes nothing of B";
const ADMIN_MIXED =
  "refuses B's domains, role mappings, SCIM tokens and connections addressed under A's own path";
const ADMIN_LIFECYCLE =
  'refuses suspend, reactivate and delete of tenant B by tenant A’s admin with 404, leaving B as it was';
const ADMIN_OPERATOR =
  "refuses tenant A's admin on every operator-only route with 403, changing no app, key or tenant";
const admin = (...tests: string[]): CoveringTest[] => tests.map((test) => ({ file: ADMIN, test }));
// The same routes addressed by another tenant's slug instead of its id (issue 14).
const BY_SLUG: CoveringTest = {
  file: 'test/admin/tenant-slug.test.ts',
  test: "answers tenant A's admin naming tenant B's slug with the 404 of an unknown tenant, changing nothing of B",
};

const OFFBOARDING_OPERATOR: CoveringTest = {
  file: 'test/offboarding/deletion.security.test.ts',
  test: "refuses a tenant's own admin the deletion record, purge and deletion with 403, and another tenant's with 404",
};
const ERASURE_CROSS_TENANT: CoveringTest = {
  file: 'test/offboarding/erasure.security.test.ts',
  test: "refuses B's admin erasing A's user, by A's path or its own, with 404, leaving A's user and trail as they were",
};

const SCIM = 'test/security/cross-tenant-scim.security.test.ts';
const SCIM_EVERY = "refuses tenant A's token on every SCIM route of tenant B with 401 and no B data";
const SCIM_SEARCH = "finds none of B's users or groups through /.search with A's token on A's path";
const SCIM_SEARCH_ON_B = "refuses A's token on B's /.search endpoints with 401 and nothing of B in the body";
const REQUEST_LOG_CROSS_TENANT =
  "answers 404 to tenant B's admin reading tenant A's SCIM request log, and shows B none of A's rows";
const SCIM_OLD = 'test/scim/cross-tenant.security.test.ts';
const SCIM_OLD_IDS = "answers 404 for B's user and group ids through A's token, and changes nothing of B";
const SCIM_OLD_PATH = "refuses tenant A's token on tenant B's path with the same 401 as an invalid token";
const SCIM_OLD_FILTER = "cannot make B's user a member of A's group, nor find B's users by filter";
const SCIM_BULK =
  "fails each Bulk operation naming tenant B's user or group from tenant A's token, linking nothing and leaving B unchanged";
const scim = (...tests: string[]): CoveringTest[] => tests.map((test) => ({ file: SCIM, test }));
const scimOld = (...tests: string[]): CoveringTest[] => tests.map((test) => ({ file: SCIM_OLD, test }));

const OAUTH = 'test/security/cross-tenant-oauth.security.test.ts';
const oauth = (...tests: string[]): CoveringTest[] => tests.map((test) => ({ file: OAUTH, test }));
const OAUTH_CODE =
  "refuses a code carrying tenant B's session id with A's secret, consuming nothing of either";
const OAUTH_REFRESH =
  "refuses a refresh token carrying tenant B's session id with A's secret, revoking nothing of B";
const OAUTH_REVOKE =
  "revokes none of B's sessions with A's spliced refresh token or a token naming B over A's session";
const OAUTH_INTROSPECT = 'answers inactive for a spliced refresh token and a token naming B over A’s session';
const OAUTH_USERINFO = 'refuses userinfo for a token naming tenant B over A’s session';
const OAUTH_LOGOUT = "ends none of B's sessions with A's ID token, nor with an ID token naming B's session";
const OAUTH_CONTINUE =
  "refuses to continue B's pending login with A's completion token, leaving B's login usable";

const SSO = 'test/security/cross-tenant-sso.security.test.ts';
const sso = (...tests: string[]): CoveringTest[] => tests.map((test) => ({ file: SSO, test }));
const SSO_OIDC_STATE =
  "refuses tenant A's pending OIDC state replayed at tenant B's callback, writing nothing and leaving A's login intact";
const SSO_CONTINUE = "refuses tenant A's failure handoff in tenant B's browser and leaves A's login pending";
const SSO_OLD = 'test/sso/cross-tenant.security.test.ts';
const SLO_CROSS_TENANT =
  "revokes nothing of Acme through Globex's connection, whether signed by Globex's IdP or by Acme's";
const DISCOVERY = 'test/sso/home-realm.test.ts';
const DISCOVERY_CONFLICT = 'refuses hints that name different tenants instead of picking one';

const SP_KEYS: CoveringTest[] = [
  ...admin(ADMIN_ALL, ADMIN_MIXED),
  {
    file: 'test/connections/sp-keys.security.test.ts',
    test: "answers 404 to tenant A's admin on tenant B's SP keys and to B's connection under A's path, changing no key of B",
  },
];

// Issue 15: the Admin Portal, driven by tenant A's setup link (every intent) against tenant B.
const PORTAL = 'test/portal/cross-tenant.security.test.ts';
const PORTAL_ALL =
  "refuses tenant A's setup link on every portal route of tenant B with 404, and changes nothing of B";
const PORTAL_MIXED =
  "refuses B's connection, domain and setup link ids under A's own path with 404, changing nothing of B";
const portal = (...tests: string[]): CoveringTest[] => tests.map((test) => ({ file: PORTAL, test }));
const pages = (page: string, test: string) => [{ file: `test/portal/${page}-pages.test.ts`, test }];
const AUDIT_X = pages(
  'audit',
  "refuses tenant A's session on tenant B's audit pages with 404, showing and changing nothing of B",
);
const CERTS_X = pages(
  'certificates',
  "refuses tenant A's session on tenant B's certificate pages and B's connection under A's path with 404, changing nothing of B",
);
const ROLES_X = pages(
  'roles',
  "refuses tenant A's session on tenant B's role pages and B's mapping under A's path with 404, changing nothing of B",
);
const PORTAL_PAGES: Record<string, CoveringTest[]> = {
  'GET /portal/t/:tenantId/audit': AUDIT_X,
  'GET /portal/t/:tenantId/audit/events/:seq': AUDIT_X,
  'POST /portal/t/:tenantId/audit/verify': AUDIT_X,
  'GET /portal/t/:tenantId/certificates': CERTS_X,
  'GET /portal/t/:tenantId/certificates/:connectionId': CERTS_X,
  'POST /portal/t/:tenantId/certificates/:connectionId/metadata': CERTS_X,
  'POST /portal/t/:tenantId/certificates/:connectionId/refresh': CERTS_X,
  'GET /portal/t/:tenantId/roles': ROLES_X,
  'POST /portal/t/:tenantId/roles': ROLES_X,
  'POST /portal/t/:tenantId/roles/:mappingId/delete': ROLES_X,
};
// Issue 15: tenant admins signed in through their own IdP (src/portal/admin-signin.ts).
const TENANT_ADMIN_FILE = 'test/portal/tenant-admin-signin.security.test.ts';
const TENANT_ADMIN_PAGES: CoveringTest = {
  file: TENANT_ADMIN_FILE,
  test: "refuses tenant A's admin, signed in through A's own IdP, on tenant B's portal pages with 404, and changes nothing of B",
};
const TENANT_ADMIN_CALLBACK: CoveringTest = {
  file: TENANT_ADMIN_FILE,
  test: "refuses tenant B's admin's code at the callback of a sign-in A's browser started, opening no session",
};
const PORTAL_ROUTES: Record<string, CoveringTest[]> = {
  'GET /portal': portal(
    'sends a setup-link session from the tenant list to its own tenant, listing no other tenant',
  ),
  'POST /portal/start': [
    {
      file: 'test/portal/links.test.ts',
      test: "refuses a setup link whose tenant part was changed to another tenant's",
    },
  ],
  'GET /portal/t/:tenantId': [...portal(PORTAL_ALL), TENANT_ADMIN_PAGES],
  'GET /portal/oidc/callback': [TENANT_ADMIN_CALLBACK],
  'POST /portal/t/:tenantId/setup-links': portal(PORTAL_ALL),
  'POST /portal/t/:tenantId/setup-links/:linkId/revoke': portal(PORTAL_ALL, PORTAL_MIXED),
  'GET /portal/t/:tenantId/sso': portal(PORTAL_ALL),
  'POST /portal/t/:tenantId/sso/connections': portal(PORTAL_ALL),
  'GET /portal/t/:tenantId/sso/oidc': portal(PORTAL_ALL),
  'POST /portal/t/:tenantId/sso/oidc': portal(PORTAL_ALL),
  'GET /portal/t/:tenantId/sso/connections/:connectionId': portal(PORTAL_ALL, PORTAL_MIXED),
  'POST /portal/t/:tenantId/sso/connections/:connectionId/metadata': portal(PORTAL_ALL, PORTAL_MIXED),
  'POST /portal/t/:tenantId/sso/connections/:connectionId/activate': portal(PORTAL_ALL, PORTAL_MIXED),
  'GET /portal/t/:tenantId/sso/connections/:connectionId/test': portal(PORTAL_ALL, PORTAL_MIXED),
  'GET /portal/t/:tenantId/sso/connections/:connectionId/test-result': portal(PORTAL_ALL, PORTAL_MIXED),
  'GET /portal/t/:tenantId/domains': portal(PORTAL_ALL),
  'POST /portal/t/:tenantId/domains': portal(PORTAL_ALL),
  'POST /portal/t/:tenantId/domains/:domainId/verify': portal(PORTAL_ALL, PORTAL_MIXED),
  'GET /portal/t/:tenantId/dsync': portal(PORTAL_ALL),
  'POST /portal/t/:tenantId/dsync/tokens': portal(PORTAL_ALL),
  ...PORTAL_PAGES,
  'POST /admin/v1/tenants/:tenantId/setup-links': admin(ADMIN_ALL),
  'GET /admin/v1/tenants/:tenantId/setup-links': admin(ADMIN_ALL),
  'DELETE /admin/v1/tenants/:tenantId/setup-links/:linkId': admin(ADMIN_ALL),
  'POST /admin/v1/portal-links': admin(ADMIN_OPERATOR),
};

const EXPORTS_FILE = 'test/offboarding/export.security.test.ts';
const EXPORTS = {
  other: {
    file: EXPORTS_FILE,
    test: "refuses tenant B's admin creating, reading or downloading tenant A's export with 404, changing nothing of A",
  },
  mixed: {
    file: EXPORTS_FILE,
    test: "answers 404 for A's export id under B's own path, and A's export stays ready",
  },
  imports: { file: EXPORTS_FILE, test: 'refuses an import by a tenant admin with 403, writing nothing' },
} satisfies Record<string, CoveringTest>;

export const CROSS_TENANT_TESTS: Record<string, CoveringTest[]> = {
  ...PORTAL_ROUTES,
  // Admin API: tenant-scoped routes, through the real tenant-admin resolver.
  'GET /admin/v1/tenants/:tenantId': [...admin(ADMIN_ALL), BY_SLUG],
  'PATCH /admin/v1/tenants/:tenantId': [...admin(ADMIN_ALL), BY_SLUG],
  'POST /admin/v1/tenants/:tenantId/suspend': [...admin(ADMIN_ALL, ADMIN_LIFECYCLE), BY_SLUG],
  'POST /admin/v1/tenants/:tenantId/reactivate': admin(ADMIN_ALL, ADMIN_LIFECYCLE),
  'DELETE /admin/v1/tenants/:tenantId': [...admin(ADMIN_ALL, ADMIN_LIFECYCLE), BY_SLUG],
  'POST /admin/v1/tenants/:tenantId/domains': admin(ADMIN_ALL),
  'GET /admin/v1/tenants/:tenantId/domains': admin(ADMIN_ALL),
  'GET /admin/v1/tenants/:tenantId/domains/:domainId': admin(ADMIN_ALL, ADMIN_MIXED),
  'POST /admin/v1/tenants/:tenantId/domains/:domainId/verify': admin(ADMIN_ALL, ADMIN_MIXED),
  'DELETE /admin/v1/tenants/:tenantId/domains/:domainId': admin(ADMIN_ALL, ADMIN_MIXED),
  'POST /admin/v1/tenants/:tenantId/role-mappings': admin(ADMIN_ALL),
  'GET /admin/v1/tenants/:tenantId/role-mappings': admin(ADMIN_ALL),
  'GET /admin/v1/tenants/:tenantId/role-mappings/:mappingId': admin(ADMIN_ALL, ADMIN_MIXED),
  'DELETE /admin/v1/tenants/:tenantId/role-mappings/:mappingId': admin(ADMIN_ALL, ADMIN_MIXED),
  'POST /admin/v1/tenants/:tenantId/scim-tokens': admin(ADMIN_ALL),
  'GET /admin/v1/tenants/:tenantId/scim-tokens': admin(ADMIN_ALL),
  'DELETE /admin/v1/tenants/:tenantId/scim-tokens/:tokenId': admin(ADMIN_ALL, ADMIN_MIXED),
  'GET /admin/v1/tenants/:tenantId/audit-events': admin(ADMIN_ALL),
  'GET /admin/v1/tenants/:tenantId/audit-events/verify': admin(ADMIN_ALL),
  'POST /admin/v1/tenants/:tenantId/audit-checkpoints': admin(ADMIN_ALL),
  'GET /admin/v1/tenants/:tenantId/audit-checkpoints': admin(ADMIN_ALL),
  // Issue 12: tenant exports (operator or the tenant's admin) and imports (operator only).
  'POST /admin/v1/tenants/:tenantId/exports': [...admin(ADMIN_ALL), EXPORTS.other],
  'GET /admin/v1/tenants/:tenantId/exports/:exportId': [...admin(ADMIN_ALL), EXPORTS.other, EXPORTS.mixed],
  'GET /admin/v1/tenants/:tenantId/exports/:exportId/download': [
    ...admin(ADMIN_ALL),
    EXPORTS.other,
    EXPORTS.mixed,
  ],
  'POST /admin/v1/tenant-imports': [...admin(ADMIN_OPERATOR), EXPORTS.imports],
  // Issue 12 (offboarding): the deletion record and purge are the operator's; erasure a tenant's own.
  'GET /admin/v1/tenants/:tenantId/deletion': [...admin(ADMIN_ALL), OFFBOARDING_OPERATOR],
  'POST /admin/v1/tenants/:tenantId/purge': [...admin(ADMIN_ALL), OFFBOARDING_OPERATOR],
  'POST /admin/v1/tenants/:tenantId/users/:userId/erasure': [...admin(ADMIN_ALL), ERASURE_CROSS_TENANT],
  'GET /admin/v1/tenants/:tenantId/scim-requests': [
    ...admin(ADMIN_ALL),
    { file: 'test/scim/request-log.test.ts', test: REQUEST_LOG_CROSS_TENANT },
  ],
  // Issue 15: login traces, in the admin API and the portal.
  ...Object.fromEntries(
    [
      'GET /admin/v1/tenants/:tenantId/login-traces',
      'GET /admin/v1/tenants/:tenantId/login-traces/:traceId',
      'GET /admin/v1/tenants/:tenantId/login-traces/:traceId/raw-response',
      'GET /portal/t/:tenantId/sso/traces',
      'POST /portal/t/:tenantId/sso/traces/settings',
      'GET /portal/t/:tenantId/sso/traces/:ref',
      'POST /portal/t/:tenantId/sso/traces/:ref/raw/:traceId',
    ].map((route) => [
      route,
      [
        {
          file: 'test/portal/login-traces.test.ts',
          test: "refuses tenant B's admin and portal session every login trace route of tenant A with 404, showing none of A's traces",
        },
      ],
    ]),
  ),
  'GET /admin/v1/tenants/:tenantId/deliveries/:kind': admin(ADMIN_ALL),
  'POST /admin/v1/tenants/:tenantId/deliveries/:kind/:deliveryId/retry': admin(ADMIN_ALL, ADMIN_MIXED),
  'POST /admin/v1/tenants/:tenantId/connections': admin(ADMIN_ALL),
  'GET /admin/v1/tenants/:tenantId/connections': admin(ADMIN_ALL),
  'GET /admin/v1/tenants/:tenantId/connections/:connectionId': [
    ...admin(ADMIN_ALL, ADMIN_MIXED),
    {
      file: 'test/admin/connections.security.test.ts',
      test: "answers 404 for another tenant's connection id in the path, changing nothing",
    },
  ],
  'PATCH /admin/v1/tenants/:tenantId/connections/:connectionId': admin(ADMIN_ALL, ADMIN_MIXED),
  'DELETE /admin/v1/tenants/:tenantId/connections/:connectionId': admin(ADMIN_ALL, ADMIN_MIXED),
  // Per-connection SP keys (issue 16).
  'GET /admin/v1/tenants/:tenantId/connections/:connectionId/sp-keys': SP_KEYS,
  'POST /admin/v1/tenants/:tenantId/connections/:connectionId/sp-keys/rotate': SP_KEYS,
  'POST /admin/v1/tenants/:tenantId/connections/:connectionId/sp-keys/activate': SP_KEYS,
  'POST /admin/v1/tenants/:tenantId/connections/:connectionId/sp-keys/retire': SP_KEYS,
  // Issue 16: metadata refresh and private_key_jwt client keys of a connection.
  'POST /admin/v1/tenants/:tenantId/connections/:connectionId/metadata/refresh': admin(
    ADMIN_ALL,
    ADMIN_MIXED,
  ),
  // Issue 15 follow-up: the portal's certificate renewal through the admin API.
  'POST /admin/v1/tenants/:tenantId/connections/:connectionId/metadata-renewal': [
    ...admin(ADMIN_ALL, ADMIN_MIXED),
    {
      file: 'test/admin/metadata-renewal.test.ts',
      test: "answers 404 to tenant B's admin renewing tenant A's connection, by A's path or its own, changing nothing of A",
    },
  ],
  'GET /admin/v1/tenants/:tenantId/connections/:connectionId/client-keys': admin(ADMIN_ALL, ADMIN_MIXED),
  'POST /admin/v1/tenants/:tenantId/connections/:connectionId/client-keys/rotate': admin(
    ADMIN_ALL,
    ADMIN_MIXED,
  ),
  'POST /admin/v1/tenants/:tenantId/connections/:connectionId/client-keys/activate': admin(
    ADMIN_ALL,
    ADMIN_MIXED,
  ),
  // Admin API: platform routes a tenant admin must not reach at all (apps and keys span every tenant).
  'POST /admin/v1/tenants': admin(ADMIN_OPERATOR),
  'GET /admin/v1/tenants': admin(ADMIN_OPERATOR),
  'POST /admin/v1/apps': admin(ADMIN_OPERATOR),
  'GET /admin/v1/apps': admin(ADMIN_OPERATOR),
  'GET /admin/v1/apps/:appId': admin(ADMIN_OPERATOR),
  'PATCH /admin/v1/apps/:appId': admin(ADMIN_OPERATOR),
  'DELETE /admin/v1/apps/:appId': admin(ADMIN_OPERATOR),
  'POST /admin/v1/apps/:appId/secrets': admin(ADMIN_OPERATOR),
  'POST /admin/v1/apps/:appId/webhook-secret': admin(ADMIN_OPERATOR),
  'GET /admin/v1/signing-keys': admin(ADMIN_OPERATOR),
  'POST /admin/v1/signing-keys/rotate': admin(ADMIN_OPERATOR),
  'GET /admin/v1/audit-checkpoint-key': admin(ADMIN_OPERATOR),

  // OpenID Provider side: the tenant is implied by the session inside a code, token or hint.
  'GET /oauth/authorize/continue': oauth(OAUTH_CONTINUE),
  'GET /oauth/logout': oauth(OAUTH_LOGOUT),
  'POST /oauth/logout': oauth(OAUTH_LOGOUT),
  'POST /oauth/token': [
    ...oauth(OAUTH_CODE, OAUTH_REFRESH),
    {
      file: 'test/tokens/token-endpoint.security.test.ts',
      test: "refuses another client's refresh token without consuming it",
    },
  ],
  'POST /oauth/introspect': [
    ...oauth(OAUTH_INTROSPECT),
    {
      file: 'test/tokens/token-verification.security.test.ts',
      test: 'answers introspection only to the app the token was issued to',
    },
  ],
  'POST /oauth/revoke': oauth(OAUTH_REVOKE),
  'GET /oauth/userinfo': oauth(OAUTH_USERINFO),
  'POST /oauth/userinfo': oauth(OAUTH_USERINFO),
  // The tenant is chosen by discovery from the hints; one handler serves GET and POST (OIDC Core §3.1.2.1).
  'GET /oauth/authorize': [{ file: DISCOVERY, test: DISCOVERY_CONFLICT }],
  'POST /oauth/authorize': [{ file: DISCOVERY, test: DISCOVERY_CONFLICT }],

  // IdP side of sign-in.
  'GET /login': [{ file: SSO_OLD, test: 'never shows one tenant’s connections to a person of another' }],
  'POST /saml/:connectionId/acs': [
    { file: SSO_OLD, test: 'refuses an answer to Acme’s AuthnRequest delivered at Globex’s ACS' },
    {
      file: SSO_OLD,
      test: 'refuses Globex’s IdP answer posted to Acme’s ACS: not signed by Acme’s IdP, not for Acme’s SP',
    },
  ],
  // SAML Single Logout (issue 16): another tenant's connection, with this tenant's NameID and session index.
  'GET /saml/:connectionId/slo': [{ file: 'test/sso/saml-slo.test.ts', test: SLO_CROSS_TENANT }],
  'POST /saml/:connectionId/slo': [{ file: 'test/sso/saml-slo.test.ts', test: SLO_CROSS_TENANT }],
  'GET /oidc/:connectionId/callback': sso(SSO_OIDC_STATE),
  'GET /sso/continue': sso(SSO_CONTINUE),

  // SCIM 2.0: every route behind the tenant's SCIM token.
  'GET /scim/v2/:tenantId/Users': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_PATH, SCIM_OLD_FILTER)],
  'POST /scim/v2/:tenantId/Users': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_PATH)],
  'GET /scim/v2/:tenantId/Users/:id': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_IDS)],
  'PUT /scim/v2/:tenantId/Users/:id': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_IDS)],
  'PATCH /scim/v2/:tenantId/Users/:id': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_IDS)],
  'DELETE /scim/v2/:tenantId/Users/:id': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_IDS)],
  'GET /scim/v2/:tenantId/Groups': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_FILTER)],
  'POST /scim/v2/:tenantId/Groups': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_FILTER)],
  'GET /scim/v2/:tenantId/Groups/:id': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_IDS)],
  'PUT /scim/v2/:tenantId/Groups/:id': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_IDS)],
  'PATCH /scim/v2/:tenantId/Groups/:id': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_IDS)],
  'DELETE /scim/v2/:tenantId/Groups/:id': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_IDS)],
  'POST /scim/v2/:tenantId/.search': scim(SCIM_EVERY, SCIM_SEARCH, SCIM_SEARCH_ON_B),
  'POST /scim/v2/:tenantId/Users/.search': scim(SCIM_EVERY, SCIM_SEARCH, SCIM_SEARCH_ON_B),
  'POST /scim/v2/:tenantId/Groups/.search': scim(SCIM_EVERY, SCIM_SEARCH, SCIM_SEARCH_ON_B),
  'POST /scim/v2/:tenantId/Bulk': [...scim(SCIM_EVERY), { file: 'test/scim/bulk.test.ts', test: SCIM_BULK }],
  'GET /scim/v2/:tenantId/Me': scim(SCIM_EVERY),
  // Discovery documents hold no tenant rows, but their locations name the tenant and they sit behind its token.
  'GET /scim/v2/:tenantId/ServiceProviderConfig': [...scim(SCIM_EVERY), ...scimOld(SCIM_OLD_PATH)],
  'GET /scim/v2/:tenantId/Schemas': scim(SCIM_EVERY),
  'GET /scim/v2/:tenantId/Schemas/:id': scim(SCIM_EVERY),
  'GET /scim/v2/:tenantId/ResourceTypes': scim(SCIM_EVERY),
  'GET /scim/v2/:tenantId/ResourceTypes/:id': scim(SCIM_EVERY),
};

/** Routes that touch no tenant's data, each with the reason. */
export const EXEMPT: Record<string, string> = {
  'GET /portal/assets/:file': "the Admin Portal's static stylesheet and script: no tenant, no session",
  'GET /assets/:file': "every browser page's static stylesheet and script: no tenant, no session",
  'GET /': 'the home page (HTML to browsers, the JSON 404 to others): static, reads nothing',
  'GET /saml/:connectionId/acs':
    'a static 405 page or JSON error: the connection id is not looked up (issue 15)',
  'GET /portal/start':
    'shows a Continue button for the link in the query; reads and writes nothing (issue 15)',
  'POST /portal/logout': "deletes the caller's own portal session row only, found by its cookie",
  'GET /portal/signin': 'the tenant admins’ sign-in form: static, reads nothing (issue 15)',
  'POST /portal/signin':
    'seals a new sign-in’s state in a cookie and redirects to /oauth/authorize, which resolves the tenant; reads no tenant row',
  'GET /healthz': 'liveness: answers from the process alone',
  'GET /readyz': 'readiness: a database ping, no tenant rows',
  'GET /metrics':
    'process and HTTP counters, no tenant rows; route labels are templates, not tenant ids (test/http/privacy-and-metrics.security.test.ts)',
  'GET /.well-known/openid-configuration': 'OIDC discovery document: platform-wide, static',
  'GET /.well-known/jwks.json': 'public signing keys: platform-wide',
  'OPTIONS /oauth/token': 'CORS preflight: headers only, no handler runs',
  'OPTIONS /oauth/userinfo': 'CORS preflight: headers only, no handler runs',
  'OPTIONS /oauth/revoke': 'CORS preflight: headers only, no handler runs',
  'GET /oidc/:connectionId/jwks':
    'public by design (the jwks_uri an IdP fetches for private_key_jwt): the public keys of that one connection only',
  'GET /saml/:connectionId/metadata':
    'public by design (SAML metadata, what the IdP admin imports): SP entity id, ACS URL and SP certificate only',
};

interface Layer {
  rawPath?: unknown;
  name: string;
  route?: { methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

/**
 * Every route of the app as `METHOD path-template`, found by walking the
 * Express 5 router stack (router 2.x): `app.router.stack`, each layer's
 * `rawPath` (the string it was mounted or declared with; Express 5 keeps it
 * beside the compiled matcher), recursing into mounted routers' `handle.stack`.
 * Mount paths are joined; a trailing slash is dropped. Plain middleware
 * (parsers, error handlers, 404s) is not a route.
 */
export function mountedRoutes(app: Express): string[] {
  const out = new Set<string>();
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      const paths: unknown[] = Array.isArray(layer.rawPath) ? layer.rawPath : [layer.rawPath ?? '/'];
      for (const raw of paths) {
        if (typeof raw !== 'string') throw new Error(`route mounted with a non-string path: ${String(raw)}`);
        const path = `${prefix}/${raw}`.replace(/\/+/g, '/');
        if (layer.route) {
          const template = path.length > 1 ? path.replace(/\/$/, '') : path;
          for (const method of Object.keys(layer.route.methods))
            if (method !== '_all') out.add(`${method.toUpperCase()} ${template}`);
        } else if (Array.isArray(layer.handle.stack)) {
          walk(layer.handle.stack, path);
        }
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return [...out].sort();
}
