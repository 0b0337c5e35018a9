import type { Runtime } from '../runtime.js';
import { pollAccount, type PollReport } from './poller.js';

export interface SyncOnceReport {
  accounts: { account: string; poll?: PollReport; error?: string }[];
}

/**
 * One full pass (design.md §3 `sync --once`): every account's chats and messages into the
 * ledger. Accounts fail independently; the report says which failed and why.
 */
export async function syncOnce(rt: Runtime): Promise<SyncOnceReport> {
  const report: SyncOnceReport = { accounts: [] };
  for (const acc of rt.accounts) {
    try {
      const poll = await pollAccount(
        { ledger: rt.ledger, client: acc.client, log: rt.log, voice: rt.voice },
        { chatTypes: acc.config.avito.chatTypes },
      );
      report.accounts.push({ account: acc.config.id, poll });
    } catch (err) {
      report.accounts.push({ account: acc.config.id, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return report;
}
