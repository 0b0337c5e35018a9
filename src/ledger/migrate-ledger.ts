import path from 'node:path';
import { sql } from 'kysely';
import { ConfigError } from '../errors.js';
import type { LedgerTables } from './tables.js';
import { isPostgresUrl, redactUrl } from './location.js';
import { openSqliteLedger } from './sqlite-ledger.js';
import { requireExistingLedger } from './ledger-file.js';
import { acquireWriterLock } from './writer-lock.js';

type Table = keyof LedgerTables;

/**
 * What is copied: every table that holds the ledger's data — accounts, tokens, chats, messages,
 * voice files, cursors, webhook events, settings, item errors, conversations and their links, CRM
 * actions, deliveries (the outbox, dead letters included), connector state, replies and their
 * parts. A table added by a later migration must be added here (the test copies a ledger with
 * every table filled and compares counts).
 */
export const COPIED_TABLES = [
  'accounts', 'tokens', 'chats', 'messages', 'voice_files', 'cursors', 'webhook_events', 'settings', 'item_errors',
  'conversations', 'conversation_links', 'crm_actions', 'deliveries', 'connector_state', 'replies', 'reply_sends',
] as const satisfies readonly Table[];
/**
 * Which process holds what right now, and the console's logins and pending OAuth connects:
 * meaningless in another database (or safer left behind: a move logs operators out), so not copied.
 */
export const RUNTIME_TABLES = ['lease_owners', 'account_leases', 'request_slots', 'console_sessions', 'oauth_states'] as const satisfies readonly Table[];
/** Compile-time: a table added to the ledger must be listed in one of the two. */
type Unlisted = Exclude<Table, (typeof COPIED_TABLES)[number] | (typeof RUNTIME_TABLES)[number]>;
export const EVERY_TABLE_LISTED: [Unlisted] extends [never] ? true : never = true;

/** Rows per INSERT: PostgreSQL takes at most 65,535 parameters in one statement. */
const PARAMETERS_PER_INSERT = 30_000;
/** Rows read from SQLite at a time. */
const READ_BATCH = 5_000;

export interface MigrateLedgerOptions {
  /** Empty the target's tables first (in the same transaction) instead of refusing a target that holds data. */
  replace?: boolean;
  /** Called after each table is copied. */
  onTable?: (table: string, rows: number) => void;
}

export interface MigrateLedgerReport {
  from: string;
  /** The PostgreSQL URL without its password. */
  to: string;
  tables: { table: string; rows: number }[];
  /** Rows the target held and `replace` removed (0 for an empty target). */
  replaced: number;
}

/**
 * `avito-sync migrate-ledger --from FILE --to postgres://…` (issue 12, item 5): moves a SQLite
 * ledger into PostgreSQL without losing a cursor, a token or an outbox row. The source is
 * migrated to this version's schema first and held with the writer lock (no daemon may write to
 * it meanwhile); the target gets the same schema, and every row goes in ONE PostgreSQL
 * transaction: either all of it is there, with each table's count checked against the source
 * before the commit, or nothing is. Identity sequences are moved past the copied ids. A target
 * that already holds data is refused unless `replace` is given.
 */
export async function migrateLedger(fromFile: string, toUrl: string, opts: MigrateLedgerOptions = {}): Promise<MigrateLedgerReport> {
  if (!isPostgresUrl(toUrl)) throw new ConfigError(`--to must be a PostgreSQL URL (postgres://user:password@host:port/db), not "${redactUrl(toUrl)}".`, '--to');
  if (isPostgresUrl(fromFile)) throw new ConfigError('--from must be a SQLite ledger file; the ledger is on PostgreSQL already.', '--from');
  requireExistingLedger(fromFile);
  // No daemon or sync may write to the source while it is copied (a second one exits 2 naming this one).
  const lock = acquireWriterLock(path.resolve(fromFile), 'process');
  try {
    const source = await openSqliteLedger(fromFile, { mustExist: true });
    try {
      let target;
      try {
        target = await (await import('./postgres-ledger.js')).openPostgresLedger(toUrl.trim(), { poolSize: 2 });
      } catch (err) {
        // The connection errors name AVITO_SYNC_DB; here the URL came from --to.
        if (err instanceof ConfigError && err.key === 'AVITO_SYNC_DB') throw new ConfigError(err.message.replace(/^AVITO_SYNC_DB/, '--to'), '--to', { cause: err });
        throw err;
      }
      try {
        const tables: { table: string; rows: number }[] = [];
        let replaced = 0;
        await target.transaction(async (trx) => {
          const held: { table: string; n: number }[] = [];
          for (const t of COPIED_TABLES) {
            const n = Number((await trx.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
            if (n > 0) held.push({ table: t, n });
          }
          if (held.length) {
            if (!opts.replace) {
              throw new ConfigError(
                `${target!.file} already holds a ledger (${held.map((h) => `${h.table}: ${h.n}`).join(', ')}); nothing was copied. Point --to at an empty database, or add --replace to empty it first (its rows are lost).`,
                '--to',
              );
            }
            for (const h of held) {
              await sql`DELETE FROM ${sql.table(h.table)}`.execute(trx);
              replaced += h.n;
            }
          }
          for (const t of COPIED_TABLES) {
            const expected = Number((await source.db.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
            let copied = 0;
            // By rowid: stable, and each batch is an index range (no OFFSET scans).
            for (let last = -1; ;) {
              const batch = (await sql<Record<string, unknown> & { __rowid: number }>`SELECT rowid AS __rowid, * FROM ${sql.table(t)} WHERE rowid > ${last} ORDER BY rowid LIMIT ${READ_BATCH}`.execute(source.db)).rows;
              if (batch.length === 0) break;
              last = batch[batch.length - 1]!.__rowid;
              const rows = batch.map(({ __rowid: _, ...row }) => row);
              const per = Math.max(1, Math.floor(PARAMETERS_PER_INSERT / Math.max(1, Object.keys(rows[0]!).length)));
              for (let i = 0; i < rows.length; i += per) {
                // The same table's rows, column for column (both dialects run the same migrations).
                await trx.insertInto(t).values(rows.slice(i, i + per) as never).execute();
              }
              copied += rows.length;
            }
            const there = Number((await trx.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
            if (copied !== expected || there !== expected) {
              throw new Error(`${t}: the source holds ${expected} rows, ${copied} were read and the target holds ${there}; nothing was copied (the transaction was rolled back).`);
            }
            tables.push({ table: t, rows: expected });
            opts.onTable?.(t, expected);
          }
          // Ids generated from now on continue after the copied ones.
          const identities = await sql<{ table_name: string; column_name: string }>`SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = current_schema() AND is_identity = 'YES'`.execute(trx);
          for (const c of identities.rows) {
            await sql`SELECT setval(pg_get_serial_sequence(${c.table_name}, ${c.column_name}), GREATEST((SELECT max(${sql.ref(c.column_name)}) FROM ${sql.table(c.table_name)}), 0) + 1, false)`.execute(trx);
          }
        });
        return { from: source.file, to: target.file, tables, replaced };
      } finally {
        await target.close();
      }
    } finally {
      await source.close();
    }
  } finally {
    lock.release();
  }
}
