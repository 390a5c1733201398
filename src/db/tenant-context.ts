import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Which tenant's work is this line written inside? (issue 11, "Logs": every
 * line written inside a tenant's work carries `tenant_id`, background workers
 * and sign-in lines included.) `Database.withTenant` runs its callback inside
 * this context, so whatever logs during a tenant's transaction — a request
 * handler, an outbox worker, the cleanup sweep — is labelled without each
 * call site passing the id; the logger (http/logger.ts) reads it in a mixin.
 * It labels log lines only: authorization never reads it (RLS and the
 * transaction's `app.tenant_id` decide what a query sees).
 */
const context = new AsyncLocalStorage<string>();

export function runInTenantContext<T>(tenantId: string, fn: () => Promise<T>): Promise<T> {
  return context.run(tenantId, fn);
}

/** The tenant whose work is running, if any. */
export function currentTenantId(): string | undefined {
  return context.getStore();
}
