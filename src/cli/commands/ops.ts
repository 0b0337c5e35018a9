import type { Command } from 'commander';
import { ConfigError, OperationalError, ValidationError } from '../../errors.js';
import { listDeadLetters, retryDeadLetters } from '../../ledger/dead-letters.js';
import { countMessages } from '../../ledger/messages.js';
import { reconcileAccount } from '../../ops/reconcile.js';
import { resetForReplay } from '../../ops/replay.js';
import { Delivery } from '../../sync/delivery.js';
import { out, withRuntime, type GlobalOptions } from '../context.js';
import { Progress } from '../progress.js';

/** Operator tools: dead letters, replay into a connector, the gap report. */
export function registerOps(program: Command): void {
  const dl = program.command('dead-letters').description('what failed for good, and sending it again');
  dl.command('list')
    .description('dead letters with their error and attempts')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const rows = await withRuntime(g, { avito: false, readOnly: true }, (rt) => listDeadLetters(rt.ledger.db, g.account));
      if (opts.json) return out(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return out('no dead letters');
      for (const r of rows) out(`${r.id.padEnd(8)} ${r.kind.padEnd(8)} ${r.account}/${r.connector} chat ${r.chat} ${r.kind === 'delivery' ? 'message' : 'reply'} ${r.ref} · ${r.attempts} attempts · ${r.at}\n         ${r.error ?? ''}`);
    });
  dl.command('retry [id]')
    .description('send one dead letter (d12, r3) or all of them (--all) again, now')
    .option('--all', 'every dead letter')
    .action(async (id: string | undefined, opts: { all?: boolean }, cmd: Command) => {
      if (!id && !opts.all) throw new ValidationError('Give a dead letter id (see `dead-letters list`) or --all.');
      if (id && !/^[dr]\d+$/.test(id)) throw new ValidationError(`"${id}" is not a dead letter id: they look like d12 (a delivery) or r3 (a reply).`);
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await withRuntime(g, { avito: true }, async (rt) => {
        const n = await retryDeadLetters(rt.ledger.db, opts.all ? 'all' : [id!]);
        if (n === 0) throw new ValidationError(id ? `No dead letter ${id}.` : 'There are no dead letters.');
        out(`${n} dead letter(s) queued again; sending now`);
        const delivery = new Delivery(rt);
        for (const r of await delivery.runAll()) out(`  → ${r.connectorId} (${r.accountId}): ${r.report.delivered} delivered, ${r.report.dead} dead again`);
        for (const u of delivery.units) if (u.replies) {
          const rep = await u.replies.run();
          if (rep.sent || rep.dead) out(`  ← replies (${u.accountId}): ${rep.sent} sent, ${rep.dead} failed again`);
        }
      });
    });

  program
    .command('replay')
    .description('re-project the ledger into a connector (a new CRM, or after a mapping change) without fetching Avito again')
    .requiredOption('--connector <name>', 'the connector to replay into')
    .action(async (opts: { connector: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await withRuntime(g, { avito: true }, async (rt) => {
        const targets = rt.connectors.filter((c) => c.definition.id === opts.connector && (!g.account || c.accountId === g.account));
        if (targets.length === 0) throw new ConfigError(`Connector "${opts.connector}" is not enabled: set AVITO_SYNC_CONNECTORS (enabled: ${rt.connectors.map((c) => c.definition.id).join(', ') || 'none'}).`, 'AVITO_SYNC_CONNECTORS');
        for (const t of targets) await resetForReplay(rt.ledger, t);
        const progress = new Progress(rt.log);
        const delivery = new Delivery(rt);
        try {
          for (const u of delivery.units.filter((x) => x.connectorId === opts.connector && targets.some((t) => t.accountId === x.accountId))) {
            const total = await countMessages(rt.ledger.db, u.accountId);
            let delivered = 0;
            let halted: string | undefined;
            for (;;) {
              const r = await u.dispatcher.run();
              delivered += r.delivered + r.reconciled;
              progress.update(`replay ${u.accountId}`, delivered, total, 'messages');
              halted = r.halted;
              if (r.halted || r.delivered + r.reconciled === 0) break;
            }
            progress.stop();
            const counts = await u.dispatcher.outboxCounts;
            out(`${u.accountId} → ${u.connectorId}: ${counts.delivered} of ${total} messages delivered, ${counts.dead} dead, ${counts.pending + counts.leased} waiting${halted ? `; stopped: ${halted}` : ''}`);
            if (halted) throw new OperationalError(`Replay into ${u.connectorId} stopped: ${halted} Run it again to continue.`);
          }
        } finally {
          progress.stop();
          await delivery.drain();
        }
      });
    });

  program
    .command('reconcile')
    .description('compare Avito, the ledger and the CRM over a recent window')
    .requiredOption('--report', 'list every message missing in one of them, with the reason where known')
    .option('--hours <n>', 'the window, in hours', '24')
    .option('--repair', 'queue messages the CRM lost again')
    .option('--json', 'print as JSON')
    .action(async (opts: { hours: string; repair?: boolean; json?: boolean }, cmd: Command) => {
      const hours = Number(opts.hours);
      if (!(hours > 0 && hours <= 24 * 90)) throw new ValidationError(`--hours must be a number of hours from 1 to 2160; got "${opts.hours}".`);
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const since = Math.floor(Date.now() / 1000 - hours * 3600);
      const reports = await withRuntime(g, { avito: true, readOnly: !opts.repair }, async (rt) => {
        const all = [];
        for (const acc of rt.accounts.filter((a) => !g.account || a.config.id === g.account)) {
          const crms = rt.connectors.filter((c) => c.accountId === acc.config.id).map((c) => c.definition.id);
          all.push({ ...(await reconcileAccount(rt, acc, since, { repair: Boolean(opts.repair) })), crmChecked: crms.length > 0, connectors: crms });
        }
        return all;
      });
      if (opts.json) return out(JSON.stringify(reports, null, 2));
      for (const r of reports) {
        // "0 missing" with no CRM to look at would read as "the CRM has everything".
        const crm = r.crmChecked ? `checked in the CRM (${r.connectors.join(', ')}) ${r.checkedInCrm}` : 'the CRM was not checked: no connector is enabled (set AVITO_SYNC_CONNECTORS and the CRM\'s variables)';
        out(`${r.account}: since ${r.since} — Avito ${r.avitoMessages} messages, ledger ${r.ledgerMessages}, ${crm}; ${r.gaps.length} missing${r.crmChecked ? '' : ' between Avito and the ledger'}`);
        for (const gap of r.gaps) out(`  ${gap.created}  chat ${gap.chatId}  message ${gap.messageId}  missing in ${gap.missingIn}: ${gap.reason}`);
      }
    });
}
