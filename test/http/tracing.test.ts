import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { redactedQuery } from '../../src/observability/tracing.js';
import { startService, waitFor } from '../support/server-process.js';

/**
 * Issue 11, OpenTelemetry: the built server, started as `npm start` starts it
 * (the preload before main), exports its traces over OTLP/HTTP (JSON) to a
 * real receiver on loopback when OTEL_EXPORTER_OTLP_ENDPOINT is set, and opens
 * no connection at all when it is not. The traffic: a SCIM create and a
 * refused sign-in carrying an email, a token and a SAMLResponse that must not
 * appear anywhere in what was exported.
 */

interface OtlpSpan {
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
}
interface Received {
  raw: string;
  spans: { scope: string; span: OtlpSpan }[];
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** An OTLP/HTTP trace receiver: `POST /v1/traces` with a JSON ExportTraceServiceRequest. */
async function startReceiver(): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (
        req.method !== 'POST' ||
        req.url !== '/v1/traces' ||
        !/json/.test(req.headers['content-type'] ?? '')
      ) {
        res.writeHead(415).end();
        return;
      }
      const request = JSON.parse(body) as {
        resourceSpans: { scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[] }[];
      };
      received.push({
        raw: body,
        spans: request.resourceSpans.flatMap((rs) =>
          rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => ({ scope: ss.scope.name, span }))),
        ),
      });
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const attribute = (span: OtlpSpan, key: string): unknown =>
  span.attributes?.find((a) => a.key === key)?.value.stringValue;

let dataDir: string;
let embeddedPgPort: string;

beforeAll(async () => {
  const parent = await mkdtemp(path.join(tmpdir(), 'gatehouse-tracing-'));
  await chmod(parent, 0o755);
  dataDir = path.join(parent, 'data');
  embeddedPgPort = String(await freePort());
});

/** Starts the built service on the shared data folder, runs `fn`, stops it with SIGTERM (exit 0). */
async function withService(
  env: Record<string, string>,
  fn: (base: string, adminToken: string) => Promise<void>,
): Promise<void> {
  const port = await freePort();
  const service = startService({
    PORT: String(port),
    HOST: '127.0.0.1',
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_EMBEDDED_PG_PORT: embeddedPgPort,
    LOG_LEVEL: 'warn',
    ...env,
  });
  try {
    await waitFor(
      () => /listening on|failed to start/.test(service.output()),
      90_000,
      'the service to listen',
    );
    expect(service.output()).toMatch(/listening on/);
    const adminToken = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    await fn(`http://127.0.0.1:${port}`, adminToken);
  } finally {
    service.child.kill('SIGTERM');
  }
  expect(await service.exited).toMatchObject({ code: 0, signal: null });
}

/** The traffic both runs send: a SCIM create in a new tenant and a refused SAML sign-in. */
async function drive(base: string, adminToken: string) {
  const admin = (method: string, p: string, body?: unknown) =>
    fetch(`${base}/admin/v1${p}`, {
      method,
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const slug = `trace-${randomUUID().slice(0, 8)}`;
  const tenant = (await (await admin('POST', '/tenants', { slug, name: slug })).json()) as { id: string };
  const issued = await admin('POST', `/tenants/${tenant.id}/scim-tokens`, { description: 'Okta' });
  expect(issued.status).toBe(201);
  const { token } = (await issued.json()) as { token: string };
  const email = `trace.person.${randomUUID().slice(0, 8)}@example.test`;
  const created = await fetch(`${base}/scim/v2/${tenant.id}/Users`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/scim+json' },
    body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: email }),
  });
  expect(created.status).toBe(201);
  // A refused sign-in whose SAMLResponse (and query) carry the email.
  const samlResponse = Buffer.from(`<samlp:Response><NameID>${email}</NameID></samlp:Response>`).toString(
    'base64',
  );
  const refused = await fetch(`${base}/saml/${randomUUID()}/acs?login_hint=${encodeURIComponent(email)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ SAMLResponse: samlResponse }).toString(),
  });
  expect(refused.status).toBeGreaterThanOrEqual(400);
  expect(refused.status).toBeLessThan(500);
  return { tenantId: tenant.id, email, token, adminToken, samlResponse };
}

it('exports HTTP, pg and our own spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, with no email or token', async () => {
  const receiver = await startReceiver();
  try {
    let sent: Awaited<ReturnType<typeof drive>> | undefined;
    await withService(
      { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' },
      async (base, adminToken) => {
        sent = await drive(base, adminToken);
        const tenantId = sent.tenantId;
        await waitFor(
          () =>
            receiver.received.some((r) =>
              r.spans.some(
                (s) => s.span.name === 'scim POST Users' && attribute(s.span, 'tenant.id') === tenantId,
              ),
            ) && receiver.received.some((r) => r.spans.some((s) => s.span.name === 'gatehouse.saml.acs')),
          30_000,
          'the SCIM and ACS spans to be exported',
        );
      },
    );
    const spans = receiver.received.flatMap((r) => r.spans);
    // HTTP server spans (SpanKind SERVER = 2) for the SCIM route and the ACS.
    const serverSpans = spans.filter(
      (s) => s.scope === '@opentelemetry/instrumentation-http' && s.span.kind === 2,
    );
    expect(serverSpans.map((s) => s.span.name)).toEqual(
      expect.arrayContaining(['POST /scim/v2/:tenantId/Users', 'POST /saml/:connectionId/acs']),
    );
    // PostgreSQL, through the pg instrumentation (installed by the preload before pg loaded).
    expect(
      spans.some((s) => s.scope === '@opentelemetry/instrumentation-pg' && /^pg\.query/.test(s.span.name)),
    ).toBe(true);
    // Our own: the SCIM operation with the tenant its token named; the refused ACS has no tenant.
    const scim = spans.find((s) => s.span.name === 'scim POST Users');
    expect(scim && attribute(scim.span, 'tenant.id')).toBe(sent?.tenantId);
    expect(scim && attribute(scim.span, 'scim.resource')).toBe('Users');
    const acs = spans.find((s) => s.span.name === 'gatehouse.saml.acs');
    expect(acs && attribute(acs.span, 'tenant.id')).toBeUndefined();
    // Nothing secret anywhere in what left the process.
    const raw = receiver.received.map((r) => r.raw).join('\n');
    for (const secret of [
      sent?.email,
      encodeURIComponent(sent?.email ?? ''),
      sent?.token,
      sent?.adminToken,
    ]) {
      expect(secret && raw.includes(secret)).toBe(false);
    }
    expect(raw).not.toContain(sent?.samlResponse.slice(0, 40));
    expect(raw).not.toMatch(/gh_(scim|admin)_[A-Za-z0-9]/);
    expect(raw).not.toMatch(/@example\.test/);
  } finally {
    await receiver.close();
  }
}, 180_000);

it('opens no exporter connection when OTEL_EXPORTER_OTLP_ENDPOINT is unset', async () => {
  // The OTLP/HTTP default endpoint (localhost:4318): an exporter that started would connect here.
  const connections: string[] = [];
  const listener: NetServer = createNetServer((socket) => {
    connections.push(String(socket.remotePort));
    socket.destroy();
  });
  const listening = await new Promise<boolean>((resolve) => {
    listener.once('error', () => resolve(false));
    listener.listen(4318, '127.0.0.1', () => resolve(true));
  });
  expect(listening).toBe(true);
  try {
    await withService({ OTEL_BSP_SCHEDULE_DELAY: '100' }, async (base, adminToken) => {
      await drive(base, adminToken);
      // Ten export intervals: a started exporter would have flushed the spans above by now.
      await new Promise((r) => setTimeout(r, 1000));
    });
    expect(connections).toEqual([]);
  } finally {
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  }
}, 180_000);

describe('redactedQuery', () => {
  it('keeps parameter names and replaces every value', () => {
    expect(redactedQuery('/oauth/authorize?login_hint=a%40b.test&state=xyz')).toBe(
      'login_hint=REDACTED&state=REDACTED',
    );
    expect(redactedQuery('/login')).toBeNull();
    expect(redactedQuery('/x?alice%40acme.test=1')).toBe('other=REDACTED');
  });
});
