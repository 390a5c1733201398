import type * as client from 'openid-client';
import { JwksRefetchGate } from './jwks-refetch.js';

const JWKS_URI = 'https://idp.test/jwks';
const COOLDOWN_MS = 10_000;
const jwks = (kid: string) => ({ keys: [{ kty: 'RSA', kid, n: 'AQAB', e: 'AQAB' }] });

/** A JWKS endpoint that counts its calls and serves the current key set. */
function endpoint(kid: { current: string }) {
  const calls: string[] = [];
  const inner: client.CustomFetch = async (url) => {
    calls.push(url);
    return new Response(JSON.stringify(jwks(kid.current)), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  };
  return { calls, inner };
}

const fetchOptions = { method: 'GET', headers: {}, body: undefined, redirect: 'manual' as const };

describe('JwksRefetchGate: an unknown kid refetches at once, at most once per cooldown', () => {
  it('presents a cached copy as old enough for the library to refetch on an unknown kid', () => {
    const gate = new JwksRefetchGate(JWKS_URI, COOLDOWN_MS);
    expect(gate.present(1_000_000)).toBeUndefined();
    gate.keep(undefined, { jwks: jwks('k1'), uat: 1_000 });
    expect(gate.present(1_010_000)).toEqual({ jwks: jwks('k1'), uat: 950 });
    // Past the library's five minutes nothing is presented: it fetches as it always did.
    expect(gate.present(1_300_000)).toBeUndefined();
  });

  it('lets the first fetch through and one refetch per cooldown, answering the rest from the last JWKS', async () => {
    const kid = { current: 'k1' };
    const idp = endpoint(kid);
    let now = 1_000_000;
    const gate = new JwksRefetchGate(JWKS_URI, COOLDOWN_MS);
    const fetch = gate.wrap(idp.inner, () => now);
    const read = async () =>
      ((await (await fetch(JWKS_URI, fetchOptions)).json()) as ReturnType<typeof jwks>).keys[0]?.kid;

    expect(await read()).toBe('k1');
    gate.keep(undefined, { jwks: jwks('k1'), uat: now / 1000 });
    kid.current = 'k2';
    now += 1_000;
    expect(await read()).toBe('k2'); // the refetch an unknown kid asks for
    now += 1_000;
    kid.current = 'k3';
    expect(await read()).toBe('k2'); // within the cooldown: no request reaches the IdP
    expect(await read()).toBe('k2');
    expect(idp.calls).toHaveLength(2);
    now += COOLDOWN_MS;
    expect(await read()).toBe('k3');
    expect(idp.calls).toHaveLength(3);
  });

  it('shares one in-flight refetch between concurrent logins', async () => {
    const idp = endpoint({ current: 'k1' });
    const gate = new JwksRefetchGate(JWKS_URI, COOLDOWN_MS);
    gate.keep(undefined, { jwks: jwks('k0'), uat: 1 });
    const fetch = gate.wrap(idp.inner, () => 5_000_000);
    const answers = await Promise.all([1, 2, 3, 4].map(() => fetch(JWKS_URI, fetchOptions)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(idp.calls).toHaveLength(1);
  });

  it('passes other requests through untouched', async () => {
    const idp = endpoint({ current: 'k1' });
    const gate = new JwksRefetchGate(JWKS_URI, COOLDOWN_MS);
    const fetch = gate.wrap(idp.inner, () => 0);
    await fetch('https://idp.test/token', { ...fetchOptions, method: 'POST' });
    await fetch('https://idp.test/token', { ...fetchOptions, method: 'POST' });
    expect(idp.calls).toEqual(['https://idp.test/token', 'https://idp.test/token']);
  });

  it('keeps the fetch time of the JWKS it answered from, not the time it answered', async () => {
    const idp = endpoint({ current: 'k1' });
    let now = 2_000_000;
    const gate = new JwksRefetchGate(JWKS_URI, COOLDOWN_MS);
    const fetch = gate.wrap(idp.inner, () => now);
    await fetch(JWKS_URI, fetchOptions);
    gate.keep(undefined, { jwks: jwks('k1'), uat: 2_000 });
    now += 1_000;
    await fetch(JWKS_URI, fetchOptions); // refetch (network)
    now += 1_000;
    const presented = gate.present(now);
    await fetch(JWKS_URI, fetchOptions); // within the cooldown: answered from the last JWKS
    gate.keep(presented, { jwks: jwks('k1'), uat: 2_002 });
    // Kept as fetched at 2_001 s (the refetch), so five minutes after that the copy is expired.
    expect(gate.present(2_300_999)).toBeDefined();
    expect(gate.present(2_301_000)).toBeUndefined();
  });
});
