import { createHash } from 'node:crypto';
import { Router } from 'express';
import { ASSET_PATHS, sendAsset } from '../http/assets.js';

/**
 * The portal's own script (copy buttons, reading a metadata file into the
 * form), served from /portal/assets so the CSP can forbid everything inline
 * (script-src 'self'). The stylesheet is every page's (http/assets.ts,
 * /assets/…); its former portal path still answers. The file name carries a
 * content hash, so a long cache never serves a stale copy.
 */

/** Copy buttons (data-copy="element id") and reading a chosen metadata file into the paste box (data-file-into). */
const JS = `document.addEventListener('click',function(e){var b=e.target.closest('[data-copy]');if(!b)return;
var el=document.getElementById(b.getAttribute('data-copy'));if(!el)return;
navigator.clipboard.writeText(el.textContent.trim()).then(function(){b.textContent='Copied';setTimeout(function(){b.textContent='Copy'},1500)})});
document.addEventListener('change',function(e){var i=e.target;if(!i.matches||!i.matches('[data-file-into]')||!i.files[0])return;
var t=document.getElementById(i.getAttribute('data-file-into'));i.files[0].text().then(function(x){t.value=x})});`;

const hashOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

export const PORTAL_ASSETS = {
  /** Every page's stylesheet (http/assets.ts). */
  stylesheet: ASSET_PATHS.stylesheet,
  script: `/portal/assets/portal-${hashOf(JS)}.js`,
};

/** Where the stylesheet was before every page shared it (any content hash): pages cached with it still get it. */
const FORMER_STYLESHEET = /^portal-[0-9a-f]{12}\.css$/;

export function portalAssetsRouter(): Router {
  const router = Router();
  router.get('/portal/assets/:file', (req, res) => {
    const file = String(req.params.file);
    if (FORMER_STYLESHEET.test(file)) return sendAsset(ASSET_PATHS.stylesheet, res);
    if (`/portal/assets/${file}` !== PORTAL_ASSETS.script)
      return void res.status(404).type('text/plain').send('Not found');
    res
      .set({
        'Content-Type': 'text/javascript; charset=utf-8',
        'Cache-Control': 'public, max-age=31536000, immutable',
      })
      .send(JS);
  });
  return router;
}
