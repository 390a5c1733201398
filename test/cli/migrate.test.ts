import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { knownMigrationNames } from '../../src/db/data-source.js';
import { testEnv } from '../support/test-env.js';
import { runCli } from './support.js';

const name = `gh_cli_migrate_${randomBytes(4).toString('hex')}`;
let ownerUrl: string;

async function asAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: testEnv('adminUrl') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  // An empty database, as an operator's external PostgreSQL starts.
  await asAdmin(`CREATE DATABASE ${name} OWNER gatehouse_owner`);
  const url = new URL(testEnv('ownerUrl'));
  url.pathname = `/${name}`;
  ownerUrl = url.toString();
});
afterAll(() => asAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));

describe('gatehouse migrate', () => {
  it('applies every migration to DATABASE_URL, then finds nothing left to apply', async () => {
    const first = await runCli(['migrate'], { DATABASE_URL: ownerUrl });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.json).toEqual({ applied: knownMigrationNames() });

    const client = new pg.Client({ connectionString: ownerUrl });
    await client.connect();
    try {
      const tables = await client.query(`SELECT to_regclass('public.audit_events') AS t`);
      expect(tables.rows[0].t).toBe('audit_events');
    } finally {
      await client.end();
    }

    const again = await runCli(['db:setup'], { DATABASE_URL: ownerUrl });
    expect(again.code).toBe(0);
    expect(again.json).toEqual({ applied: [] });
  });

  it('reports an unreachable database on stderr with exit 1', async () => {
    const res = await runCli(['migrate'], { DATABASE_URL: 'postgres://nobody:x@127.0.0.1:2/none' });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^gatehouse: .*ECONNREFUSED/);
  });
});
