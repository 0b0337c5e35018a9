import type { Ledger } from './database.js';

/**
 * Drops what one connector of an account was told (its outbox, conversations, links) and its
 * enqueue, reply and action cursors, in one transaction: the next dispatch projects every
 * message again (`replay`).
 */
export async function forgetConnectorProgress(ledger: Ledger, accountId: string, connector: string): Promise<void> {
  await ledger.transaction(async (trx) => {
    await trx.deleteFrom('deliveries').where('account_id', '=', accountId).where('connector', '=', connector).execute();
    await trx.deleteFrom('conversations').where('account_id', '=', accountId).where('connector', '=', connector).execute();
    await trx.deleteFrom('conversation_links').where('account_id', '=', accountId).where('connector', '=', connector).execute();
    await trx.deleteFrom('cursors').where('account_id', '=', accountId).where('name', 'in', [`enqueue:${connector}`, `enqueue-deleted:${connector}`, `replies:${connector}`, `actions:${connector}`]).execute();
  });
}
