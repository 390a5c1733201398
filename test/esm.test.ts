import * as jose from 'jose';

// jose 6 (like openid-client 6 and oidc-provider 9) is ESM-only: this file
// failing to load means the module system or the jest transform regressed.
it('loads ESM-only jose and round-trips a signed JWT', async () => {
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256');
  const jwt = await new jose.SignJWT({ tid: 't' })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuedAt()
    .sign(privateKey);
  const { payload } = await jose.jwtVerify(jwt, publicKey, { algorithms: ['ES256'] });
  expect(payload.tid).toBe('t');
});
