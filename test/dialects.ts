import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { sql } from 'kysely';
import { openLedger, type Ledger, type LedgerDialect } from '../src/ledger/database.js';

/**
 * The dialect matrix (as Kysely's own tests do it). `AVITO_SYNC_TEST_PG` is the URL of a
 * PostgreSQL the tests may create and drop databases on (`.ci/pg-cluster start` prints one);
 * `AVITO_SYNC_TEST_DIALECT=postgres` puts every ledger of a test file on it. `vitest.config.ts`
 * runs each file once per dialect (its `sqlite` and `postgres` projects set this variable), so a
 * test written against `ledgerLocation`/`openTestLedger` covers both dialects.
 */
export const TEST_PG = process.env.AVITO_SYNC_TEST_PG?.trim() || undefined;
export const SUITE_DIALECT: LedgerDialect = process.env.AVITO_SYNC_TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite';
if (SUITE_DIALECT === 'postgres' && !TEST_PG) throw new Error('AVITO_SYNC_TEST_DIALECT=postgres needs AVITO_SYNC_TEST_PG (a postgres:// URL the tests may create databases on)');


function psql(url: string, command: string): void {
  execFileSync('psql', [url, '-qtAX', '-v', 'ON_ERROR_STOP=1', '-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** A fresh, empty PostgreSQL database for one test; `drop` removes it (closing what is still connected). */
export function createTestDatabase(): { url: string; drop: () => void } {
  if (!TEST_PG) throw new Error('no PostgreSQL for tests: set AVITO_SYNC_TEST_PG');
  const name = `avito_test_${randomBytes(6).toString('hex')}`;
  psql(TEST_PG, `CREATE DATABASE ${name}`);
  return { url: withDatabase(TEST_PG, name), drop: () => psql(TEST_PG, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

const byDir = new Map<string, { url: string; drop: () => void }>();

/**
 * Where a test's ledger lives: `DIR/ledger.db` on SQLite, or a database of its own on PostgreSQL
 * (the same one for the same folder; dropped by `dropLedgerOf(dir)`, which `tempDir`'s cleanup calls).
 */
export function ledgerLocation(dir: string, dialect: LedgerDialect = SUITE_DIALECT): string {
  return namedLedger(dir, 'ledger.db', dialect);
}

/**
 * A second (third, …) ledger in the same folder: `DIR/NAME` on SQLite, or a database of its own
 * on PostgreSQL (the same one for the same folder and name; dropped with the folder's).
 */
export function namedLedger(dir: string, name: string, dialect: LedgerDialect = SUITE_DIALECT): string {
  const file = path.join(dir, name);
  if (dialect === 'sqlite') return file;
  let db = byDir.get(file);
  if (!db) byDir.set(file, (db = createTestDatabase()));
  return db.url;
}

/**
 * A ledger of the suite's dialect for a test that needs no folder: in-memory SQLite, or a fresh
 * PostgreSQL database that `close()` drops.
 */
export async function openTestLedger(): Promise<Ledger> {
  if (SUITE_DIALECT === 'sqlite') return openLedger(':memory:');
  const db = createTestDatabase();
  const ledger = await openLedger(db.url);
  const close = ledger.close.bind(ledger);
  ledger.close = async () => {
    try {
      await close();
    } finally {
      db.drop();
    }
  };
  return ledger;
}

/** Drops the PostgreSQL databases of `dir`'s ledgers (`ledgerLocation`, `namedLedger`). */
export function dropLedgerOf(dir: string): void {
  for (const [file, db] of byDir) {
    if (path.dirname(file) !== dir) continue;
    byDir.delete(file);
    db.drop();
  }
}

/**
 * Makes inserts into `table` fail, for rows whose `column` equals `value` (or all rows): a full
 * disk or a broken constraint, on either dialect. Returns the undo.
 */
export async function failInserts(ledger: Ledger, table: string, message: string, match?: { column: string; value: string }): Promise<() => Promise<void>> {
  const name = `fail_${randomBytes(4).toString('hex')}`;
  if (ledger.dialect === 'sqlite') {
    const when = match ? ` WHEN NEW.${match.column} = '${match.value}'` : '';
    await sql.raw(`CREATE TRIGGER ${name} BEFORE INSERT ON ${table}${when} BEGIN SELECT RAISE(ABORT, '${message}'); END`).execute(ledger.db);
    return async () => void (await sql.raw(`DROP TRIGGER ${name}`).execute(ledger.db));
  }
  const cond = match ? `IF NEW.${match.column} = '${match.value}' THEN RAISE EXCEPTION '${message}'; END IF; RETURN NEW;` : `RAISE EXCEPTION '${message}';`;
  await sql.raw(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${cond} END $$`).execute(ledger.db);
  await sql.raw(`CREATE TRIGGER ${name} BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION ${name}()`).execute(ledger.db);
  return async () => {
    await sql.raw(`DROP TRIGGER ${name} ON ${table}`).execute(ledger.db);
    await sql.raw(`DROP FUNCTION ${name}()`).execute(ledger.db);
  };
}
