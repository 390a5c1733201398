import { createServer, type AddressInfo } from 'node:net';
import pg from 'pg';
import {
  QueryFailedError,
  QueryRunnerAlreadyReleasedError,
  QueryRunnerProviderAlreadyReleasedError,
} from 'typeorm';
import { isDatabaseUnavailable } from '../../src/db/pg-errors.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * Which failures are "the database is unavailable" (503, docs/operations.md)
 * and which are not (a request's own fault, or a bug: 4xx or 500). Real
 * errors, produced by node-postgres, PostgreSQL and TypeORM.
 */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(() => t.close());

async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

it('counts a refused connection, a terminated backend and a released query runner as unavailable', async () => {
  // A port nobody listens on.
  const closed = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  const refused = await caught(async () => {
    const c = new pg.Client({ connectionString: `postgres://x:y@127.0.0.1:${closed}/z` });
    await c.connect();
  });
  expect(isDatabaseUnavailable(refused)).toBe(true);

  // Our own backend terminated mid-session (what a PostgreSQL shutdown does): 57P01.
  const client = new pg.Client({ connectionString: t.appUrl });
  client.on('error', () => undefined);
  await client.connect();
  const terminated = await caught(() => client.query('SELECT pg_terminate_backend(pg_backend_pid())'));
  expect(isDatabaseUnavailable(terminated)).toBe(true);
  await client.end().catch(() => undefined);

  expect(isDatabaseUnavailable(new QueryRunnerAlreadyReleasedError())).toBe(true);
  expect(isDatabaseUnavailable(new QueryRunnerProviderAlreadyReleasedError())).toBe(true);
  // Through TypeORM's wrapper and a cause chain.
  expect(isDatabaseUnavailable(new QueryFailedError('SELECT 1', [], refused as Error))).toBe(true);
  expect(isDatabaseUnavailable(new Error('outer', { cause: refused }))).toBe(true);
});

it('does not count a request’s own database errors (syntax, division by zero) or a plain bug', async () => {
  const syntax = await caught(() => t.db.withPlatform((em) => em.query('SELEC 1')));
  const divisionByZero = await caught(() =>
    t.db.withPlatform((em) => em.query(`SELECT 1 FROM (VALUES (1)) v(x) WHERE (SELECT 1/0) = 1`)),
  );
  for (const error of [
    syntax,
    divisionByZero,
    new TypeError('x is undefined'),
    null,
    'text',
    { code: '23505' },
  ])
    expect(isDatabaseUnavailable(error)).toBe(false);
});
