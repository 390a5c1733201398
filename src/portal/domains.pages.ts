import { Router } from 'express';
import { z } from 'zod';
import { DomainError } from '../errors.js';
import { addDomain, listDomains, verifyDomain } from '../tenants/domains.service.js';
import { nonEmpty, parseForm, portalTenant, sessionOf, uuidParam } from './forms.js';
import { html, type Html } from './html.js';
import { copyable, csrfField, sendPortalPage } from './layout.js';
import { portalAuditContext } from './portal-sessions.js';
import type { PortalDeps } from './portal.router.js';

/**
 * Domains: add one, see the exact TXT record, "check now", and why a check
 * failed in words (tenants/dns-verifier.ts tells no record, a wrong value and
 * an unreachable DNS apart). Only DNS verification: the operator's manual
 * verification stays in the admin API, where it needs a reason.
 */

const addForm = z.object({ domain: nonEmpty(253) });

/** The verifier's refusal codes, said plainly. */
const WHY: Partial<Record<string, string>> = {
  dns_record_not_found:
    'We found no TXT record with that name yet. DNS changes can take a few minutes (sometimes hours) to appear; check the name and try again.',
  dns_record_mismatch:
    'There is a TXT record with that name, but not with our value. Copy the value again: the whole text, without quotes added by your DNS provider.',
  dns_lookup_failed: 'The DNS lookup for that name failed. Check that the domain exists and its DNS answers.',
  dns_unavailable:
    'We could not reach DNS just now. This is on our side or your DNS provider’s; try again in a minute.',
};

export function domainRoutes(deps: PortalDeps): Router {
  const router = Router();
  const base = '/portal/t/:tenantId/domains';

  const page = async (
    res: Parameters<typeof sessionOf>[0],
    tenantId: string,
    extra: { status?: number; notice?: Html } = {},
  ) => {
    const session = sessionOf(res);
    const domains = await listDomains(deps.db, tenantId, { limit: 100, offset: 0 });
    sendPortalPage(res, {
      status: extra.status,
      title: 'Domains',
      session,
      tenantId,
      body: html`${extra.notice ?? ''}
        <p>People whose email is at a verified domain sign in through your identity provider.</p>
        ${domains.data.map(
          (d) =>
            html`<div class="card">
              <h2>
                ${d.domain}
                ${d.status === 'verified' ? html`<span class="ok">verified</span>` : html`<span class="muted">pending</span>`}
              </h2>
              ${
                d.status === 'verified'
                  ? ''
                  : html`<p>Publish this TXT record at your DNS provider:</p>
                      <table>
                        <tbody>
                          <tr>
                            <th>Type</th>
                            <td>TXT</td>
                          </tr>
                          <tr>
                            <th>Name</th>
                            <td>${copyable(`name-${d.id}`, d.verification.name)}</td>
                          </tr>
                          <tr>
                            <th>Value</th>
                            <td>${copyable(`value-${d.id}`, d.verification.value)}</td>
                          </tr>
                        </tbody>
                      </table>
                      <form method="post" action="/portal/t/${tenantId}/domains/${d.id}/verify">
                        ${csrfField(session)}<button type="submit">Check now</button>
                      </form>`
              }
            </div>`,
        )}
        <form method="post" action="/portal/t/${tenantId}/domains" class="card">
          ${csrfField(session)} <label for="domain">Add a domain</label
          ><input type="text" id="domain" name="domain" placeholder="example.com" required />
          <button type="submit">Add domain</button>
        </form>`,
    });
  };

  router.get(base, async (req, res) => page(res, portalTenant(req, res, 'domain_verification')));

  router.post(base, async (req, res) => {
    const tenantId = portalTenant(req, res, 'domain_verification');
    const { domain } = parseForm(addForm, req);
    await addDomain(deps.db, tenantId, { domain }, portalAuditContext(sessionOf(res), req));
    res.redirect(303, `/portal/t/${tenantId}/domains`);
  });

  router.post(`${base}/:domainId/verify`, async (req, res) => {
    const tenantId = portalTenant(req, res, 'domain_verification');
    const domainId = uuidParam(req.params.domainId, 'Domain');
    try {
      const d = await verifyDomain(
        deps.db,
        deps.dns,
        tenantId,
        domainId,
        { method: 'dns' },
        portalAuditContext(sessionOf(res), req),
      );
      await page(res, tenantId, {
        notice: html`<div class="card notice"><p>${d.domain} is verified.</p></div>`,
      });
    } catch (error) {
      const why = error instanceof DomainError ? WHY[error.code] : undefined;
      if (!why || !(error instanceof DomainError)) throw error;
      await page(res, tenantId, {
        status: error.code === 'dns_unavailable' ? 503 : 400,
        notice: html`<div class="card error" id="verify-failure">
          <p><strong>Not verified yet.</strong> ${why}</p>
          <p class="muted">${error.message}</p>
        </div>`,
      });
    }
  });

  return router;
}
