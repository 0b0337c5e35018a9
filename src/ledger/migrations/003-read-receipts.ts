import type { Kysely } from 'kysely';
import type { ColumnTypes } from './column-types.js';

/**
 * Read receipts: when the buyer read a reply we sent (Avito's `read` on our message), when we
 * last looked, and whether the CRM has been told.
 */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  await db.schema.alterTable('replies').addColumn('read_at', t.int).execute();
  await db.schema.alterTable('replies').addColumn('read_checked_at', t.int).execute();
  await db.schema.alterTable('replies').addColumn('read_reported', t.int, (c) => c.notNull().defaultTo(0)).execute();
}
