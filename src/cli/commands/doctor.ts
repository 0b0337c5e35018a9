import type { Command } from 'commander';
import type { ConnectorDefinition } from '../../connector-sdk/contract.js';
import { avitoChecks, ledgerChecks, webhookReachability, type CheckResult } from '../../doctor/checks.js';
import { OperationalError } from '../../errors.js';
import { avitoWebhookUrl, webhookSecret } from '../../sync/webhook-secret.js';
import { out, withRuntime, type GlobalOptions } from '../context.js';

const MARK = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

/** What to set to turn a connector on, in each known connector's own words. */
function noConnectorAction(known: readonly ConnectorDefinition[]): string {
  const ways = known.map((d) => {
    const enabling = d.env.filter((v) => v.enables).map((v) => v.name);
    return enabling.length ? `${enabling.join(' or ')} for ${d.displayName}` : `AVITO_SYNC_CONNECTORS=${d.id} for ${d.displayName}`;
  });
  return `Set ${ways.length ? `${ways.join('; ')} (see its README for the rest)` : 'AVITO_SYNC_CONNECTORS'} to deliver to a CRM.`;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('checks config, credentials, scopes, tariff (402), employee-key symptoms, webhooks')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const results = await withRuntime(g, { avito: true }, async (rt) => {
        const all: CheckResult[] = [{ check: 'configuration', verdict: 'ok', detail: `${rt.config.accounts.length} account(s)${rt.config.configFile ? ` from ${rt.config.configFile}` : ''}` }];
        all.push(...ledgerChecks(rt));
        const hookUrl = rt.config.publicUrl ? avitoWebhookUrl(rt.config.publicUrl, await webhookSecret(rt.ledger.db, rt.config.webhookSecret)) : undefined;
        for (const acc of rt.accounts) {
          const known = await rt.ledger.db.selectFrom('chats').select('chat_id').where('account_id', '=', acc.config.id).orderBy('updated', 'desc').limit(1).executeTakeFirst();
          const checks = await avitoChecks(acc.client, { configuredUserId: acc.config.avito.userId, publicWebhookUrl: hookUrl, knownChatId: known?.chat_id });
          all.push(...checks.map((c) => (rt.accounts.length > 1 ? { ...c, check: `${acc.config.id}: ${c.check}` } : c)));
        }
        all.push(await webhookReachability(hookUrl));
        for (const c of rt.connectors) {
          const checks = await c.instance.checkAccess().catch((err: unknown) => [{ check: `${c.definition.displayName} access`, verdict: 'fail' as const, detail: err instanceof Error ? err.message : String(err) }]);
          all.push(...checks.map((x) => (rt.accounts.length > 1 ? { ...x, check: `${c.accountId}: ${x.check}` } : x)));
        }
        if (rt.connectors.length === 0) all.push({ check: 'CRM connectors', verdict: 'warn', detail: 'none enabled: messages stay in the ledger', action: noConnectorAction(rt.config.connectorDefinitions) });
        return all;
      });
      if (opts.json) out(JSON.stringify(results, null, 2));
      else for (const r of results) out(`${MARK[r.verdict]} ${r.check}: ${r.detail}${r.action ? `\n       → ${r.action}` : ''}`);
      const failed = results.filter((r) => r.verdict === 'fail');
      if (failed.length) throw new OperationalError(`${failed.length} check(s) failed: ${failed.map((f) => f.check).join(', ')}.`);
    });
}
