import { Router, type Request } from 'express';
import { z } from 'zod';
import {
  createConnection,
  getConnection,
  listConnections,
  updateConnection,
  type ConnectionDeps,
} from '../connections/connections.service.js';
import type { ConnectionView } from '../connections/connection-view.js';
import { BadRequestError } from '../errors.js';
import { nonEmpty, parseForm, portalTenant, sessionOf, uuidParam } from './forms.js';
import { html, type Html } from './html.js';
import { findGuide, IDP_GUIDES, type GuideValue, type IdpGuide } from './idp-guides.js';
import { copyable, csrfField, sendPortalPage } from './layout.js';
import { portalAuditContext } from './portal-sessions.js';
import type { PortalDeps } from './portal.router.js';

/**
 * The SSO wizard: pick the IdP → its guide with our values to paste → the
 * IdP's metadata (file, pasted, or URL fetched through the outbound guard)
 * → what we understood → activate. OIDC: issuer and client credentials. Every
 * change goes through connections.service.ts, as the admin API's do.
 */

const guideIds = IDP_GUIDES.map((g) => g.id) as [string, ...string[]];
const pickForm = z.object({ idp: z.enum(guideIds) });
const metadataForm = z.object({
  metadata_xml: z
    .string()
    .max(512 * 1024)
    .optional(),
  metadata_url: z.string().trim().max(2048).optional(),
});
const oidcForm = z.object({
  issuer: nonEmpty(2048),
  client_id: nonEmpty(512),
  client_secret: nonEmpty(4096),
});

export function connectionDeps(deps: PortalDeps): ConnectionDeps {
  return {
    db: deps.db,
    baseUrl: deps.config.baseUrl,
    masterKey: deps.masterKey,
    fetch: deps.fetch,
    xmlLimits: deps.config.sso.xmlLimits,
  };
}

const guideOf = (req: Request, fallback: 'saml' | 'oidc'): IdpGuide =>
  findGuide(typeof req.query.idp === 'string' ? req.query.idp : '') ?? findGuide(fallback)!;

export function ssoRoutes(deps: PortalDeps): Router {
  const router = Router();
  const cdeps = connectionDeps(deps);
  const base = '/portal/t/:tenantId/sso';

  router.get(base, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const session = sessionOf(res);
    const connections = await listConnections(cdeps, tenantId, { limit: 100, offset: 0 });
    sendPortalPage(res, {
      title: 'Single sign-on',
      session,
      tenantId,
      body: html`${connections.data.length ? connectionsTable(tenantId, connections.data) : ''}
        <h2>Connect an identity provider</h2>
        <p>Which identity provider does your organisation use?</p>
        <div class="grid">
          ${IDP_GUIDES.map((g) =>
            g.protocol === 'oidc'
              ? html`<form method="get" action="/portal/t/${tenantId}/sso/oidc">
                  <button type="submit">${g.name}</button>
                </form>`
              : html`<form method="post" action="/portal/t/${tenantId}/sso/connections">
                  ${csrfField(session)} <input type="hidden" name="idp" value="${g.id}" /><button
                    type="submit"
                  >
                    ${g.name}
                  </button>
                </form>`,
          )}
        </div>`,
    });
  });

  // A SAML draft first: its SP values (they name the connection) are what the IdP admin types in.
  router.post(`${base}/connections`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const { idp } = parseForm(pickForm, req);
    const guide = findGuide(idp)!;
    if (guide.protocol !== 'saml') return void res.redirect(303, `/portal/t/${tenantId}/sso/oidc`);
    const created = await createConnection(
      cdeps,
      tenantId,
      { type: 'saml', name: `${guide.name} SSO`, without_metadata: true },
      portalAuditContext(sessionOf(res), req),
    );
    res.redirect(303, `/portal/t/${tenantId}/sso/connections/${created.id}?idp=${guide.id}`);
  });

  router.get(`${base}/oidc`, (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const guide = findGuide('oidc')!;
    sendPortalPage(res, {
      title: guide.name,
      session: sessionOf(res),
      tenantId,
      body: html`${guideSteps(guide, null)}
        <form method="post" action="/portal/t/${tenantId}/sso/oidc" class="card">
          ${csrfField(sessionOf(res))} <label for="issuer">Issuer URL</label
          ><input type="url" id="issuer" name="issuer" required /> <label for="client_id">Client id</label
          ><input type="text" id="client_id" name="client_id" required />
          <label for="client_secret">Client secret</label
          ><input type="password" id="client_secret" name="client_secret" required />
          <button type="submit">Save connection</button>
        </form>`,
    });
  });

  router.post(`${base}/oidc`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const form = parseForm(oidcForm, req);
    const created = await createConnection(
      cdeps,
      tenantId,
      { type: 'oidc', name: 'OpenID Connect SSO', ...form },
      portalAuditContext(sessionOf(res), req),
    );
    res.redirect(303, `/portal/t/${tenantId}/sso/connections/${created.id}?idp=oidc`);
  });

  router.get(`${base}/connections/:connectionId`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const connection = await getConnection(cdeps, tenantId, uuidParam(req.params.connectionId, 'Connection'));
    const session = sessionOf(res);
    const guide = guideOf(req, connection.type);
    const path = `/portal/t/${tenantId}/sso/connections/${connection.id}`;
    const ready = connection.type === 'oidc' || !!connection.saml?.sso_url;
    sendPortalPage(res, {
      title: `${guide.name}: ${connection.name}`,
      session,
      tenantId,
      body: html`<p>Status: <strong id="connection-status">${connection.status}</strong></p>
        <h2>1. In ${guide.name}</h2>
        ${guideSteps(guide, connection)}
        ${connection.type === 'saml' ? metadataSection(path, guide, session.csrf) : ''}
        <h2>${connection.type === 'saml' ? '3' : '2'}. What we understood</h2>
        ${understood(connection)}
        ${
          ready && connection.status !== 'active'
            ? html`<form method="post" action="${path}/activate">
                ${csrfField(session)}<button type="submit">Activate</button>
              </form>`
            : ''
        }
        ${
          ready || connection.status === 'active' // issue 15: a test may run before activation
            ? html`<h2>Test sign-in</h2>
                <p>
                  Sign in through ${guide.name} in a new tab; the result shows what we received, or which step
                  failed and why.
                </p>
                <p>
                  <a id="test-sign-in" href="${path}/test" target="_blank" rel="noopener"
                    >Run a test sign-in</a
                  >
                </p>`
            : ''
        }`,
    });
  });

  router.post(`${base}/connections/:connectionId/metadata`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const connectionId = uuidParam(req.params.connectionId, 'Connection');
    const form = parseForm(metadataForm, req);
    const xml = form.metadata_xml?.trim() ? form.metadata_xml : undefined;
    const url = form.metadata_url ? form.metadata_url : undefined;
    if (xml === undefined && url === undefined)
      throw new BadRequestError('metadata: choose a file, paste the XML or give its URL');
    // Both given: the service refuses with the admin API's message ("give exactly one of …").
    const input = {
      ...(xml !== undefined && { metadata_xml: xml }),
      ...(url !== undefined && { metadata_url: url }),
    };
    await updateConnection(cdeps, tenantId, connectionId, input, portalAuditContext(sessionOf(res), req));
    res.redirect(303, `/portal/t/${tenantId}/sso/connections/${connectionId}${idpQuery(req)}`);
  });

  router.post(`${base}/connections/:connectionId/activate`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'sso');
    const connectionId = uuidParam(req.params.connectionId, 'Connection');
    await updateConnection(
      cdeps,
      tenantId,
      connectionId,
      { status: 'active' },
      portalAuditContext(sessionOf(res), req),
    );
    res.redirect(303, `/portal/t/${tenantId}/sso/connections/${connectionId}${idpQuery(req)}`);
  });

  return router;
}

function idpQuery(req: Request): string {
  const idp = typeof req.query.idp === 'string' ? findGuide(req.query.idp) : undefined;
  return idp ? `?idp=${idp.id}` : '';
}

function connectionsTable(tenantId: string, rows: ConnectionView[]): Html {
  return html`<h2>Your connections</h2>
    <table>
      <thead>
        <tr>
          <th>Name</th>
          <th>Type</th>
          <th>Status</th>
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (c) =>
            html`<tr>
              <td><a href="/portal/t/${tenantId}/sso/connections/${c.id}">${c.name}</a></td>
              <td>${c.type.toUpperCase()}</td>
              <td>${c.status}</td>
            </tr>`,
        )}
      </tbody>
    </table>`;
}

const VALUE_LABELS: Record<GuideValue, string> = {
  acs_url: 'ACS URL',
  entity_id: 'SP entity id',
  metadata_url: 'SP metadata URL',
  redirect_uri: 'Redirect URI',
};

function valuesOf(c: ConnectionView | null): Partial<Record<GuideValue, string>> {
  if (!c) return {};
  return {
    acs_url: c.sp?.acs_url,
    entity_id: c.sp?.entity_id,
    metadata_url: c.sp?.metadata_url,
    redirect_uri: c.oidc?.redirect_uri,
  };
}

/** The guide's steps, each `{value}` shown as that value with a copy button. */
function guideSteps(guide: IdpGuide, c: ConnectionView | null): Html {
  const values = valuesOf(c);
  let n = 0;
  const step = (text: string) =>
    text.split(/\{(acs_url|entity_id|metadata_url|redirect_uri)\}/).map((part, i) => {
      if (i % 2 === 0) return html`${part}`;
      const value = values[part as GuideValue];
      n += 1;
      return value
        ? copyable(`v-${part}-${n}`, value)
        : html`<em>(the ${VALUE_LABELS[part as GuideValue]}, shown once the connection is saved)</em>`;
    });
  return html`<div class="card">
    <ol class="steps">
      ${guide.steps.map((s) => html`<li>${step(s)}</li>`)}
    </ol>
    ${guide.nameIdFormat ? html`<p>NameID format: ${copyable('v-nameid', guide.nameIdFormat)}</p>` : ''}
    <table>
      <thead>
        <tr>
          <th>Attribute name</th>
          <th>Meaning</th>
        </tr>
      </thead>
      <tbody>
        ${guide.attributes.map(
          (a, i) =>
            html`<tr>
              <td>${copyable(`attr-${i}`, a.name)}</td>
              <td>${a.meaning}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function metadataSection(path: string, guide: IdpGuide, csrf: string): Html {
  return html`<h2>2. Give us ${guide.name}'s metadata</h2>
    <p class="muted">${guide.metadataHint}</p>
    <form method="post" action="${path}/metadata?idp=${guide.id}" class="card">
      <input type="hidden" name="_csrf" value="${csrf}" />
      <label for="metadata_file">Metadata file</label>
      <input
        type="file"
        id="metadata_file"
        accept=".xml,application/xml,text/xml"
        data-file-into="metadata_xml"
      />
      <label for="metadata_xml">…or paste the metadata XML</label>
      <textarea id="metadata_xml" name="metadata_xml" spellcheck="false"></textarea>
      <label for="metadata_url">…or its URL</label>
      <input type="url" id="metadata_url" name="metadata_url" placeholder="https://" />
      <button type="submit">Upload metadata</button>
    </form>`;
}

function understood(c: ConnectionView): Html {
  if (c.type === 'oidc') {
    return html`<table class="card">
      <tbody>
        <tr>
          <th>Issuer</th>
          <td>${c.oidc?.issuer ?? ''}</td>
        </tr>
        <tr>
          <th>Client id</th>
          <td>${c.oidc?.client_id ?? ''}</td>
        </tr>
      </tbody>
    </table>`;
  }
  const saml = c.saml;
  if (!saml?.sso_url)
    return html`<p class="muted" id="understood">Nothing yet: upload the metadata above.</p>`;
  return html`<table id="understood">
    <tbody>
      <tr>
        <th>IdP entity id</th>
        <td class="value">${saml.idp_entity_id ?? ''}</td>
      </tr>
      <tr>
        <th>Sign-in URL</th>
        <td class="value">${saml.sso_url}</td>
      </tr>
      ${saml.certificates.map(
        (cert, i) =>
          html`<tr>
            <th>Certificate ${i + 1}</th>
            <td>
              <span class="value">SHA-256 ${cert.fingerprint_sha256}</span><br />
              valid until ${cert.not_after}
              ${cert.expired ? html`<strong class="bad">expired</strong>` : html`<span class="ok">valid</span>`}
            </td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}
