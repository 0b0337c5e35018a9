import { PostgresAdapter, sql } from 'kysely';
import type { Logger } from 'pino';
import type { LedgerDb } from './database.js';

/** A small key-value store per (account, connector); the SDK's ConnectorStore has this shape. */
export interface KeyValueStore extends LockedKeyValueStore {
  /** A locked read-modify-write of `key` across processes (see the SDK's `ConnectorStore.update`). */
  update<T>(key: string, fn: (current: string | undefined, store: LockedKeyValueStore) => Promise<T>): Promise<T>;
}

/** The store inside `update`'s lock: its reads and writes are part of the locked transaction. */
export interface LockedKeyValueStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  deletePrefix(prefix: string): Promise<void>;
}

/** The pause controls of one (account, connector); the SDK's ConnectorContext has these members. */
export interface PauseControls {
  pause(until: number, reason: string): Promise<void>;
  paused(): Promise<{ until: number; reason: string } | undefined>;
  resume(): Promise<void>;
}

/** Keys every connector may set that the core reads: a connector refused by its CRM pauses. */
export const PAUSED_UNTIL = 'paused_until';
export const PAUSED_REASON = 'paused_reason';
/**
 * A connector keeps its OAuth grant (tokens, expiry) under keys with this prefix:
 * `avito-sync auth reset --connector NAME` forgets them.
 */
export const CONNECTOR_AUTH_PREFIX = 'oauth_';

/**
 * How long `update` waits for the lock another process holds: longer than one remote call's
 * timeout (a token refresh gives up after 30 s), so a healthy holder is always waited out.
 */
export const STATE_LOCK_WAIT_MS = 60_000;
/** SQLite: how often `update` tries again to start its immediate transaction while another process writes. */
const SQLITE_LOCK_RETRY_MS = 25;

/** The ledger-backed key-value store a connector gets for one account. */
export function connectorStore(db: LedgerDb, accountId: string, connector: string, options: { log?: Logger } = {}): KeyValueStore {
  return {
    ...plainStore(db, accountId, connector),
    update: (key, fn) => lockedUpdate(db, accountId, connector, key, fn, options.log),
  };
}

function plainStore(db: LedgerDb, accountId: string, connector: string): LockedKeyValueStore {
  return {
    async get(key) {
      const row = await db
        .selectFrom('connector_state')
        .select('value')
        .where('account_id', '=', accountId)
        .where('connector', '=', connector)
        .where('key', '=', key)
        .executeTakeFirst();
      return row?.value;
    },
    async set(key, value) {
      const updated_at = Date.now();
      await db
        .insertInto('connector_state')
        .values({ account_id: accountId, connector, key, value, updated_at })
        .onConflict((oc) => oc.columns(['account_id', 'connector', 'key']).doUpdateSet({ value, updated_at }))
        .execute();
    },
    async deletePrefix(prefix) {
      await db
        .deleteFrom('connector_state')
        .where('account_id', '=', accountId)
        .where('connector', '=', connector)
        .where((eb) => eb(eb.fn('substr', ['key', eb.val(1), eb.val(prefix.length)]), '=', prefix))
        .execute();
    },
  };
}

/**
 * `fn` under a lock every process on the ledger respects, in one transaction with what it writes.
 * PostgreSQL: a transaction-scoped advisory lock named after (account, connector, key) — not
 * `SELECT … FOR UPDATE`, because the key may not exist yet (the first code exchange) and a row
 * that is not there cannot be locked; the lock goes with the transaction, also when the holder's
 * connection dies, and works through PgBouncer's transaction mode. SQLite: an immediate
 * transaction (the database's write lock) on this process's one connection, so nothing else of
 * this process reaches the ledger while `fn` runs; started with a bounded wait that yields to the
 * event loop rather than better-sqlite3's blocking busy wait.
 */
async function lockedUpdate<T>(db: LedgerDb, accountId: string, connector: string, key: string, fn: (current: string | undefined, store: LockedKeyValueStore) => Promise<T>, log?: Logger): Promise<T> {
  const run = async (conn: LedgerDb) => {
    const store = plainStore(conn, accountId, connector);
    return fn(await store.get(key), store);
  };
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    const name = `connector_state/${accountId}/${connector}/${key}`;
    return db.transaction().execute(async (trx) => {
      await sql.raw(`SET LOCAL lock_timeout = ${STATE_LOCK_WAIT_MS}`).execute(trx);
      const got = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(hashtextextended(${name}, 0)) AS ok`.execute(trx);
      if (!got.rows[0]?.ok) {
        log?.debug({ key }, 'connector state locked by another process; waiting for it');
        await sql`SELECT pg_advisory_xact_lock(hashtextextended(${name}, 0))`.execute(trx);
      }
      return run(trx);
    });
  }
  return db.connection().execute(async (conn) => {
    await beginImmediate(conn, key, log);
    try {
      const result = await run(conn);
      await sql`COMMIT`.execute(conn);
      return result;
    } catch (err) {
      // Also after a failed COMMIT: the connection must not stay inside the transaction.
      await sql`ROLLBACK`.execute(conn).catch(() => undefined);
      throw err;
    }
  });
}

/** `BEGIN IMMEDIATE`, tried again every SQLITE_LOCK_RETRY_MS while another process holds the write lock. */
async function beginImmediate(conn: LedgerDb, key: string, log?: Logger): Promise<void> {
  const before = (await sql<{ timeout: number }>`PRAGMA busy_timeout`.execute(conn)).rows[0]?.timeout ?? 5000;
  await sql.raw('PRAGMA busy_timeout = 0').execute(conn);
  try {
    const deadline = Date.now() + STATE_LOCK_WAIT_MS;
    for (let waited = false; ; waited = true) {
      try {
        await sql`BEGIN IMMEDIATE`.execute(conn);
        return;
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw err;
        if (!waited) log?.debug({ key }, 'connector state locked by another process; waiting for it');
      }
      await new Promise((r) => setTimeout(r, SQLITE_LOCK_RETRY_MS));
    }
  } finally {
    await sql.raw(`PRAGMA busy_timeout = ${Number(before)}`).execute(conn);
  }
}

/** `until` of a pause that lasts until an operator (or the connector) lifts it. */
export const INDEFINITE = 'indefinitely';

/** A pause's end for people and JSON: an ISO time, or `indefinitely` (a 410, `pause(Infinity)`). */
export function pauseEnd(until: number): string {
  return until >= Number.MAX_SAFE_INTEGER || !Number.isFinite(new Date(until).getTime()) ? INDEFINITE : new Date(until).toISOString();
}

/** Until when (epoch ms) a connector's account is paused, and why; undefined when it is not. */
export async function pausedState(db: LedgerDb, accountId: string, connector: string, now = Date.now()): Promise<{ until: number; reason: string } | undefined> {
  const store = connectorStore(db, accountId, connector);
  const until = Number((await store.get(PAUSED_UNTIL)) ?? 0);
  if (!(until > now)) return undefined;
  return { until, reason: (await store.get(PAUSED_REASON)) ?? 'paused' };
}

/** The pause controls a connector gets in its context (`ctx.pause`, `ctx.paused`, `ctx.resume`). */
export function connectorPauses(db: LedgerDb, accountId: string, connector: string): PauseControls {
  const store = connectorStore(db, accountId, connector);
  return {
    async pause(until, reason) {
      await store.set(PAUSED_REASON, reason);
      await store.set(PAUSED_UNTIL, String(until === Infinity ? Number.MAX_SAFE_INTEGER : until));
    },
    paused: () => pausedState(db, accountId, connector),
    async resume() {
      await store.set(PAUSED_UNTIL, '0');
    },
  };
}

/** Forgets a connector's stored OAuth grant (its `oauth_*` keys) for an account. True when there was one. */
export async function forgetConnectorGrant(db: LedgerDb, accountId: string, connector: string): Promise<boolean> {
  const r = await db.deleteFrom('connector_state').where('account_id', '=', accountId).where('connector', '=', connector)
    .where((eb) => eb(eb.fn('substr', ['key', eb.val(1), eb.val(CONNECTOR_AUTH_PREFIX.length)]), '=', CONNECTOR_AUTH_PREFIX)).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
