import { createHash } from 'node:crypto';
import { Router, type Response } from 'express';

/**
 * Which files style and script every browser page? One stylesheet and one
 * script, served from /assets so the Content-Security-Policy can forbid
 * everything inline (style-src/script-src 'self'). Kept as strings here so the
 * build (tsc) ships them with no copy step; the file name carries a content
 * hash, so a long cache never serves a stale copy.
 */

/*
 * Colours against white (#fff) and the page background (#f5f7fa), WCAG 1.4.3
 * needs ≥ 4.5:1: text #1f2933 ~14:1, muted #52606d ~6.3:1, link #1f5fbf ~6:1,
 * ok #1e7b34 ~5.2:1, bad #b42318 ~6.1:1. Focus (WCAG 2.4.7) is a 3px outline in
 * the link colour, ≥ 3:1 against both backgrounds.
 */
export const STYLESHEET = `:root{--fg:#1f2933;--muted:#52606d;--line:#d9e2ec;--accent:#1f5fbf;--ok:#1e7b34;--bad:#b42318;--bg:#f5f7fa}
*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0;color:var(--fg);background:var(--bg);line-height:1.45}
header{background:#fff;border-bottom:1px solid var(--line);padding:.75rem 1.5rem;display:flex;gap:1rem;align-items:center;justify-content:space-between;flex-wrap:wrap}
header .brand{font-weight:600;display:flex;align-items:center;gap:.5rem}header .brand a{color:var(--fg);text-decoration:none;display:inline-flex;align-items:center;gap:.5rem}
header .brand img{max-height:2rem;max-width:10rem}header nav a{margin-right:1rem}header form{margin:0}
main{max-width:56rem;margin:1.5rem auto;padding:0 1.5rem}main.narrow{max-width:34rem;margin-top:3rem}
main.narrow>section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1rem 1.5rem 1.25rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin-top:1.75rem}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input[type=text],input[type=email],input[type=url],input[type=password],select,textarea{width:100%;font:inherit;padding:.5rem;border:1px solid #7b8794;border-radius:4px;background:#fff;color:var(--fg)}
input[aria-invalid=true]{border-color:var(--bad)}
textarea{min-height:10rem;font-family:ui-monospace,monospace;font-size:.85rem}
button{font:inherit;padding:.5rem 1rem;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer;margin-top:.75rem}
button.secondary{background:#fff;color:var(--accent)}button.copy{margin:0 0 0 .5rem;padding:.15rem .5rem;font-size:.8rem}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
code,.value{font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-all}
ul.choices{list-style:none;padding:0}ul.choices li{margin:.5rem 0}
ul.choices a{display:block;padding:.6rem .9rem;border:1px solid var(--line);border-radius:4px;background:#fff;text-decoration:none;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:.75rem}
.grid form{margin:0}.grid button{width:100%;margin:0;text-align:left;background:#fff;color:var(--fg);border-color:var(--line);padding:.9rem}
.ok{color:var(--ok)}.bad{color:var(--bad)}.muted,.ref{color:var(--muted)}.ref{font-size:.85rem}
.notice{border-left:4px solid var(--accent)}.error{border-left:4px solid var(--bad)}
.field-error{color:var(--bad);margin:.25rem 0}
.secret{background:#fffbea;border:1px solid #f0b429;padding:.5rem;display:flex;align-items:center;justify-content:space-between}
ol.steps li{margin:.35rem 0}`;

/**
 * The SAML HTTP-POST binding (bindings §3.5): submit the form marked
 * data-auto-submit without a click. The page's button does the same without
 * script.
 */
export const SCRIPT = `document.addEventListener('DOMContentLoaded',function(){var f=document.querySelector('form[data-auto-submit]');if(f)f.submit()});`;

const hashOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

/** Paths under the base URL's path (Gatehouse may be served under a path). */
export const ASSET_PATHS = {
  stylesheet: `/assets/gatehouse-${hashOf(STYLESHEET)}.css`,
  script: `/assets/gatehouse-${hashOf(SCRIPT)}.js`,
};

const FILES = new Map([
  [ASSET_PATHS.stylesheet, { type: 'text/css; charset=utf-8', body: STYLESHEET }],
  [ASSET_PATHS.script, { type: 'text/javascript; charset=utf-8', body: SCRIPT }],
]);

/** Sends the file, or 404; `path` is the full request path. */
export function sendAsset(path: string, res: Response): void {
  const file = FILES.get(path);
  if (!file) return void res.status(404).type('text/plain').send('Not found');
  res
    .set({ 'Content-Type': file.type, 'Cache-Control': 'public, max-age=31536000, immutable' })
    .send(file.body);
}

export function assetsRouter(): Router {
  const router = Router();
  router.get('/assets/:file', (req, res) => sendAsset(`/assets/${String(req.params.file)}`, res));
  return router;
}
