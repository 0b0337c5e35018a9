import type { Command } from 'commander';
import { RUNTIME_TABLES, migrateLedger } from '../../ledger/migrate-ledger.js';
import { out } from '../context.js';

/** `avito-sync migrate-ledger --from FILE --to postgres://…` (README "Scaling out"). */
export function registerMigrateLedger(program: Command): void {
  program
    .command('migrate-ledger')
    .description('copy a SQLite ledger into PostgreSQL, in one transaction (then set AVITO_SYNC_DB to the URL)')
    .requiredOption('--from <file>', 'the SQLite ledger file (stop the daemon first)')
    .requiredOption('--to <url>', 'the PostgreSQL database: postgres://user:password@host:port/db (empty)')
    .option('--replace', 'empty the target database\'s ledger tables first instead of refusing (their rows are lost)')
    .action(async (opts: { from: string; to: string; replace?: boolean }) => {
      const r = await migrateLedger(opts.from, opts.to, { replace: Boolean(opts.replace) });
      const total = r.tables.reduce((n, t) => n + t.rows, 0);
      out(`copied ${r.from} → ${r.to} in one transaction: ${total} rows in ${r.tables.length} tables, each count checked against the source`);
      for (const t of r.tables) out(`  ${t.table.padEnd(20)} ${t.rows}`);
      if (r.replaced) out(`  (${r.replaced} rows the target held before were removed: --replace)`);
      out(`not copied (which process holds what; rebuilt by the daemons): ${RUNTIME_TABLES.join(', ')}`);
      out(`next: set AVITO_SYNC_DB=${r.to.replace(/@/, ':<password>@')} for every daemon and start them; keep ${r.from} as a backup, do not run a daemon on it again.`);
    });
}
