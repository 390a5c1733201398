import { redactUrl, scrubLine } from '../../src/http/logger.js';
import { methodLabel } from '../../src/http/metrics.js';

describe('redactUrl', () => {
  it.each([
    [
      '/oauth/authorize?client_id=c&login_hint=alice%40acme.test',
      '/oauth/authorize?client_id=c&login_hint=%5Bredacted%5D',
    ],
    ['/login?EMAIL=alice@acme.test&login=abc', '/login?EMAIL=%5Bredacted%5D&login=%5Bredacted%5D'],
    [
      '/scim/v2/t/Users?filter=userName+eq+%22a%40b.test%22&count=5',
      '/scim/v2/t/Users?filter=%5Bredacted%5D&count=5',
    ],
    [
      '/x?id_token_hint=eyJ.a.b&Username=bob&user_name=bob',
      '/x?id_token_hint=%5Bredacted%5D&Username=%5Bredacted%5D&user_name=%5Bredacted%5D',
    ],
    ['/x?email[]=a@b.test&email[]=c@d.test', '/x?email%5B%5D=%5Bredacted%5D'],
    ['/x?login_hint%5B%5D=a@b.test', '/x?login_hint%5B%5D=%5Bredacted%5D'],
    [
      '/x?domain_hint=acme.test&SAMLResponse=PHN&code=gh_code_1',
      '/x?domain_hint=%5Bredacted%5D&SAMLResponse=%5Bredacted%5D&code=%5Bredacted%5D',
    ],
    ['/healthz', '/healthz'],
  ])('%s is logged as %s', (url, logged) => {
    expect(redactUrl(url)).toBe(logged);
  });
});

describe('scrubLine (the last line of defence)', () => {
  it.each([
    ['{"msg":"user alice.l+x@acme.co.uk failed"}', '{"msg":"user [email] failed"}'],
    ['{"url":"/a?x=alice%40acme.test"}', '{"url":"/a?x=[email]"}'],
    ['{"t":"gh_scim_0123abcd_xyz-1"}', '{"t":"gh_scim_[redacted]"}'],
    ['{"t":"Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl"}', '{"t":"Bearer [jwt]"}'],
    ['{"db":"postgres://owner:redacted@localhost:5433/gh","at":"node_modules/@node-saml/x.js"}', null],
  ])('%s', (line, scrubbed) => {
    expect(scrubLine(line)).toBe(scrubbed ?? line);
  });

  it('leaves a long hostile run of token characters alone', () => {
    const line = `{"url":"/${'a.'.repeat(200_000)}"}`;
    expect(scrubLine(line)).toBe(line);
    const eyj = `{"url":"/${'eyJ-'.repeat(100_000)}"}`;
    expect(scrubLine(eyj)).toBe(eyj);
  });
});

describe('metric label values', () => {
  it('keeps methods to a closed set', () => {
    expect(['GET', 'POST', 'PROPFIND', 'get', 'M-SEARCH', '__proto__'].map(methodLabel)).toEqual([
      'GET',
      'POST',
      'OTHER',
      'OTHER',
      'OTHER',
      'OTHER',
    ]);
  });
});
