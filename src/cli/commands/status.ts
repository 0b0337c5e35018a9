import type { Command } from 'commander';
import { collectStatus } from '../../status/collect-status.js';
import { out, withRuntime, type GlobalOptions } from '../context.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('accounts, cursors, counts, queue depths, dead letters, last errors, token expiry')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const report = await withRuntime(g, { avito: false }, (rt) => collectStatus(rt.ledger.db, rt.ledger.file, Date.now(), new Map(rt.config.connectorDefinitions.map((d) => [d.id, d.displayName]))));
      if (opts.json) {
        out(JSON.stringify(report, null, 2));
        return;
      }
      out(`ledger: ${report.ledger}`);
      for (const a of report.accounts) {
        out(`account ${a.id} (Avito user ${a.avitoUserId ?? 'not known yet'})`);
        out(`  chats ${a.chats}, messages ${a.messages}, voice files pending ${a.voicePending}`);
        out(`  token: ${a.token ? (a.token.expired ? 'expired' : `valid until ${a.token.expiresAt ?? 'forever'}`) : 'none yet'}`);
        for (const [name, value] of Object.entries(a.cursors)) out(`  cursor ${name} = ${value}${/^\d{10}$/.test(value) ? ` (${new Date(Number(value) * 1000).toISOString()})` : ''}`);
        for (const c of a.connectors) {
          const b = c.backlog;
          out(`  → ${c.displayName}: ${b.delivered} delivered, ${b.pending + b.leased} waiting, ${b.dead} dead letters, ${b.skipped} echoes skipped, ${c.conversations} conversations`);
          if (c.paused) out(`    PAUSED until ${c.paused.until}: ${c.paused.reason}`);
          if (c.lastError) out(`    last error: ${c.lastError}`);
        }
        for (const e of a.lastErrors) out(`  error ${e.at} ${e.scope} ${e.ref ?? ''}: ${e.error}`);
      }
    });
}
