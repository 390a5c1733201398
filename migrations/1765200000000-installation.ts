import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One row that says this database is initialised and with which secrets
 * (issue 11, docs/operations.md "Many nodes"): a key-check value of the master
 * key, an argon2id hash of the operator admin token and the runtime role's
 * password sealed under the master key. A second node compares its secrets
 * with this row instead of generating its own; the runtime role never reads
 * it (no grant), only the owner's bootstrap does.
 */
export class Installation1765200000000 implements MigrationInterface {
  name = 'Installation1765200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE gatehouse_installation (
        id smallint PRIMARY KEY DEFAULT 1 CONSTRAINT gatehouse_installation_one_row CHECK (id = 1),
        master_key_check text NOT NULL,
        admin_token_hash text NOT NULL,
        app_password_sealed text,
        initialised_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`REVOKE ALL ON gatehouse_installation FROM PUBLIC`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS gatehouse_installation`);
  }
}
