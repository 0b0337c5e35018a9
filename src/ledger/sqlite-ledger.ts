import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { OperationalError } from '../errors.js';
import type { Ledger } from './ledger.js';
import { notALedger, refuseNewerLedger, requireExistingLedger } from './ledger-file.js';
import { MIGRATION_NAMES, migrationProvider } from './migrations/index.js';
import { SqliteOutbox } from './outbox.js';
import { SqliteIngest } from './sqlite-ingest.js';
import { newLeaseOwner } from './leases.js';
import type { LedgerTables } from './tables.js';

/**
 * SQLite's page cache for the ledger connection, in KiB. better-sqlite3 builds SQLite with 16 MB
 * (SQLITE_DEFAULT_CACHE_SIZE=-16000), which a ledger past 16 MB fills and keeps for the life of
 * the process; the OS file cache holds the same pages anyway. 4 MB keeps a 100,000-message
 * backfill as fast and ~12 MB smaller (docs/benchmarks.md, issue 13 item 2).
 */
export const PAGE_CACHE_KIB = 4096;

/** Prepared statements kept for reuse by SQL text (most recently used). */
const STATEMENT_CACHE = 256;

/**
 * The handle Kysely sees: `prepare` reuses statements by SQL text. Kysely prepares every query
 * anew, and better-sqlite3 frees a statement's native memory only when the GC collects it; with a
 * small JS heap that can be late, and a long import grew to 600 MB of statements waiting to be
 * freed (docs/benchmarks.md). Reuse keeps it flat and skips the compile.
 */
function cachingHandle(sqlite: Database.Database): Database.Database {
  const cache = new Map<string, Database.Statement>();
  return new Proxy(sqlite, {
    get(target, prop, receiver) {
      if (prop !== 'prepare') return Reflect.get(target, prop, receiver);
      return (sql: string) => {
        let stmt = cache.get(sql);
        if (stmt) {
          cache.delete(sql);
        } else {
          stmt = target.prepare(sql);
          if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value!);
        }
        cache.set(sql, stmt);
        return stmt;
      };
    },
  });
}

/** The ledger file is readable by its owner only (invariant 6), WAL and SHM included. */
function restrictMode(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    if (existsSync(f)) chmodSync(f, 0o600);
  }
}

/**
 * Opens (creating when absent) the SQLite ledger at `file` (`:memory:` for tests), in WAL mode,
 * and runs pending migrations. One process writes at a time (SQLite); the hot paths run on
 * cached prepared statements inside synchronous transactions, never seen outside src/ledger.
 */
export async function openSqliteLedger(file: string, options: { mustExist?: boolean } = {}): Promise<Ledger> {
  const inMemory = file === ':memory:';
  const resolved = inMemory ? file : path.resolve(file);
  if (options.mustExist) requireExistingLedger(file);
  let sqlite: Database.Database;
  try {
    if (!inMemory) {
      mkdirSync(path.dirname(resolved), { recursive: true, mode: 0o700 });
      closeSync(openSync(resolved, 'a', 0o600));
      restrictMode(resolved);
    }
    sqlite = new Database(resolved);
  } catch (err) {
    throw new OperationalError(`The ledger ${resolved} cannot be opened: ${(err as Error).message}. Check AVITO_SYNC_DB and the folder's permissions.`, { cause: err });
  }
  try {
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    refuseNewerLedger(sqlite, resolved, [...MIGRATION_NAMES]);
  } catch (err) {
    sqlite.close();
    if (err instanceof Error && err.name === 'ConfigError') throw err;
    throw notALedger(resolved, err);
  }

  const db = new Kysely<LedgerTables>({ dialect: new SqliteDialect({ database: cachingHandle(sqlite) }) });
  const migrator = new Migrator({ db, provider: migrationProvider('sqlite') });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new OperationalError(`Ledger migration ${failed} failed: ${(error as Error).message}.`, { cause: error });
  }
  if (!inMemory) restrictMode(resolved);

  // Synchronous work holds Kysely's only connection, so no Kysely query or transaction interleaves.
  const writeSync = <T>(fn: (s: Database.Database) => T): Promise<T> => db.connection().execute(async () => sqlite.transaction(() => fn(sqlite)).immediate());
  const readSync = <T>(fn: () => T): Promise<T> => db.connection().execute(async () => fn());
  const routes = new Map<string, readonly string[]>();
  const ingest = new SqliteIngest(sqlite, writeSync, readSync, (accountId) => routes.get(accountId) ?? []);
  const outboxes = new Map<string, SqliteOutbox>();
  const owner = newLeaseOwner();
  return {
    dialect: 'sqlite',
    db,
    owner,
    file: resolved,
    transaction: (fn) => db.transaction().execute(fn),
    ingest,
    outbox(accountId, connector) {
      const key = `${accountId}\u0000${connector}`;
      let o = outboxes.get(key);
      if (!o) outboxes.set(key, (o = new SqliteOutbox(sqlite, writeSync, readSync, accountId, connector, owner)));
      return o;
    },
    routeDeliveries(accountId, connectors) {
      routes.set(accountId, [...connectors]);
    },
    async ping() {
      await readSync(() => sqlite.prepare('SELECT 1').get());
    },
    async close() {
      await db.destroy();
    },
  };
}
