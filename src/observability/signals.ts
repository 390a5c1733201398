/**
 * What did this process just do that an SRE counts? The events Prometheus
 * counts (src/http/metrics.ts), declared here, at the bottom of the import
 * direction (docs/architecture.md §2), so feature folders report them without
 * importing prom-client or the http folder. Every value is from a closed set:
 * no tenant id, user id or path can reach a label through this interface.
 *
 * Logins are counted through `LoginMetrics`, passed in the sso and completer
 * deps. The events of code that runs below any deps (a revocation inside a
 * caller's transaction, an outbox worker, a database transaction, a rate
 * limiter's handler) go to the process's `signals`, which fans them out to
 * the registries subscribed (one per process in production; tests may have
 * several). A sink that throws is skipped: counting never fails a request.
 */

export type LoginProtocol = 'saml' | 'oidc' | 'none';
export type LoginOutcome = 'success' | 'refused';

export interface LoginMetrics {
  /** A sign-in ended: `reason` is a reason code (src/sso/reasons.ts) or `ok`. */
  loginEnded(protocol: LoginProtocol, outcome: LoginOutcome, reason: string): void;
}

export type RevocationScopeName = 'session' | 'user' | 'connection' | 'app' | 'tenant';
export type OutboxKind = 'logout' | 'webhook';
export type TransactionKind = 'tenant' | 'platform' | 'resolved';

export interface Signals {
  sessionsRevoked(scope: RevocationScopeName, count: number): void;
  /** A node heard a revocation `seconds` after the revoking node sent it. */
  revocationHeard(seconds: number): void;
  outboxFinished(kind: OutboxKind, result: 'delivered' | 'given_up'): void;
  /** A limiter (its fixed name in code) answered 429. */
  rateLimited(limiter: string): void;
  transactionEnded(kind: TransactionKind, seconds: number): void;
}

const sinks = new Set<Partial<Signals>>();

/** Subscribes a sink; returns the unsubscribe. */
export function addSignalSink(sink: Partial<Signals>): () => void {
  sinks.add(sink);
  return () => sinks.delete(sink);
}

function fanOut<K extends keyof Signals>(name: K, args: Parameters<Signals[K]>): void {
  for (const sink of sinks) {
    try {
      (sink[name] as ((...a: Parameters<Signals[K]>) => void) | undefined)?.(...args);
    } catch {
      // A metric must never fail the work it counts (docs/security.md §4).
    }
  }
}

export const signals: Signals = {
  sessionsRevoked: (...args) => fanOut('sessionsRevoked', args),
  revocationHeard: (...args) => fanOut('revocationHeard', args),
  outboxFinished: (...args) => fanOut('outboxFinished', args),
  rateLimited: (...args) => fanOut('rateLimited', args),
  transactionEnded: (...args) => fanOut('transactionEnded', args),
};
