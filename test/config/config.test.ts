import { parseConfig, redactConfig } from '../../src/config/config.js';
import { startService } from '../support/server-process.js';

describe('configuration', () => {
  it('defaults to safe values and no secrets', () => {
    const config = parseConfig({});
    expect(config).toMatchObject({ port: 8080, dataDir: './.gatehouse', baseUrl: 'http://localhost:8080' });
    expect(config.adminToken).toBeUndefined();
    expect(config.masterKey).toBeUndefined();
    expect(config.tokens.accessTokenTtl).toBe(300);
  });

  it('lists every problem at once', () => {
    expect(() => parseConfig({ PORT: 'eighty', LOG_LEVEL: 'loud', GATEHOUSE_MASTER_KEY: 'short' })).toThrow(
      expect.objectContaining({
        problems: [
          expect.stringMatching(/^PORT: /),
          expect.stringMatching(/^GATEHOUSE_MASTER_KEY: must be 32 bytes/),
          expect.stringMatching(/^LOG_LEVEL: /),
        ],
      }),
    );
  });

  it('redacts secrets and database passwords when shown', () => {
    const shown = redactConfig(
      parseConfig({
        DATABASE_URL: 'postgres://owner:hunter2@db:5432/gatehouse',
        GATEHOUSE_ADMIN_TOKEN: 'gh_admin_' + 'a'.repeat(40),
        GATEHOUSE_MASTER_KEY: 'b'.repeat(43),
      }),
    );
    const text = JSON.stringify(shown);
    expect(text).not.toMatch(/hunter2|aaaaaaaa|bbbbbbbb/);
    expect(shown.databaseUrl).toBe('postgres://owner:redacted@db:5432/gatehouse');
  });

  it('exits 2 with one message listing every problem, and no stack trace', async () => {
    const { exited } = startService({ PORT: '-1', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'chatty' });
    const exit = await exited;
    expect(exit.code).toBe(2);
    expect(exit.stderr).toMatch(/Invalid configuration/);
    expect(exit.stderr).toMatch(/DATABASE_URL: must be a postgres/);
    expect(exit.stderr).toMatch(/PORT: /);
    expect(exit.stderr).toMatch(/LOG_LEVEL: /);
    expect(exit.stderr).not.toMatch(/\n\s+at /);
  });
});
