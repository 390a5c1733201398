import { guardedFetch, isPublicAddress } from '../../src/connections/fetch-guard.js';
import { waitFor } from '../support/server-process.js';
import { loopbackCertificate, startLocalServer, type LocalServer } from '../support/local-http.js';

const request = { what: 'metadata_url', accept: 'application/xml', maxBytes: 1024 };
const strict = { allowPrivate: false, allowedNetworks: [], timeoutMs: 2000 };
const dev = { allowPrivate: true, allowedNetworks: [], timeoutMs: 2000 };

let server: LocalServer;
let tlsServer: LocalServer;
let tlsCert: string;
let trickleClosed = false;

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
  tlsServer = await startLocalServer({ '/doc': (_req, res) => res.writeHead(200).end('<tls/>') }, tls);
});
afterAll(async () => {
  await server.close();
  await tlsServer.close();
});

describe('outbound fetch guard (SSRF)', () => {
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
    'https://127.0.0.1/doc',
    'https://localhost/doc',
    'https://[::1]/doc',
    'https://169.254.169.254/latest/meta-data/',
    'https://10.0.0.8/doc',
    'https://[::ffff:127.0.0.1]/doc',
    'https://2130706433/doc', // 127.0.0.1 as a decimal integer
  ])('refuses %s without the development setting', async (url) => {
    await expect(guardedFetch(url, request, strict)).rejects.toThrow(
      /resolves to a private, loopback or link-local address/,
    );
  });

  it('refuses the real local server without the setting, and never connects to it', async () => {
    const before = tlsServer.requests.length;
    await expect(guardedFetch(`${tlsServer.url}/doc`, request, strict)).rejects.toThrow(/private, loopback/);
    expect(tlsServer.requests.length).toBe(before);
  });

  it('refuses http:// without the setting, and credentials in any URL', async () => {
    await expect(guardedFetch(`${server.url}/doc`, request, strict)).rejects.toThrow(
      /must be an https:\/\/ URL/,
    );
    await expect(guardedFetch('file:///etc/passwd', request, dev)).rejects.toThrow(
      /must be an https:\/\/ URL/,
    );
    await expect(guardedFetch('https://user:pw@example.com/', request, strict)).rejects.toThrow(
      /credentials/,
    );
  });

  it('fetches from loopback over http with the development setting', async () => {
    const doc = await guardedFetch(`${server.url}/doc`, request, dev);
    expect(doc).toEqual({ body: '<ok/>', contentType: 'application/xml' });
  });

  it('does not follow redirects', async () => {
    const before = server.requests.filter((p) => p === '/doc').length;
    await expect(guardedFetch(`${server.url}/redirect`, request, dev)).rejects.toThrow(
      /redirect \(HTTP 302\); redirects are not followed/,
    );
    expect(server.requests.filter((p) => p === '/doc').length).toBe(before);
  });

  it('refuses an error status', async () => {
    await expect(guardedFetch(`${server.url}/missing`, request, dev)).rejects.toThrow(/answered HTTP 404/);
  });

  it('cuts off documents over the size cap, declared or streamed', async () => {
    await expect(guardedFetch(`${server.url}/big-declared`, request, dev)).rejects.toThrow(
      /larger than 1024 bytes/,
    );
    await expect(guardedFetch(`${server.url}/big-streamed`, request, dev)).rejects.toThrow(
      /larger than 1024 bytes/,
    );
  });

  it('gives up on a server that does not answer', async () => {
    await expect(
      guardedFetch(`${server.url}/hang`, request, {
        allowPrivate: true,
        allowedNetworks: [],
        timeoutMs: 150,
      }),
    ).rejects.toThrow(/no answer within 150 ms/);
  });

  it('cuts off a server that trickles its answer, closing the connection', async () => {
    await expect(
      guardedFetch(
        `${server.url}/trickle`,
        { ...request, maxBytes: 1_000_000 },
        { allowPrivate: true, allowedNetworks: [], timeoutMs: 150 },
      ),
    ).rejects.toThrow(/no answer within 150 ms/);
    await waitFor(() => trickleClosed, 5000, 'the trickling connection to be closed');
    expect(trickleClosed).toBe(true);
  });

  it('verifies TLS: an untrusted certificate is refused, a configured CA is trusted', async () => {
    await expect(guardedFetch(`${tlsServer.url}/doc`, request, dev)).rejects.toThrow(
      /TLS certificate is not trusted/,
    );
    const doc = await guardedFetch(`${tlsServer.url}/doc`, request, { ...dev, ca: tlsCert });
    expect(doc.body).toBe('<tls/>');
  });

  it('reaches a private address only inside an operator-allowed network, and still only over https', async () => {
    const onPremises = { ...strict, allowedNetworks: ['127.0.0.0/8'], ca: tlsCert };
    const doc = await guardedFetch(`${tlsServer.url}/doc`, request, onPremises);
    expect(doc.body).toBe('<tls/>');
    await expect(guardedFetch(`${server.url}/doc`, request, onPremises)).rejects.toThrow(/must be an https/);
    const elsewhere = { ...strict, allowedNetworks: ['10.0.0.0/8'], ca: tlsCert };
    await expect(guardedFetch(`${tlsServer.url}/doc`, request, elsewhere)).rejects.toThrow(
      /private, loopback/,
    );
  });
});
