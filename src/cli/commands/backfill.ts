import type { Command } from 'commander';
import { OperationalError, ValidationError } from '../../errors.js';
import { backfillAccount, type BackfillReport } from '../../sync/backfill.js';
import { out, withRuntime, type GlobalOptions } from '../context.js';
import { Progress } from '../progress.js';

function parseSince(raw: string): number {
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(raw) ? `${raw}T00:00:00Z` : raw);
  if (!Number.isFinite(t)) throw new ValidationError(`--since must be a date like 2026-01-31 or 2026-01-31T12:00:00Z; got "${raw}".`);
  return Math.floor(t / 1000);
}

export function registerBackfill(program: Command): void {
  program
    .command('backfill')
    .description('import all reachable history; resumable; a progress bar on a TTY, log lines otherwise')
    .option('--since <date>', 'only chats updated since this date (YYYY-MM-DD or ISO time)')
    .option('--dry-run', 'fill the ledger and say what the CRM would get, without writing to it')
    .option('--ledger-only', 'fill the ledger only; deliver nothing')
    .option('--json', 'print the summary as JSON')
    .action(async (opts: { since?: string; dryRun?: boolean; ledgerOnly?: boolean; json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const since = opts.since ? parseSince(opts.since) : undefined;
      const reports = await withRuntime(g, { avito: true }, async (rt) => {
        const progress = new Progress(rt.log);
        const all: BackfillReport[] = [];
        // Ctrl-C: what is stored stays (each partition commits with its rows); give the terminal
        // its cursor back and say how to go on. 130 = killed by SIGINT, as shells report it.
        const interrupted = () => {
          progress.stop();
          process.stderr.write('\navito-sync: backfill interrupted; everything stored so far is kept. Run the same command again to resume where it stopped.\n');
          process.exit(130);
        };
        process.once('SIGINT', interrupted);
        process.once('SIGTERM', interrupted);
        try {
          for (const acc of rt.accounts.filter((a) => !g.account || a.config.id === g.account)) {
            all.push(await backfillAccount(rt, acc, {
              ...(since !== undefined ? { since } : {}), dryRun: Boolean(opts.dryRun), ledgerOnly: Boolean(opts.ledgerOnly),
              onProgress: (p) => progress.update(`${rt.accounts.length > 1 ? `${p.account} ` : ''}${p.phase}`, p.done, p.total, p.unit, { messages: p.messages, delivered: p.delivered }),
            }));
          }
        } finally {
          progress.stop();
          process.off('SIGINT', interrupted);
          process.off('SIGTERM', interrupted);
        }
        return all;
      });
      if (opts.json) out(JSON.stringify(reports, null, 2));
      else for (const r of reports) out(summary(r));
      const failed = reports.find((r) => r.error);
      if (failed) throw new OperationalError(`Backfill of ${failed.account} stopped: ${failed.error} Run the same command again to resume.`);
    });
}

function summary(r: BackfillReport): string {
  const lines = [
    `${r.account}: backfill ${r.resumed ? 'resumed' : 'run'} ${r.run}${r.error ? ' — STOPPED' : ' — done'}`,
    `  partitions: ${r.partitions.fetched} fetched, ${r.partitions.skipped} already done (of ${r.partitions.total}); items: ${r.items}`,
    `  chats in the ledger: ${r.chatsInLedger}; new messages: ${r.messagesNew}; Avito requests: ${r.avitoRequests}`,
    `  time: ${r.totalSeconds.toFixed(1)} s (the Avito side done after ${r.avitoSeconds.toFixed(1)} s; delivery runs beside it)`,
  ];
  for (const d of r.delivery) lines.push(`  → ${d.connector}: ${d.report.delivered} delivered, ${d.report.conversationsCreated} new conversations, ${d.report.dead} dead${d.held ? `; ${d.held} held by another process (a running \`avito-sync run\` delivers them)` : ''}${d.report.halted ? `; stopped: ${d.report.halted}` : ''}`);
  for (const d of r.dryRun ?? []) lines.push(`  dry run → ${d.connector}: would create up to ${d.contacts} contacts, ${d.leads} leads and ${d.notes} notes (nothing was written to the CRM)`);
  if (r.unreachable.length) {
    lines.push(`  out of reach (Avito's paging caps): ${r.unreachable.length}`);
    for (const u of r.unreachable.slice(0, 20)) lines.push(`    - ${u}`);
    if (r.unreachable.length > 20) lines.push(`    … and ${r.unreachable.length - 20} more (--json lists all)`);
  }
  if (r.error) lines.push(`  error: ${r.error}`);
  return lines.join('\n');
}
