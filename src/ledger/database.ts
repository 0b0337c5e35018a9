import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type Migration, type MigrationProvider } from 'kysely';
import { OperationalError } from '../errors.js';
import { notALedger, refuseNewerLedger, requireExistingLedger } from './ledger-file.js';
import * as m001 from './migrations/001-foundation.js';
import * as m002 from './migrations/002-delivery.js';
import type { LedgerTables } from './tables.js';

export type LedgerDb = Kysely<LedgerTables>;

/** Every migration, in order. A new one is added here and never edited once released. */
const MIGRATIONS: Record<string, Migration> = {
  '001-foundation': m001,
  '002-delivery': m002,
};

const provider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

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

export interface Ledger {
  db: LedgerDb;
  /** The raw handle, for pragmas and the rare statement Kysely cannot express. */
  sqlite: Database.Database;
  file: string;
  /**
   * Runs `fn` synchronously inside one `BEGIN IMMEDIATE` transaction while holding Kysely's
   * connection, so no Kysely query or transaction can interleave. For hot paths that use
   * cached prepared statements (see statements.ts); `fn` must not await.
   */
  writeSync<T>(fn: (sqlite: Database.Database) => T): Promise<T>;
  /** Same lock, no transaction: a consistent synchronous read. */
  readSync<T>(fn: (sqlite: Database.Database) => T): Promise<T>;
  close(): Promise<void>;
}

/** The ledger file is readable by its owner only (invariant 6), WAL and SHM included. */
function restrictMode(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    if (existsSync(f)) chmodSync(f, 0o600);
  }
}

/**
 * Opens (creating when absent) the SQLite ledger at `file` (`:memory:` for tests), in WAL mode,
 * and runs pending migrations.
 */
export async function openLedger(file: string, options: { mustExist?: boolean } = {}): Promise<Ledger> {
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
    refuseNewerLedger(sqlite, resolved, Object.keys(MIGRATIONS));
  } catch (err) {
    sqlite.close();
    if (err instanceof Error && err.name === 'ConfigError') throw err;
    throw notALedger(resolved, err);
  }

  const db = new Kysely<LedgerTables>({ dialect: new SqliteDialect({ database: cachingHandle(sqlite) }) });
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new OperationalError(`Ledger migration ${failed} failed: ${(error as Error).message}.`, { cause: error });
  }
  if (!inMemory) restrictMode(resolved);

  return {
    db,
    sqlite,
    file: resolved,
    writeSync: (fn) => db.connection().execute(async () => sqlite.transaction(() => fn(sqlite)).immediate()),
    readSync: (fn) => db.connection().execute(async () => fn(sqlite)),
    async close() {
      await db.destroy();
    },
  };
}
