import type { ActiveConnector } from '../connector/registry.js';
import type { Ledger } from '../ledger/database.js';

/**
 * Prepares a connector to receive the whole ledger again (a new CRM, or after a mapping change):
 * its outbox, conversations and enqueue cursors are dropped and the connector forgets cached CRM
 * ids; the next dispatch projects every message again. Avito is not asked for anything.
 */
export async function resetForReplay(ledger: Ledger, c: ActiveConnector): Promise<void> {
  const connector = c.definition.id;
  await ledger.transaction(async (trx) => {
    await trx.deleteFrom('deliveries').where('account_id', '=', c.accountId).where('connector', '=', connector).execute();
    await trx.deleteFrom('conversations').where('account_id', '=', c.accountId).where('connector', '=', connector).execute();
    await trx.deleteFrom('conversation_links').where('account_id', '=', c.accountId).where('connector', '=', connector).execute();
    await trx.deleteFrom('cursors').where('account_id', '=', c.accountId).where('name', 'in', [`enqueue:${connector}`, `enqueue-deleted:${connector}`, `replies:${connector}`, `actions:${connector}`]).execute();
  });
  await c.instance.forgetCrmObjects?.();
}
