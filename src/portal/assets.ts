import { createHash } from 'node:crypto';
import { Router } from 'express';

/**
 * The portal's only stylesheet and script, served from /portal/assets so the
 * CSP can forbid everything inline (style-src/script-src 'self'). Kept as
 * strings here so the build (tsc) ships them with no copy step. The file name
 * carries a content hash, so a long cache never serves a stale copy.
 */

const CSS = `:root{--fg:#1f2933;--muted:#52606d;--line:#d9e2ec;--accent:#1f5fbf;--ok:#1e7b34;--bad:#b42318;--bg:#f5f7fa}
*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0;color:var(--fg);background:var(--bg);line-height:1.45}
header{background:#fff;border-bottom:1px solid var(--line);padding:.75rem 1.5rem;display:flex;gap:1rem;align-items:center;justify-content:space-between}
header .brand{font-weight:600}header nav a{margin-right:1rem}header form{margin:0}
main{max-width:56rem;margin:1.5rem auto;padding:0 1.5rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin-top:1.75rem}
a{color:var(--accent)}a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #9ec5fe;outline-offset:1px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=url],input[type=password],select,textarea{width:100%;font:inherit;padding:.5rem;border:1px solid #9aa5b1;border-radius:4px}
textarea{min-height:10rem;font-family:ui-monospace,monospace;font-size:.85rem}
button{font:inherit;padding:.5rem 1rem;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer;margin-top:.75rem}
button.secondary{background:#fff;color:var(--accent)}button.copy{margin:0 0 0 .5rem;padding:.15rem .5rem;font-size:.8rem}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
code,.value{font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-all}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:.75rem}
.grid form{margin:0}.grid button{width:100%;margin:0;text-align:left;background:#fff;color:var(--fg);border-color:var(--line);padding:.9rem}
.ok{color:var(--ok)}.bad{color:var(--bad)}.muted{color:var(--muted)}.notice{border-left:4px solid var(--accent)}.error{border-left:4px solid var(--bad)}
.secret{background:#fffbea;border:1px solid #f0b429;padding:.5rem;display:flex;align-items:center;justify-content:space-between}
ol.steps li{margin:.35rem 0}`;

/** Copy buttons (data-copy="element id") and reading a chosen metadata file into the paste box (data-file-into). */
const JS = `document.addEventListener('click',function(e){var b=e.target.closest('[data-copy]');if(!b)return;
var el=document.getElementById(b.getAttribute('data-copy'));if(!el)return;
navigator.clipboard.writeText(el.textContent.trim()).then(function(){b.textContent='Copied';setTimeout(function(){b.textContent='Copy'},1500)})});
document.addEventListener('change',function(e){var i=e.target;if(!i.matches||!i.matches('[data-file-into]')||!i.files[0])return;
var t=document.getElementById(i.getAttribute('data-file-into'));i.files[0].text().then(function(x){t.value=x})});`;

const hashOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

export const PORTAL_ASSETS = {
  stylesheet: `/portal/assets/portal-${hashOf(CSS)}.css`,
  script: `/portal/assets/portal-${hashOf(JS)}.js`,
};

const FILES = new Map([
  [PORTAL_ASSETS.stylesheet, { type: 'text/css; charset=utf-8', body: CSS }],
  [PORTAL_ASSETS.script, { type: 'text/javascript; charset=utf-8', body: JS }],
]);

export function portalAssetsRouter(): Router {
  const router = Router();
  router.get('/portal/assets/:file', (req, res) => {
    const file = FILES.get(`/portal/assets/${String(req.params.file)}`);
    if (!file) return void res.status(404).type('text/plain').send('Not found');
    res
      .set({ 'Content-Type': file.type, 'Cache-Control': 'public, max-age=31536000, immutable' })
      .send(file.body);
  });
  return router;
}
