import { chunks } from './chats.js';
import type { LedgerDb } from './database.js';
import type { DeliveriesTable } from './tables.js';
import type { Selectable } from 'kysely';

export type DeliveryRow = Selectable<DeliveriesTable>;

/** The message deliveries (not deletions) of these Avito messages to one connector. */
export async function deliveriesOfMessages(db: LedgerDb, accountId: string, connector: string, messageIds: readonly string[]): Promise<DeliveryRow[]> {
  const out: DeliveryRow[] = [];
  for (const part of chunks(messageIds, 500)) {
    out.push(...(await db.selectFrom('deliveries').selectAll().where('account_id', '=', accountId).where('connector', '=', connector).where('kind', '=', 'message').where('message_id', 'in', part).execute()));
  }
  return out;
}

/** Puts these deliveries back in line, as new (`reconcile --repair`: the CRM lost them). */
export async function requeueDeliveries(db: LedgerDb, ids: readonly number[]): Promise<void> {
  const now = Date.now();
  for (const part of chunks(ids, 500)) await db.updateTable('deliveries').set({ status: 'pending', attempts: 0, next_attempt_at: now, updated_at: now }).where('id', 'in', part).execute();
}

/**
 * What a delivery to `connector` would still create for the account (`backfill --dry-run`): notes
 * for messages not delivered (or skipped) yet, leads for their chats without a conversation, and
 * at most one contact per buyer of those chats.
 */
export async function undeliveredCounts(db: LedgerDb, accountId: string, connector: string): Promise<{ contacts: number; leads: number; notes: number }> {
  const undelivered = db
    .selectFrom('messages as m')
    .where('m.account_id', '=', accountId)
    .where(({ not, exists, selectFrom }) =>
      not(exists(selectFrom('deliveries as d').select('d.id').whereRef('d.account_id', '=', 'm.account_id').whereRef('d.message_id', '=', 'm.message_id').where('d.connector', '=', connector).where('d.status', 'in', ['delivered', 'skipped']))));
  const notes = await undelivered.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  const chats = await undelivered
    .innerJoin('chats as c', (j) => j.onRef('c.account_id', '=', 'm.account_id').onRef('c.chat_id', '=', 'm.chat_id'))
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('conversations as v').select('v.chat_id').whereRef('v.account_id', '=', 'c.account_id').whereRef('v.chat_id', '=', 'c.chat_id').where('v.connector', '=', connector))))
    .select([(eb) => eb.fn.count<number>('c.chat_id').distinct().as('leads'), (eb) => eb.fn.count<number>('c.buyer_id').distinct().as('contacts')])
    .executeTakeFirstOrThrow();
  return { contacts: Number(chats.contacts), leads: Number(chats.leads), notes: Number(notes.n) };
}

/** Message id → the CRM's id for it, of every message delivered to one connector for an account. */
export async function deliveredRemoteIds(db: LedgerDb, accountId: string, connector: string): Promise<Map<string, string>> {
  const rows = await db.selectFrom('deliveries').select(['message_id', 'remote_id']).where('account_id', '=', accountId).where('connector', '=', connector).where('status', '=', 'delivered').execute();
  return new Map(rows.filter((r) => r.remote_id !== null).map((r) => [r.message_id, r.remote_id!]));
}
