import { Router } from 'express';
import { z } from 'zod';
import { expiryStage } from '../connections/certificate-expiry.js';
import type { CertificateView, ConnectionView } from '../connections/connection-view.js';
import { getConnection, listConnections } from '../connections/connections.service.js';
import { refreshMetadataNow } from '../connections/metadata-refresh-sweep.js';
import { renewCertificatesFromMetadata } from '../connections/metadata-renewal.js';
import type { ChangeSummary } from '../connections/metadata-refresh-sweep.js';
import { BadRequestError, NotFoundError } from '../errors.js';
import { parseForm, portalTenant, sessionOf, uuidParam } from './forms.js';
import { html, type Html } from './html.js';
import { csrfField, sendPortalPage } from './layout.js';
import { portalAuditContext } from './portal-sessions.js';
import { connectionDeps } from './sso.pages.js';
import type { PortalDeps } from './portal.router.js';

/**
 * Certificate renewal (intent `certificate_renewal`): which IdP signing
 * certificates expire within 30 days or have expired
 * (connections/certificate-expiry.ts), and the walk through renewing one:
 * the IdP's new metadata uploaded, pasted or re-fetched from its URL, applied
 * by the metadata refresh's rules (the new certificate trusted at once, the
 * old one kept through the overlap: connections/metadata-renewal.ts), then a
 * test sign-in. Nothing else of a connection can change from here: no sign-in
 * URL, no status, no deletion.
 */

const DAY_MS = 86_400_000;
const metadataForm = z.object({ metadata_xml: z.string().max(512 * 1024) });

const daysLeft = (notAfter: string, now: Date) => Math.floor((Date.parse(notAfter) - now.getTime()) / DAY_MS);

export function certificateRoutes(deps: PortalDeps): Router {
  const router = Router();
  const cdeps = connectionDeps(deps);
  const base = '/portal/t/:tenantId/certificates';
  const overlapMs = deps.config.metadataRefresh.certOverlapSeconds * 1000;
  const refreshOptions = { db: deps.db, fetch: deps.fetch, xmlLimits: deps.config.sso.xmlLimits, overlapMs };

  /** A SAML connection of the tenant, or 404 as for one that does not exist. */
  const samlConnection = async (tenantId: string, raw: unknown) => {
    const connection = await getConnection(cdeps, tenantId, uuidParam(raw, 'Connection'));
    if (connection.type !== 'saml' || !connection.saml) throw new NotFoundError('Connection');
    return connection;
  };

  router.get(base, async (req, res) => {
    const tenantId = portalTenant(req, res, 'certificate_renewal');
    const connections = await listConnections(cdeps, tenantId, { limit: 100, offset: 0 });
    const saml = connections.data.filter((c) => c.type === 'saml' && c.saml);
    const now = new Date();
    sendPortalPage(res, {
      title: 'Certificates',
      session: sessionOf(res),
      tenantId,
      body: html`<p>
          Your identity provider signs every sign-in with a certificate. Before it expires, give us the new
          one: both are accepted while your identity provider switches over.
        </p>
        ${
          saml.length === 0
            ? html`<p class="muted">No SAML connections.</p>`
            : html`<table id="certificates">
                <thead>
                  <tr>
                    <th>Connection</th>
                    <th>Certificate (SHA-256)</th>
                    <th>Not after</th>
                    <th>Days left</th>
                    <th></th>
                  </tr>
                </thead>
                <tbody>
                  ${saml.flatMap((c) =>
                    (c.saml?.certificates ?? []).map(
                      (cert) =>
                        html`<tr class="certificate" data-fingerprint="${cert.fingerprint_sha256}">
                          <td>${c.name}</td>
                          <td class="value">${cert.fingerprint_sha256}</td>
                          <td>${cert.not_after}</td>
                          <td>${daysLeft(cert.not_after, now)} ${flag(cert, now)}</td>
                          <td><a href="/portal/t/${tenantId}/certificates/${c.id}">Renew</a></td>
                        </tr>`,
                    ),
                  )}
                </tbody>
              </table>`
        }`,
    });
  });

  const renewalPage = (
    res: Parameters<typeof sessionOf>[0],
    tenantId: string,
    connection: ConnectionView,
    notice: Html | '' = '',
  ) => {
    const session = sessionOf(res);
    const path = `/portal/t/${tenantId}/certificates/${connection.id}`;
    const saml = connection.saml!;
    const now = new Date();
    sendPortalPage(res, {
      title: `Renew the certificate of ${connection.name}`,
      session,
      tenantId,
      body: html`${notice}
        <h2>Certificates we accept now</h2>
        ${certificateTable(saml.certificates, now)}
        <h2>1. Give us your identity provider's new metadata</h2>
        <p>
          Create or activate the new signing certificate in your identity provider, then download its SAML
          metadata (it lists the new certificate, and usually the old one too).
        </p>
        <form method="post" action="${path}/metadata" class="card">
          ${csrfField(session)}
          <label for="metadata_file">Metadata file</label>
          <input
            type="file"
            id="metadata_file"
            accept=".xml,application/xml,text/xml"
            data-file-into="metadata_xml"
          />
          <label for="metadata_xml">…or paste the metadata XML</label>
          <textarea id="metadata_xml" name="metadata_xml" spellcheck="false"></textarea>
          <button type="submit">Upload metadata</button>
        </form>
        ${
          saml.metadata.url
            ? html`<form method="post" action="${path}/refresh" class="card">
                ${csrfField(session)}
                <p>
                  We also fetch it from <span class="value">${saml.metadata.url}</span> regularly (last:
                  ${saml.metadata.refreshed_at ?? 'never'}).
                </p>
                <button type="submit" class="secondary" id="refresh-now">Fetch it now</button>
              </form>`
            : ''
        }
        <h2>2. Prove the new certificate works</h2>
        <p>Once your identity provider signs with the new certificate, sign in through it in a new tab.</p>
        <p>
          <a
            id="test-sign-in"
            href="/portal/t/${tenantId}/sso/connections/${connection.id}/test"
            target="_blank"
            rel="noopener"
            >Run a test sign-in</a
          >
        </p>
        <p><a href="/portal/t/${tenantId}/certificates">Back to certificates</a></p>`,
    });
  };

  router.get(`${base}/:connectionId`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'certificate_renewal');
    renewalPage(res, tenantId, await samlConnection(tenantId, req.params.connectionId));
  });

  router.post(`${base}/:connectionId/metadata`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'certificate_renewal');
    const connection = await samlConnection(tenantId, req.params.connectionId);
    const { metadata_xml } = parseForm(metadataForm, req);
    if (!metadata_xml.trim()) throw new BadRequestError('metadata: choose a file or paste the XML');
    const result = await renewCertificatesFromMetadata(
      refreshOptions,
      tenantId,
      connection.id,
      metadata_xml,
      portalAuditContext(sessionOf(res), req),
    );
    const after = await samlConnection(tenantId, connection.id);
    renewalPage(
      res,
      tenantId,
      after,
      understood(result.changes, result.sso_url_ignored, after.saml!.certificates, overlapMs),
    );
  });

  router.post(`${base}/:connectionId/refresh`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'certificate_renewal');
    const connection = await samlConnection(tenantId, req.params.connectionId);
    const result = await refreshMetadataNow(
      refreshOptions,
      tenantId,
      connection.id,
      portalAuditContext(sessionOf(res), req),
    );
    const after = await samlConnection(tenantId, connection.id);
    const notice =
      result.outcome === 'failed'
        ? html`<div class="card error" id="renewal-result">
            <p>We could not use the metadata: ${result.error.message}</p>
            <p class="muted">Your connection keeps the certificates it had.</p>
          </div>`
        : understood(result.changes, null, after.saml!.certificates, overlapMs);
    renewalPage(res, tenantId, after, notice);
  });

  return router;
}

function flag(cert: Pick<CertificateView, 'not_after'>, now: Date): Html | '' {
  const stage = expiryStage({ notAfter: cert.not_after }, now);
  if (stage === 'expired') return html`<strong class="bad expiry-flag">expired</strong>`;
  if (stage) return html`<strong class="bad expiry-flag">expires soon</strong>`;
  return '';
}

function certificateTable(certs: readonly CertificateView[], now: Date): Html {
  return html`<table id="current-certificates">
    <thead>
      <tr>
        <th>Certificate (SHA-256)</th>
        <th>Not after</th>
        <th>Days left</th>
        <th>State</th>
      </tr>
    </thead>
    <tbody>
      ${certs.map(
        (c) =>
          html`<tr data-fingerprint="${c.fingerprint_sha256}">
            <td class="value">${c.fingerprint_sha256}</td>
            <td>${c.not_after}</td>
            <td>${daysLeft(c.not_after, now)} ${flag(c, now)}</td>
            <td>
              ${c.removed_at ? html`no longer in the metadata since ${c.removed_at}; still accepted during the overlap` : 'accepted'}
            </td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** What the new metadata changed, in words. */
function understood(
  changes: ChangeSummary,
  ssoUrlIgnored: string | null,
  certs: readonly CertificateView[],
  overlapMs: number,
): Html {
  const short = (f: string) => `${f.slice(0, 23)}…`;
  const overlapDays = Math.round(overlapMs / DAY_MS);
  const nothing = changes.added.length + changes.removed.length + changes.restored.length === 0;
  return html`<div class="card notice" id="renewal-result">
    ${nothing ? html`<p>Nothing changed: we already accept every certificate this metadata lists.</p>` : ''}
    ${changes.added.map((f) => html`<p class="ok added">New certificate added: <span class="value">${short(f)}</span></p>`)}
    ${changes.restored.map((f) => html`<p>Listed again, accepted as before: <span class="value">${short(f)}</span></p>`)}
    ${changes.removed.map(
      (f) =>
        html`<p>
          No longer listed: <span class="value">${short(f)}</span>. It stays accepted for ${overlapDays} days,
          so sign-ins keep working while your identity provider switches.
        </p>`,
    )}
    ${changes.added.length && certs.length > 1 ? html`<p>Both the old and the new certificate are accepted now.</p>` : ''}
    ${
      ssoUrlIgnored
        ? html`<p class="muted">
            The metadata names another sign-in URL (${ssoUrlIgnored}); renewal changes certificates only. Ask
            for a single sign-on link to change it.
          </p>`
        : ''
    }
  </div>`;
}
