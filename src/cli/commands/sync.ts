import type { Command } from 'commander';
import { OperationalError } from '../../errors.js';
import { acquireWriterLock } from '../../ledger/writer-lock.js';
import { syncOnce } from '../../sync/sync-once.js';
import { out, withRuntime, type GlobalOptions } from '../context.js';

export function registerSync(program: Command): void {
  program
    .command('sync')
    .description('one full pass in both directions, then exit')
    .option('--once', 'one pass (the default and only mode; `run` is the daemon that keeps going)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const report = await withRuntime(g, { avito: true }, async (rt) => {
        // Sends replies and polls like the daemon: never beside one on the same SQLite file.
        const lock = rt.ledger.dialect === 'sqlite' ? acquireWriterLock(rt.ledger.file, 'process') : { release() {} };
        try {
          return await syncOnce(rt);
        } finally {
          lock.release();
        }
      });
      if (opts.json) out(JSON.stringify(report, null, 2));
      else {
        for (const a of report.accounts) {
          if (a.error) out(`${a.account}: failed: ${a.error}`);
          else if (a.poll) out(`${a.account}: ${a.poll.chatsSeen} chats seen, ${a.poll.chatsFetched} fetched, ${a.poll.messagesNew} new messages${a.poll.errors ? `, ${a.poll.errors} chats failed (see status)` : ''}`);
        }
        for (const d of report.deliveries) {
          if (d.error) out(`${d.account} → ${d.connector}: failed: ${d.error}`);
          else if (d.report) out(`${d.account} → ${d.connector}: ${d.report.delivered} delivered, ${d.report.conversationsCreated} new conversations, ${d.report.conversationsUpdated ? `${d.report.conversationsUpdated} named after their chat's details, ` : ''}${d.report.retried} to retry, ${d.report.dead} dead${d.report.halted ? `; stopped: ${d.report.halted}` : ''}`);
        }
        for (const r of report.replies) {
          if (r.error) out(`${r.connector} → ${r.account}: replies failed: ${r.error}`);
          else if (r.report && (r.report.sent || r.report.failed || r.report.dead)) out(`${r.connector} → ${r.account}: ${r.report.sent} replies sent, ${r.report.failed} to retry, ${r.report.dead} failed for good`);
        }
      }
      const failed = report.accounts.find((a) => a.error);
      if (failed) throw new OperationalError(`Account ${failed.account} did not sync: ${failed.error}`);
      const halted = report.deliveries.find((d) => d.error ?? d.report?.halted);
      if (halted) throw new OperationalError(`Delivery to ${halted.connector} for ${halted.account} stopped: ${halted.error ?? halted.report?.halted}`);
    });
}
