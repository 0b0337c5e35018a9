import type { Kysely } from 'kysely';
import { SQLITE_TYPES, type ColumnTypes } from './column-types.js';

/**
 * The console's sessions and OAuth states in the ledger instead of one process's memory: with
 * several daemons behind a load balancer, the next request (or the provider's callback) may reach
 * another process than the one that logged the operator in or issued the state. Both are kept
 * as SHA-256 hashes of the random values, so reading the ledger gives no live session.
 */
export async function up(db: Kysely<unknown>, t: ColumnTypes = SQLITE_TYPES): Promise<void> {
  await db.schema
    .createTable('console_sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('csrf', 'text', (c) => c.notNull())
    .addColumn('created_at', t.int, (c) => c.notNull())
    .addColumn('expires_at', t.int, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('oauth_states')
    .addColumn('state_hash', 'text', (c) => c.primaryKey())
    // `avito`, or a connector id.
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('expires_at', t.int, (c) => c.notNull())
    .execute();
}
