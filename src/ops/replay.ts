import type { ActiveConnector } from '../connector/registry.js';
import type { Ledger } from '../ledger/database.js';
import { forgetConnectorProgress } from '../ledger/replay-reset.js';

/**
 * Prepares a connector to receive the whole ledger again (a new CRM, or after a mapping change):
 * its outbox, conversations and enqueue cursors are dropped and the connector forgets cached CRM
 * ids; the next dispatch projects every message again. Avito is not asked for anything.
 */
export async function resetForReplay(ledger: Ledger, c: ActiveConnector): Promise<void> {
  const connector = c.definition.id;
  await forgetConnectorProgress(ledger, c.accountId, connector);
  await c.instance.forgetCrmObjects?.();
}
