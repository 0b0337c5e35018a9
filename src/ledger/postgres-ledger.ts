import { Kysely, Migrator, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { ConfigError, OperationalError } from '../errors.js';
import type { Ledger } from './ledger.js';
import { redactUrl } from './location.js';
import { MIGRATION_NAMES, migrationProvider } from './migrations/index.js';
import { newerLedger } from './ledger-file.js';
import { LEASE_HEARTBEAT_MS, beatLeaseOwner, dropLeaseOwner, newLeaseOwner } from './leases.js';
import { PostgresIngest } from './postgres-ingest.js';
import { PostgresOutbox } from './postgres-outbox.js';
import type { LedgerTables } from './tables.js';


/** PostgreSQL's `bigint` (int8): every integer column of the ledger; all values fit in a double. */
const INT8_OID = 20;

export interface PostgresLedgerOptions {
  /** Connections in the pool. Default 10. */
  poolSize?: number;
}

/** Codes a transaction is retried on: another transaction won a lock race. */
const RETRYABLE = new Set(['40001', '40P01']);
const TX_ATTEMPTS = 5;

/**
 * Opens the PostgreSQL ledger at `url` and runs pending migrations (Kysely's migrator holds an
 * advisory lock while it does, so several processes starting together migrate once).
 * Failures to reach the database are explained as configuration errors naming AVITO_SYNC_DB.
 */
export async function openPostgresLedger(url: string, opts: PostgresLedgerOptions = {}): Promise<Ledger> {
  const shown = redactUrl(url);
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: 10_000,
    // Ids, counts and epoch-ms times come back as numbers, as on SQLite.
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser },
  });
  // An idle client's error (the server restarted) must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw explainConnectError(err, shown);
  }
  const db = new Kysely<LedgerTables>({ dialect: new PostgresDialect({ pool }) });
  // A ledger migrated by a newer avito-sync: refuse (exit 2) rather than run on a schema we do not know.
  const applied = await sql<{ name: string }>`SELECT name FROM kysely_migration`.execute(db).then((r) => r.rows.map((x) => x.name), () => [] as string[]);
  const unknown = applied.filter((n) => !MIGRATION_NAMES.includes(n));
  if (unknown.length) {
    await db.destroy();
    throw newerLedger(shown, unknown);
  }
  const { error, results } = await new Migrator({ db, provider: migrationProvider('postgres') }).migrateToLatest();
  if (error) {
    await db.destroy();
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new OperationalError(`Ledger migration ${failed} failed on ${shown}: ${(error as Error).message}.`, { cause: error });
  }

  /** One transaction, retried when PostgreSQL aborted it for a deadlock or a serialization failure. */
  const run = async <T>(fn: (trx: Transaction<LedgerTables>) => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await db.transaction().execute(fn);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (!code || !RETRYABLE.has(code) || attempt >= TX_ATTEMPTS) throw err;
      }
    }
  };
  // Registered while the ledger is open: delivery leases of an owner whose registration ran out
  // (the process died) are free for the others.
  const owner = newLeaseOwner();
  const beat = () => beatLeaseOwner(db, owner, 'process').catch(() => undefined);
  await beat();
  const beating = setInterval(() => void beat(), LEASE_HEARTBEAT_MS);
  beating.unref();
  const routes = new Map<string, readonly string[]>();
  const ingest = new PostgresIngest(db, run, (accountId) => routes.get(accountId) ?? []);
  const outboxes = new Map<string, PostgresOutbox>();
  return {
    dialect: 'postgres',
    db,
    owner,
    file: shown,
    transaction: (fn) => db.transaction().execute(fn),
    ingest,
    outbox(accountId, connector) {
      const key = `${accountId}\u0000${connector}`;
      let o = outboxes.get(key);
      if (!o) outboxes.set(key, (o = new PostgresOutbox(db, run, owner, accountId, connector)));
      return o;
    },
    routeDeliveries(accountId, connectors) {
      routes.set(accountId, [...connectors]);
    },
    async ping() {
      await sql`SELECT 1`.execute(db);
    },
    async close() {
      clearInterval(beating);
      await dropLeaseOwner(db, owner).catch(() => undefined);
      await db.destroy();
    },
  };
}

/** Cannot connect, authentication failed, database missing: a sentence naming AVITO_SYNC_DB, never the password. */
export function explainConnectError(err: unknown, shown: string): Error {
  const e = err as { code?: string; message?: string };
  const code = e.code ?? '';
  const say = (what: string) => new ConfigError(`AVITO_SYNC_DB: ${what} (${shown}).`, 'AVITO_SYNC_DB', { cause: err });
  if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET'].includes(code) || /timeout/i.test(e.message ?? '')) {
    return say('cannot connect to the PostgreSQL server; check the host and port, and that the server is running and accepts connections');
  }
  if (code === '28P01' || code === '28000' || /password/i.test(e.message ?? '')) {
    return say('PostgreSQL refused the user name or password; check the credentials in the URL');
  }
  if (code === '3D000') {
    return say('the database in the URL does not exist on that PostgreSQL server; create it (createdb) or fix the name');
  }
  return say(`PostgreSQL could not be opened: ${(e.message ?? String(err)).replaceAll(/:[^:@/]*@/g, ':@')}`);
}
