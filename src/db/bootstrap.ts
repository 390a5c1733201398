import pg from 'pg';

/** The login role the service runs as (created NOLOGIN by the first migration). */
export const APP_ROLE = 'gatehouse_app';
/** The owner role the embedded database is given; external databases bring their own. */
export const OWNER_ROLE = 'gatehouse_owner';

/**
 * Runs `fn` as the owner while holding the bootstrap advisory lock of this
 * database: provisioning, migrating and joining the installation happen once
 * at a time however many nodes start together (issue 11). A session lock on
 * its own connection, so TypeORM's migration connection is free to run its
 * own transactions meanwhile; released when `fn` ends or the connection drops.
 */
export async function withBootstrapLock<T>(
  ownerUrl: string,
  fn: (owner: pg.Client) => Promise<T>,
): Promise<T> {
  return withClient(ownerUrl, async (c) => {
    await c.query(`SELECT pg_advisory_lock(hashtext('gatehouse:bootstrap'))`);
    try {
      return await fn(c);
    } finally {
      await c.query(`SELECT pg_advisory_unlock(hashtext('gatehouse:bootstrap'))`).catch(() => undefined);
    }
  });
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * As a superuser of an embedded cluster: the owner role (CREATEROLE, so that the
 * migrations can create the runtime and resolver roles) and its database.
 * Returns the owner's URL for that database.
 */
export async function provisionOwner(
  superuserUrl: string,
  options: { database: string; ownerPassword: string },
): Promise<string> {
  await withClient(superuserUrl, async (c) => {
    const exists = await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [OWNER_ROLE]);
    const verb = exists.rowCount ? 'ALTER' : 'CREATE';
    await c.query(
      `${verb} ROLE ${OWNER_ROLE} LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS PASSWORD ${c.escapeLiteral(options.ownerPassword)}`,
    );
    const db = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [options.database]);
    if (!db.rowCount) {
      await c.query(`CREATE DATABASE ${c.escapeIdentifier(options.database)} OWNER ${OWNER_ROLE}`);
    }
  });
  return withCredentials(superuserUrl, OWNER_ROLE, options.ownerPassword, options.database);
}

/**
 * As the owner, after migrations, on the first node only (db/installation.ts):
 * lets the runtime role log in with the given password. The owner created the
 * role, so it may alter it. Never called when the database is initialised
 * already: re-keying the role under running nodes breaks their new connections.
 */
export async function enableAppLogin(owner: pg.Client, appPassword: string): Promise<void> {
  await owner.query(`ALTER ROLE ${APP_ROLE} LOGIN PASSWORD ${owner.escapeLiteral(appPassword)}`);
}

export function withCredentials(url: string, user: string, password: string, database?: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  if (database) u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}
