import { addressAllowed, isPublicAddress, outboundTargetProblem } from '../../src/outbound/address-policy.js';
import { deliveryFetch, guardedHttpFetch, openidClientFetch } from '../../src/outbound/fetch-client.js';
import { fetchDocument, FetchRefusedError } from '../../src/outbound/fetch-document.js';
import { waitFor } from '../support/server-process.js';
import { loopbackCertificate, startLocalServer, type LocalServer } from '../support/local-http.js';

/**
 * src/outbound/, the one module every server-side HTTP request goes through
 * (docs/architecture.md, `outbound`): the address rule (address-policy.ts),
 * the pinned request with its deadline and size cap (pinned-request.ts), and
 * its two faces — documents an admin names (fetch-document.ts) and the
 * fetch-shaped client of logins and outbox deliveries (fetch-client.ts).
 * Real HTTP(S) servers on loopback play the targets. End-to-end refusals stay
 * with their features: test/webhooks/outbound-guard.security.test.ts
 * (registration and delivery) and test/sso/oidc-ssrf.security.test.ts (login).
 */

const request = { what: 'metadata_url', accept: 'application/xml', maxBytes: 1024 };
const strict = { allowPrivate: false, allowedNetworks: [], timeoutMs: 2000 };
const dev = { allowPrivate: true, allowedNetworks: [], timeoutMs: 2000 };

let server: LocalServer;
let tlsServer: LocalServer;
let tlsCert: string;
let trickleClosed = false;
/** What reached the TLS server's /hooks: `METHOD body`. */
const posts: string[] = [];

beforeAll(async () => {
  server = await startLocalServer({
    '/doc': (_req, res) => res.writeHead(200, { 'content-type': 'application/xml' }).end('<ok/>'),
    '/redirect': (_req, res) => res.writeHead(302, { location: '/doc' }).end(),
    '/big-declared': (_req, res) => res.writeHead(200, { 'content-length': '5000' }).end('x'.repeat(5000)),
    '/big-streamed': (_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 10; i++) res.write('y'.repeat(500));
      res.end();
    },
    '/trickle': (req, res) => {
      // Under the size cap, but never done: one byte every 20 ms.
      res.writeHead(200);
      const drip = setInterval(() => res.write('z'), 20);
      req.socket.on('close', () => {
        clearInterval(drip);
        trickleClosed = true;
      });
    },
    '/hang': () => {
      // never answers
    },
  });
  const tls = await loopbackCertificate();
  tlsCert = tls.cert;
  tlsServer = await startLocalServer(
    {
      '/doc': (_req, res) => res.writeHead(200).end('<tls/>'),
      '/hooks': (req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          posts.push(`${req.method} ${body}`);
          res.writeHead(200).end();
        });
      },
    },
    tls,
  );
});
afterAll(async () => {
  await server.close();
  await tlsServer.close();
});

describe('the address rule', () => {
  it.each([
    ['127.0.0.1', false],
    ['10.1.2.3', false],
    ['172.16.5.4', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['::1', false],
    ['fe80::1', false],
    ['fd00::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['8.8.8.8', true],
    ['2606:4700:4700::1111', true],
    ['::ffff:8.8.8.8', true],
  ])('classifies %s as public: %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });

  it.each([
    ['10.1.2.3', ['10.0.0.0/8'], true],
    ['::ffff:10.1.2.3', ['10.0.0.0/8'], true],
    ['10.1.2.3', ['192.168.0.0/16'], false],
    ['fd00::1', ['fd00::/8'], true],
    ['fd00::1', ['10.0.0.0/8'], false],
    ['127.0.0.1', ['127.0.0.1/32'], true],
    ['127.0.0.2', ['127.0.0.1/32'], false],
    ['8.8.8.8', [], true],
    ['not-an-address', ['0.0.0.0/0'], false],
  ])('allows %s inside %j: %s', (address, allowedNetworks, expected) => {
    expect(addressAllowed({ allowPrivate: false, allowedNetworks })(address)).toBe(expected);
  });

  it('allows anything under the development setting', () => {
    expect(addressAllowed({ allowPrivate: true, allowedNetworks: [] })('169.254.169.254')).toBe(true);
  });
});

describe('documents an admin points at (fetchDocument)', () => {
  it('refuses with the error the admin API answers as 400 bad_request', async () => {
    await expect(fetchDocument('https://127.0.0.1/doc', request, strict)).rejects.toBeInstanceOf(
      FetchRefusedError,
    );
  });

  it.each([
    'https://127.0.0.1/doc',
    'https://localhost/doc',
    'https://[::1]/doc',
    'https://169.254.169.254/latest/meta-data/',
    'https://10.0.0.8/doc',
    'https://[::ffff:127.0.0.1]/doc',
    'https://2130706433/doc', // 127.0.0.1 as a decimal integer
  ])('refuses %s without the development setting', async (url) => {
    await expect(fetchDocument(url, request, strict)).rejects.toThrow(
      /resolves to a private, loopback or link-local address/,
    );
  });

  it('refuses the real local server without the setting, and never connects to it', async () => {
    const before = tlsServer.requests.length;
    await expect(fetchDocument(`${tlsServer.url}/doc`, request, strict)).rejects.toThrow(/private, loopback/);
    expect(tlsServer.requests.length).toBe(before);
  });

  it('refuses http:// without the setting, and credentials in any URL', async () => {
    await expect(fetchDocument(`${server.url}/doc`, request, strict)).rejects.toThrow(
      /must be an https:\/\/ URL/,
    );
    await expect(fetchDocument('file:///etc/passwd', request, dev)).rejects.toThrow(
      /must be an https:\/\/ URL/,
    );
    await expect(fetchDocument('https://user:pw@example.com/', request, strict)).rejects.toThrow(
      /credentials/,
    );
  });

  it('fetches from loopback over http with the development setting', async () => {
    const doc = await fetchDocument(`${server.url}/doc`, request, dev);
    expect(doc).toMatchObject({ body: '<ok/>', contentType: 'application/xml' });
    // The response headers come back for the refresh's validators (ETag, Last-Modified).
    expect(doc.headers['content-type']).toBe('application/xml');
  });

  it('does not follow redirects', async () => {
    const before = server.requests.filter((p) => p === '/doc').length;
    await expect(fetchDocument(`${server.url}/redirect`, request, dev)).rejects.toThrow(
      /redirect \(HTTP 302\); redirects are not followed/,
    );
    expect(server.requests.filter((p) => p === '/doc').length).toBe(before);
  });

  it('refuses an error status', async () => {
    await expect(fetchDocument(`${server.url}/missing`, request, dev)).rejects.toThrow(/answered HTTP 404/);
  });

  it('cuts off documents over the size cap, declared or streamed', async () => {
    await expect(fetchDocument(`${server.url}/big-declared`, request, dev)).rejects.toThrow(
      /larger than 1024 bytes/,
    );
    await expect(fetchDocument(`${server.url}/big-streamed`, request, dev)).rejects.toThrow(
      /larger than 1024 bytes/,
    );
  });

  it('gives up on a server that does not answer', async () => {
    await expect(
      fetchDocument(`${server.url}/hang`, request, {
        allowPrivate: true,
        allowedNetworks: [],
        timeoutMs: 150,
      }),
    ).rejects.toThrow(/no answer within 150 ms/);
  });

  it('cuts off a server that trickles its answer, closing the connection', async () => {
    await expect(
      fetchDocument(
        `${server.url}/trickle`,
        { ...request, maxBytes: 1_000_000 },
        { allowPrivate: true, allowedNetworks: [], timeoutMs: 150 },
      ),
    ).rejects.toThrow(/no answer within 150 ms/);
    await waitFor(() => trickleClosed, 5000, 'the trickling connection to be closed');
    expect(trickleClosed).toBe(true);
  });

  it('verifies TLS: an untrusted certificate is refused, a configured CA is trusted', async () => {
    await expect(fetchDocument(`${tlsServer.url}/doc`, request, dev)).rejects.toThrow(
      /TLS certificate is not trusted/,
    );
    const doc = await fetchDocument(`${tlsServer.url}/doc`, request, { ...dev, ca: tlsCert });
    expect(doc.body).toBe('<tls/>');
  });

  it('reaches a private address only inside an operator-allowed network, and still only over https', async () => {
    const onPremises = { ...strict, allowedNetworks: ['127.0.0.0/8'], ca: tlsCert };
    const doc = await fetchDocument(`${tlsServer.url}/doc`, request, onPremises);
    expect(doc.body).toBe('<tls/>');
    await expect(fetchDocument(`${server.url}/doc`, request, onPremises)).rejects.toThrow(/must be an https/);
    const elsewhere = { ...strict, allowedNetworks: ['10.0.0.0/8'], ca: tlsCert };
    await expect(fetchDocument(`${tlsServer.url}/doc`, request, elsewhere)).rejects.toThrow(
      /private, loopback/,
    );
  });
});

describe('the fetch-shaped client (logins, webhooks, back-channel logout)', () => {
  const devFetch = guardedHttpFetch({ ...dev, maxBytes: 1024 });

  it('refuses a target the rule refuses with the refusal error, before connecting, without the query', async () => {
    const before = tlsServer.requests.length;
    const post = guardedHttpFetch({ ...strict, ca: tlsCert });
    const refusal = post(`${tlsServer.url}/hooks?token=secret-value`, { method: 'POST', body: 'x' });
    await expect(refusal).rejects.toBeInstanceOf(FetchRefusedError);
    await expect(refusal).rejects.toThrow(
      /^outbound call refused: 127\.0\.0\.1 resolves to a private, loopback or link-local address \(127\.0\.0\.1\) \[https:\/\/127\.0\.0\.1:\d+\/hooks\]$/,
    );
    expect(tlsServer.requests.length).toBe(before);
  });

  it.each([
    ['http://hooks.example.com/x', /must be an https:\/\/ URL/],
    ['https://user:pw@hooks.example.com/x', /must not carry credentials/],
    ['hooks', /not an absolute URL/],
  ])('refuses %s by its form', async (url, message) => {
    await expect(guardedHttpFetch(strict)(url)).rejects.toThrow(message);
  });

  it('hands a redirect back unfollowed', async () => {
    const before = server.requests.filter((p) => p === '/doc').length;
    const res = await devFetch(`${server.url}/redirect`);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/doc');
    expect(server.requests.filter((p) => p === '/doc').length).toBe(before);
  });

  it('answers any status as a Response, with its body', async () => {
    const missing = await devFetch(`${server.url}/missing`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe('not found');
    expect(await (await devFetch(`${server.url}/doc`)).text()).toBe('<ok/>');
  });

  it.each(['/big-declared', '/big-streamed'])(
    'fails an answer over the size cap (%s) as a network failure',
    async (path) => {
      await expect(devFetch(`${server.url}${path}`)).rejects.toThrow(
        expect.objectContaining({ name: 'TypeError', message: 'fetch failed' }),
      );
    },
  );

  it('fails a server that does not answer at the deadline, and a refused connection, as network failures', async () => {
    const quick = guardedHttpFetch({ ...dev, timeoutMs: 150 });
    await expect(quick(`${server.url}/hang`)).rejects.toThrow(
      expect.objectContaining({ name: 'TypeError', message: 'fetch failed' }),
    );
    const closed = await quick('http://127.0.0.1:1/').catch((error: unknown) => error);
    expect(closed).toBeInstanceOf(TypeError);
    expect(((closed as TypeError).cause as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('verifies TLS against the bundled roots plus the configured CA only', async () => {
    await expect(guardedHttpFetch(dev)(`${tlsServer.url}/doc`)).rejects.toThrow('fetch failed');
    const res = await guardedHttpFetch({ ...dev, ca: tlsCert })(`${tlsServer.url}/doc`);
    expect(await res.text()).toBe('<tls/>');
  });

  it('guards back-channel logout and webhook POSTs (the outbox deliveries share deliveryFetch)', async () => {
    const sent = posts.length;
    const strictPost = deliveryFetch({
      outbound: { allowPrivate: false, allowedNetworks: [], ca: tlsCert },
      timeoutMs: 2000,
    });
    await expect(
      strictPost(`${tlsServer.url}/hooks`, { method: 'POST', body: 'logout_token=x' }),
    ).rejects.toThrow(/outbound call refused: 127\.0\.0\.1 resolves to a private, loopback/);
    await expect(strictPost('https://[::ffff:127.0.0.1]:1/hooks', { method: 'POST' })).rejects.toThrow(
      /outbound call refused/,
    );
    expect(posts.length).toBe(sent);
    const allowed = deliveryFetch({
      outbound: { allowPrivate: false, allowedNetworks: ['127.0.0.1/32'], ca: tlsCert },
      timeoutMs: 2000,
    });
    const res = await allowed(`${tlsServer.url}/hooks`, { method: 'POST', body: 'logout_token=x' });
    expect(res.status).toBe(200);
    expect(posts.slice(sent)).toEqual(['POST logout_token=x']);
  });

  it("gives openid-client the caller's refusal, and sends its form bodies", async () => {
    class LoginRefused extends Error {}
    const refused = (message: string) => new LoginRefused(message);
    const strictOidc = openidClientFetch({ ...strict, ca: tlsCert }, refused);
    const init = {
      method: 'POST',
      headers: {},
      body: new URLSearchParams({ code: 'c1' }),
      redirect: 'manual' as const,
    };
    await expect(strictOidc(`${tlsServer.url}/hooks`, init)).rejects.toBeInstanceOf(LoginRefused);
    const onPremises = openidClientFetch(
      { ...strict, allowedNetworks: ['127.0.0.1/32'], ca: tlsCert },
      refused,
    );
    const sent = posts.length;
    const res = await onPremises(`${tlsServer.url}/hooks`, init);
    expect(res.status).toBe(200);
    expect(posts.slice(sent)).toEqual(['POST code=c1']);
    await expect(
      onPremises(`${tlsServer.url}/hooks`, { ...init, body: new ReadableStream() }),
    ).rejects.toThrow('fetch failed');
  });
});

describe('operator URLs at registration (outboundTargetProblem)', () => {
  const policy = { ...strict, timeoutMs: 2000 };

  it.each([
    ['hooks', 'not an absolute URL'],
    ['http://hooks.example.com/x', 'must be an https:// URL'],
    ['https://u:p@hooks.example.com/x', 'must not carry credentials'],
    [
      'https://169.254.169.254/latest/meta-data',
      'resolves to a private, loopback, link-local or metadata address (169.254.169.254)',
    ],
    ['https://localhost/hooks', 'resolves to a private, loopback, link-local or metadata address'],
    ['https://[::ffff:10.0.0.1]/hooks', 'resolves to a private, loopback, link-local or metadata address'],
  ])('finds a problem with %s', async (url, problem) => {
    expect(await outboundTargetProblem(url, policy)).toContain(problem);
  });

  it('accepts a name that does not resolve yet (checked again at every request) and an allowed network', async () => {
    expect(await outboundTargetProblem('https://hooks.gatehouse.invalid/x', policy)).toBeNull();
    expect(
      await outboundTargetProblem('https://127.0.0.1/hooks', { ...policy, allowedNetworks: ['127.0.0.0/8'] }),
    ).toBeNull();
  });
});
