import { describeError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { Delivery } from './delivery.js';
import type { DispatchReport } from './dispatcher.js';
import { pollAccount, type PollReport } from './poller.js';
import type { ReadReceiptReport } from './read-receipts.js';
import type { ReplyReport } from './replies.js';

export interface SyncOnceReport {
  accounts: { account: string; poll?: PollReport; error?: string }[];
  deliveries: { account: string; connector: string; report?: DispatchReport; error?: string }[];
  replies: { account: string; connector: string; report?: ReplyReport; error?: string }[];
  /** Read receipts, for connectors with the capability. */
  reads: { account: string; connector: string; report?: ReadReceiptReport; error?: string }[];
}

/**
 * One full pass (design.md §3 `sync --once`): every account's chats and messages into the
 * ledger, then the ledger into every enabled connector. Accounts and connectors fail
 * independently; the report says which failed and why.
 */
export async function syncOnce(rt: Runtime): Promise<SyncOnceReport> {
  const report: SyncOnceReport = { accounts: [], deliveries: [], replies: [], reads: [] };
  for (const acc of rt.accounts) {
    try {
      const poll = await pollAccount(
        { ledger: rt.ledger, client: acc.client, log: rt.log, voice: rt.voice },
        { chatTypes: acc.config.avito.chatTypes },
      );
      report.accounts.push({ account: acc.config.id, poll });
    } catch (err) {
      report.accounts.push({ account: acc.config.id, error: describeError(err) });
    }
  }
  const delivery = new Delivery(rt);
  // A reply cut short by a kill holds its chat's messages back: settle it first, so they go in
  // this pass rather than the next (issue 9, item 11).
  for (const u of delivery.units) await u.replies?.run({ interruptedOnly: true }).catch(() => undefined);
  for (const u of delivery.units) {
    try {
      report.deliveries.push({ account: u.accountId, connector: u.connectorId, report: await u.dispatcher.run() });
    } catch (err) {
      report.deliveries.push({ account: u.accountId, connector: u.connectorId, error: describeError(err) });
    }
  }
  // CRM → Avito: replies found now are sent now; their echoes come back on the next pass.
  for (const u of delivery.units) {
    if (!u.replies) continue;
    try {
      await u.replies.poll();
      await u.replies.actions();
      report.replies.push({ account: u.accountId, connector: u.connectorId, report: await u.replies.run() });
    } catch (err) {
      report.replies.push({ account: u.accountId, connector: u.connectorId, error: describeError(err) });
    }
  }
  // Replies the buyer has read since (sent in an earlier pass): the CRM shows it.
  for (const u of delivery.units) {
    if (!u.reads?.enabled) continue;
    try {
      report.reads.push({ account: u.accountId, connector: u.connectorId, report: await u.reads.run() });
    } catch (err) {
      report.reads.push({ account: u.accountId, connector: u.connectorId, error: describeError(err) });
    }
  }
  await delivery.drain();
  return report;
}
