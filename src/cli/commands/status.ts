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
      const report = await withRuntime(g, { avito: false, readOnly: true }, (rt) => collectStatus(rt.ledger.db, rt.ledger.file, Date.now(), new Map(rt.config.connectorDefinitions.map((d) => [d.id, d.displayName]))));
      if (opts.json) {
        out(JSON.stringify(report, null, 2));
        return;
      }
      out(`ledger: ${report.ledger}`);
      const d = report.daemon;
      out(d.running ? `daemon: running (pid ${d.pid} on ${d.host}, since ${d.startedAt}, last heartbeat ${d.lastSeen})`
        : d.lastSeen ? `daemon: not running (last seen ${d.lastSeen}${d.host ? ` on ${d.host}` : ''})` : 'daemon: not running (never started on this ledger)');
      for (const a of report.accounts) {
        out(`account ${a.id} (Avito user ${a.avitoUserId ?? 'not known yet'})${a.state ? `: ${a.state}${a.state !== 'running' && report.daemon.accounts[a.id] ? ` since ${report.daemon.accounts[a.id]!.since}` : ''}` : ''}`);
        out(`  chats ${a.chats}, messages ${a.messages}, voice files pending ${a.voicePending}`);
        const p = a.lastPoll;
        out(`  last poll: ${p ? (p.ok ? `${p.at}, ok` : `${p.at}, FAILED: ${p.error ?? 'unknown error'}${p.lastGoodAt ? ` (last good ${p.lastGoodAt})` : ''}`) : 'never (by a daemon)'}`);
        const l = a.lease;
        if (l) out(`  worked by: ${l.held ? `pid ${l.pid ?? '?'} on ${l.host ?? '?'} (${l.owner}), since ${l.acquiredAt}, lease until ${l.expiresAt}` : `nobody now (the lease of ${l.owner} ran out at ${l.expiresAt})`}`);
        out(`  token: ${a.token ? (a.token.expired ? 'expired' : `valid until ${a.token.expiresAt ?? 'forever'}`) : 'none yet'}`);
        // Cursors are internal progress marks; shown, labelled, only when asked for.
        if (g.verbose) for (const [name, value] of Object.entries(a.cursors)) out(`  internal cursor ${name} = ${value}${/^\d{10}$/.test(value) ? ` (${new Date(Number(value) * 1000).toISOString()})` : ''}`);
        for (const c of a.connectors) {
          const b = c.backlog;
          out(`  → ${c.displayName}: ${b.delivered} delivered, ${b.pending + b.leased} waiting, ${b.dead} dead letters, ${b.skipped} echoes skipped, ${c.conversations} conversations${c.awaitingDetails ? ` (${c.awaitingDetails} to be named after their chat's details)` : ''}`);
          for (const [k, v] of Object.entries(c.info ?? {})) out(`    ${k}: ${v}`);
          if (c.paused) out(`    PAUSED ${c.paused.until === 'indefinitely' ? 'until resumed' : `until ${c.paused.until}`}: ${c.paused.reason}`);
          if (c.lastError) out(`    last error: ${c.lastError}`);
        }
        for (const e of a.lastErrors) out(`  error ${e.at} ${e.scope} ${e.ref ?? ''}: ${e.error}`);
      }
    });
}
