import { Router, type Request } from 'express';
import type { Config } from '../config/config.js';
import { assetsRouter } from './assets.js';
import { brandFromConfig, escapeHtml, sendPage, usePageBrand } from './pages.js';
import { t } from './strings.js';

/**
 * What does a browser get outside any flow? The brand every page shows (set
 * once per request for sendPage), the shared stylesheet and script, and the
 * home page `/`: what this service is, the way to the admin portal, the OIDC
 * discovery URL. Clients that do not ask for HTML get `/`'s JSON 404 as before.
 */

/** A browser navigation: HTML preferred over JSON (RFC 9110 §12.5.1); no Accept or `*\/*` prefers JSON. */
export function prefersHtml(req: Request): boolean {
  return req.accepts(['application/json', 'text/html']) === 'text/html';
}

export function siteRouter(config: Pick<Config, 'baseUrl' | 'pages'>): Router {
  const router = Router();
  router.use(usePageBrand(brandFromConfig(config)));
  router.use(assetsRouter());
  router.get('/', (req, res, next) => {
    res.vary('Accept');
    if (!prefersHtml(req)) return next();
    const appName = config.pages.appName;
    const discovery = `${config.baseUrl}/.well-known/openid-configuration`;
    const portal = `${new URL(config.baseUrl).pathname.replace(/\/+$/, '')}/portal/signin`;
    sendPage(res, {
      status: 200,
      title: t.home.title,
      body:
        `<h1>${escapeHtml(t.home.heading(appName))}</h1><p>${escapeHtml(t.home.intro(appName))}</p>` +
        `<h2>${escapeHtml(t.home.adminsHeading)}</h2>` +
        `<p><a href="${escapeHtml(portal)}">${escapeHtml(t.home.portalLink)}</a></p>` +
        `<h2>${escapeHtml(t.home.developersHeading)}</h2>` +
        `<p>${escapeHtml(t.home.discoveryLabel)} <a href="${escapeHtml(discovery)}"><code>${escapeHtml(discovery)}</code></a></p>`,
    });
  });
  return router;
}
