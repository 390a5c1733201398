import { Router } from 'express';
import { listGroups } from '../directory/groups.service.js';
import { listUsers } from '../directory/users.service.js';
import { listScimRequests } from '../scim/scim-request-log.js';
import { createScimToken, scimBaseUrl } from '../scim/scim-tokens.service.js';
import { portalTenant, sessionOf } from './forms.js';
import { html } from './html.js';
import { copyable, csrfField, sendPortalPage } from './layout.js';
import { portalAuditContext } from './portal-sessions.js';
import type { PortalDeps } from './portal.router.js';

/**
 * Directory sync: the SCIM base URL, a token (shown once), what to set in
 * Okta and Entra ID, and what has arrived since: people and groups, the last
 * SCIM request, recent refused ones (scim/scim-request-log.ts).
 */

export function dsyncRoutes(deps: PortalDeps): Router {
  const router = Router();
  const base = '/portal/t/:tenantId/dsync';

  router.get(base, async (req, res) => {
    const tenantId = portalTenant(req, res, 'dsync');
    const session = sessionOf(res);
    const directory = await deps.db.withTenant(tenantId, async (em) => {
      const users = await listUsers(em, {
        where: 'true',
        params: [],
        orderBy: 'u.user_name',
        offset: 0,
        limit: 50,
      });
      const groups = await listGroups(em, {
        source: 'scim',
        where: 'true',
        params: [],
        orderBy: 'g.display_name',
        offset: 0,
        limit: 50,
      });
      return { users, groups };
    });
    const last = await listScimRequests(deps.db, tenantId, { limit: 1 });
    const failed = [
      ...(await listScimRequests(deps.db, tenantId, { limit: 10, status: '4xx' })).data,
      ...(await listScimRequests(deps.db, tenantId, { limit: 10, status: '5xx' })).data,
    ].sort((a, b) => b.created_at.localeCompare(a.created_at));
    sendPortalPage(res, {
      title: 'Directory sync (SCIM)',
      session,
      tenantId,
      body: html`<div class="card">
          <p>SCIM base URL: ${copyable('scim-base-url', scimBaseUrl(deps.config.baseUrl, tenantId))}</p>
          <form method="post" action="/portal/t/${tenantId}/dsync/tokens">
            ${csrfField(session)}<button type="submit">Create a SCIM token</button>
          </form>
        </div>
        <h2>In Okta</h2>
        <ol class="steps">
          <li>Open your Gatehouse SAML app → General → App Settings → Edit, and set Provisioning to SCIM.</li>
          <li>
            On the Provisioning tab: SCIM connector base URL = the URL above; Unique identifier field =
            userName; Supported actions: Push New Users, Push Profile Updates, Push Groups; Authentication
            Mode: HTTP Header, with the token as Bearer.
          </li>
          <li>
            Test Connector Configuration, then under To App enable Create Users, Update User Attributes and
            Deactivate Users.
          </li>
        </ol>
        <h2>In Microsoft Entra ID</h2>
        <ol class="steps">
          <li>Enterprise applications → your app → Provisioning → Automatic.</li>
          <li>
            Tenant URL = the URL above <strong>with <code>?aadOptscim062020</code> appended</strong> (Entra
            then sends standard PATCH operations and booleans); Secret Token = the token.
          </li>
          <li>
            Test Connection, keep the default attribute mappings (userName ← userPrincipalName, active ←
            Switch([IsSoftDeleted]…)), set Scope and turn Provisioning Status On.
          </li>
        </ol>
        <h2>What has arrived</h2>
        <p>
          <strong id="user-count">${directory.users.total}</strong> people,
          <strong id="group-count">${directory.groups.total}</strong> groups. Last SCIM request:
          <span id="last-scim"
            >${last.data[0] ? `${last.data[0].created_at} (${last.data[0].method} ${last.data[0].path} → ${last.data[0].status})` : 'none yet'}</span
          >
        </p>
        <table id="directory-users">
          <thead>
            <tr>
              <th>userName</th>
              <th>Name</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            ${directory.users.users.map(
              (u) =>
                html`<tr>
                  <td>${u.userName}</td>
                  <td>${[u.givenName, u.familyName].filter(Boolean).join(' ')}</td>
                  <td>${u.status}</td>
                </tr>`,
            )}
          </tbody>
        </table>
        ${directory.groups.groups.length ? html`<p>Groups: ${directory.groups.groups.map((g) => g.displayName).join(', ')}</p>` : ''}
        <h2>Recent failed SCIM requests</h2>
        ${
          failed.length
            ? html`<table>
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Request</th>
                    <th>Status</th>
                    <th>scimType</th>
                  </tr>
                </thead>
                <tbody>
                  ${failed.slice(0, 10).map(
                    (r) =>
                      html`<tr>
                        <td>${r.created_at}</td>
                        <td>${r.method} ${r.path}</td>
                        <td>${r.status}</td>
                        <td>${r.scim_type ?? ''}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
            : html`<p class="muted">None.</p>`
        }`,
    });
  });

  router.post(`${base}/tokens`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'dsync');
    const created = await createScimToken(
      deps.db,
      deps.config.baseUrl,
      tenantId,
      { description: 'Admin Portal' },
      portalAuditContext(sessionOf(res), req),
    );
    sendPortalPage(res, {
      status: 201,
      title: 'SCIM token created',
      session: sessionOf(res),
      tenantId,
      body: html`<div class="card notice">
          <p>Copy the token into your IdP now: it is shown only once.</p>
          <p class="secret">${copyable('scim-token', created.token)}</p>
          <p>SCIM base URL: ${copyable('scim-url', created.scim_base_url)}</p>
        </div>
        <p><a href="/portal/t/${tenantId}/dsync">Back to directory sync</a></p>`,
    });
  });

  return router;
}
