import { configWarnings, KNOWN_VARIABLES, parseConfig } from './config.js';

// Which GATEHOUSE_* variables draw a warning at start (issue 14: a typo silently kept the default).
describe('configWarnings', () => {
  it('names the closest known setting for a mistyped variable', () => {
    expect(
      configWarnings({ GATEHOUSE_BASEURL: 'https://sso.example.com', GATEHOUSE_DNS_TIMEOUT: '100' }),
    ).toEqual([
      'GATEHOUSE_BASEURL is not a Gatehouse setting and is ignored; did you mean GATEHOUSE_BASE_URL?',
      'GATEHOUSE_DNS_TIMEOUT is not a Gatehouse setting and is ignored; did you mean GATEHOUSE_DNS_TIMEOUT_MS?',
    ]);
  });

  it('warns without a suggestion when no known name is near', () => {
    expect(configWarnings({ GATEHOUSE_COLOUR_SCHEME: 'dark' })).toEqual([
      'GATEHOUSE_COLOUR_SCHEME is not a Gatehouse setting and is ignored',
    ]);
  });

  it('is silent for every known setting, other programs’ variables and the test and benchmark knobs', () => {
    const env = Object.fromEntries(KNOWN_VARIABLES.map((name) => [name, 'x']));
    expect(
      configWarnings({
        ...env,
        PATH: '/usr/bin',
        GATEHOUSEX: '1',
        GATEHOUSE_FUZZ_RUNS: '10',
        GATEHOUSE_BENCH_SCIM_USERS: '10',
        GATEHOUSE_TEST_OWNER_URL: 'postgres://x',
      }),
    ).toEqual([]);
    expect(KNOWN_VARIABLES).toEqual(
      expect.arrayContaining(['GATEHOUSE_BASE_URL', 'GATEHOUSE_LOGOUT_OUTBOX_RETENTION', 'DATABASE_URL']),
    );
  });

  it('does not change what parseConfig accepts: a typo still starts, with the default', () => {
    expect(parseConfig({ GATEHOUSE_SESION_TTL: '60' }).tokens.sessionTtl).toBe(12 * 3600);
  });
});
