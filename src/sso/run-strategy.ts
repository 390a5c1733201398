import type { Request, Response } from 'express';
import type { Passport } from 'passport';

type Authenticator = InstanceType<typeof Passport>;

/** How a passport strategy ended one request. */
export type StrategyOutcome =
  | { kind: 'success'; user: unknown }
  | { kind: 'fail'; info: unknown }
  | { kind: 'error'; error: unknown }
  /** The strategy answered the request itself (a redirect to the IdP). */
  | { kind: 'responded' };

/**
 * Runs a registered strategy with `session: false` and a callback, as an
 * awaitable. Strategies are registered by name on a per-app Authenticator:
 * passport then derives a fresh object per request (Object.create), so the
 * action functions of concurrent requests never overwrite each other.
 */
export function runStrategy(
  authenticator: Authenticator,
  name: string,
  req: Request,
  res: Response,
): Promise<StrategyOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: StrategyOutcome) => {
      if (settled) return;
      settled = true;
      res.off('finish', onFinish);
      resolve(outcome);
    };
    const onFinish = () => settle({ kind: 'responded' });
    res.once('finish', onFinish);
    const middleware = authenticator.authenticate(
      name,
      { session: false },
      (error: unknown, user: unknown, info: unknown) => {
        if (error) settle({ kind: 'error', error });
        else if (!user) settle({ kind: 'fail', info });
        else settle({ kind: 'success', user });
      },
    ) as (req: Request, res: Response, next: (error?: unknown) => void) => void;
    middleware(req, res, (error?: unknown) => settle({ kind: 'error', error }));
  });
}
