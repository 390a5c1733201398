import type { Request, Response } from 'express';
import { escapeHtml, sendPage, supportReference } from '../../http/pages.js';
import { t } from '../../http/strings.js';

/**
 * What does a browser see when a sign-in cannot go back to the app (unknown
 * client, redirect_uri not registered, expired or foreign login)? A reason code
 * and a support reference, never a stack trace or a library message. Only the
 * bodies are here; words are http/strings.ts's (`t.authorize`), layout,
 * escaping and CSP http/pages.ts's.
 */

export function sendErrorPage(
  req: Request,
  res: Response,
  page: { status: number; reason: string; title: string; message: string },
): void {
  req.log.info({ reason: page.reason, request_id: req.requestId }, 'sign-in error page');
  sendPage(res, {
    status: page.status,
    title: page.title,
    body:
      `<h1>${escapeHtml(page.title)}</h1><p>${escapeHtml(page.message)}</p>` +
      supportReference(page.reason, req.requestId),
  });
}

/** A page that only tells; by default the signed-out page. */
export function sendInfoPage(
  res: Response,
  title: string = t.authorize.signedOut.title,
  message: string = t.authorize.signedOut.message,
): void {
  sendPage(res, {
    status: 200,
    title,
    body: `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`,
  });
}
