/**
 * Which of our own steps show up in a trace, and with what? One helper for
 * every span Gatehouse makes itself (login steps, SCIM operations). The
 * attribute names are a closed set: `tenant.id` and codes we wrote, never an
 * email, a token or a SAMLResponse. Without a started SDK (tracing.ts) the
 * API is a no-op.
 */
import { context, SpanStatusCode, trace, type Span } from '@opentelemetry/api';

export interface StepAttributes {
  'tenant.id'?: string;
  /** A Gatehouse reason code (src/sso/reasons.ts) or outcome word; never free text. */
  'gatehouse.outcome'?: string;
  'gatehouse.protocol'?: 'saml' | 'oidc';
  'scim.resource'?: string;
  'http.request.method'?: string;
}

const tracer = () => trace.getTracer('gatehouse');

function setAttributes(span: Span, attributes: StepAttributes): void {
  for (const [key, value] of Object.entries(attributes))
    if (typeof value === 'string') span.setAttribute(key, value);
}

/** Runs `fn` inside a span named `name` (active, so pg and http spans nest under it). */
export async function inSpan<T>(
  name: string,
  attributes: StepAttributes,
  fn: (span: { set: (attributes: StepAttributes) => void }) => Promise<T>,
): Promise<T> {
  return tracer().startActiveSpan(name, async (span) => {
    setAttributes(span, attributes);
    try {
      return await fn({ set: (more) => setAttributes(span, more) });
    } catch (error) {
      // The class name only: a message may quote client input.
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
      throw error;
    } finally {
      span.end();
    }
  });
}

/**
 * A span around an Express request's remaining handlers, ended when the answer
 * is sent: `next` runs in its context, so the queries of the handler nest.
 * `finish` adds the attributes known only at the end (the tenant a credential named).
 */
export function spanUntilAnswered(
  name: string,
  attributes: StepAttributes,
  onEnd: (status: number) => StepAttributes,
  res: { statusCode: number; once(event: 'close', listener: () => void): unknown },
  next: () => void,
): void {
  const span = tracer().startSpan(name);
  setAttributes(span, attributes);
  res.once('close', () => {
    try {
      setAttributes(span, onEnd(res.statusCode));
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    } finally {
      span.end();
    }
  });
  context.with(trace.setSpan(context.active(), span), next);
}
