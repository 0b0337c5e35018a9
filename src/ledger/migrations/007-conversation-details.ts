import { sql, type Kysely } from 'kysely';
import type { ColumnTypes } from './column-types.js';

/**
 * Conversations made before their chat's details arrived: a chat known only from an Avito webhook
 * has no buyer name or item title yet, and when Avito gives them later than the dispatcher waits,
 * the CRM conversation is made with placeholder names. `details_pending = 1` marks such a
 * conversation until its connector has named it after the details (capability
 * `updateConversations`); only conversations of connectors that can are marked, so no mark waits
 * for good. `details_attempts` and `details_retry_at` (epoch ms) pace retries after transient
 * failures. A partial index holds only the marked few: the dispatcher asks for them every round.
 */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  await db.schema.alterTable('conversations').addColumn('details_pending', t.int, (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('conversations').addColumn('details_attempts', t.int, (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('conversations').addColumn('details_retry_at', t.int).execute();
  await sql`CREATE INDEX conversations_awaiting_details ON conversations (account_id, connector, chat_id) WHERE details_pending = 1`.execute(db);
}
