import type { Request, Response } from 'express';

/**
 * The page a browser sees when a sign-in cannot go back to the app (unknown
 * client, redirect_uri not registered, expired or foreign login): a reason code
 * and a support reference, never a stack trace or a library message.
 */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function sendErrorPage(
  req: Request,
  res: Response,
  page: { status: number; reason: string; title: string; message: string },
): void {
  req.log.info({ reason: page.reason, request_id: req.requestId }, 'sign-in error page');
  res
    .status(page.status)
    .type('html')
    .set('Cache-Control', 'no-store')
    .send(
      layout(
        page.title,
        `<p>${escapeHtml(page.message)}</p>
<p class="ref">Reason: <code>${escapeHtml(page.reason)}</code><br>Support reference: <code>${escapeHtml(req.requestId)}</code></p>`,
      ),
    );
}

export function sendInfoPage(res: Response, title: string, message: string): void {
  res
    .status(200)
    .type('html')
    .set('Cache-Control', 'no-store')
    .send(layout(title, `<p>${escapeHtml(message)}</p>`));
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Gatehouse</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}.ref{color:#666;font-size:.9rem}</style>
</head><body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>`;
}
