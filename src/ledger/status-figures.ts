import type { LedgerDb } from './database.js';
import type { DeliveriesTable } from './tables.js';

/** The figures `status` shows, read from the ledger only (no remote calls). */

/** Chats or messages the ledger holds for an account. */
export async function countAccountRows(db: LedgerDb, table: 'chats' | 'messages', accountId: string): Promise<number> {
  const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).where('account_id', '=', accountId).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** An account's deliveries counted by connector and status (the backlog `status` prints). */
export async function deliveryBacklog(db: LedgerDb, accountId: string): Promise<{ connector: string; status: DeliveriesTable['status']; n: number }[]> {
  const rows = await db
    .selectFrom('deliveries')
    .select(['connector', 'status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('account_id', '=', accountId)
    .groupBy(['connector', 'status'])
    .execute();
  return rows.map((r) => ({ connector: r.connector, status: r.status, n: Number(r.n) }));
}

/** Connectors that keep any state for an account (a connector may have state and no deliveries yet). */
export async function connectorsWithState(db: LedgerDb, accountId: string): Promise<string[]> {
  const rows = await db.selectFrom('connector_state').select('connector').distinct().where('account_id', '=', accountId).execute();
  return rows.map((r) => r.connector);
}

/** Chats of an account that have a conversation (lead, deal) in a connector's CRM. */
export async function countConversations(db: LedgerDb, accountId: string, connector: string): Promise<number> {
  const row = await db.selectFrom('conversations').select((eb) => eb.fn.countAll<number>().as('n')).where('account_id', '=', accountId).where('connector', '=', connector).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** What a connector says about itself for `status`: its store keys under `status:`, without the prefix. */
export async function connectorStatusInfo(db: LedgerDb, accountId: string, connector: string): Promise<Record<string, string>> {
  const rows = await db
    .selectFrom('connector_state')
    .select(['key', 'value'])
    .where('account_id', '=', accountId)
    .where('connector', '=', connector)
    .where('key', 'like', 'status:%')
    .orderBy('key')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.key.slice('status:'.length), r.value]));
}

/** Whether a connector delivered anything for the account after `at` (epoch ms). */
export async function deliveredAfter(db: LedgerDb, accountId: string, connector: string, at: number): Promise<boolean> {
  const row = await db.selectFrom('deliveries').select('id').where('account_id', '=', accountId).where('connector', '=', connector).where('status', '=', 'delivered').where('updated_at', '>', at).limit(1).executeTakeFirst();
  return row !== undefined;
}
