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

/** Message id → the CRM's id for it, of every message delivered to one connector for an account. */
export async function deliveredRemoteIds(db: LedgerDb, accountId: string, connector: string): Promise<Map<string, string>> {
  const rows = await db.selectFrom('deliveries').select(['message_id', 'remote_id']).where('account_id', '=', accountId).where('connector', '=', connector).where('status', '=', 'delivered').execute();
  return new Map(rows.filter((r) => r.remote_id !== null).map((r) => [r.message_id, r.remote_id!]));
}
