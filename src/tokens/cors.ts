import type { RequestHandler } from 'express';

/**
 * CORS for the endpoints a browser-based app calls directly (discovery, JWKS,
 * token, userinfo, revocation). None of them reads cookies, so any origin may
 * call them without credentials.
 */
export const allowAnyOrigin: RequestHandler = (req, res, next) => {
  res.set('Access-Control-Allow-Origin', '*');
  if (req.method === 'OPTIONS') {
    res
      .set({
        'Access-Control-Allow-Methods': 'GET, POST',
        'Access-Control-Allow-Headers': 'Authorization, Content-Type',
        'Access-Control-Max-Age': '600',
      })
      .status(204)
      .end();
    return;
  }
  next();
};
