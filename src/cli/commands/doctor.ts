import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig, requireAvitoCredentials, type AppConfig } from '../../config/load-config.js';
import { howToEnableConnectors } from '../../connector/enable-hint.js';
import { knownConnectors } from '../../connector/load-modules.js';
import { connectorSettings, createConnectors, enabledDefinitions, type ActiveConnector } from '../../connector/registry.js';
import { newestChatId } from '../../ledger/chats.js';
import { avitoChecks, ledgerChecks, webhookReachability, type CheckResult } from '../../doctor/checks.js';
import { ConfigError, OperationalError, describeError } from '../../errors.js';
import { createLogger } from '../../log/logger.js';
import { createRuntime, type Runtime } from '../../runtime.js';
import { avitoWebhookUrl, webhookSecret } from '../../sync/webhook-secret.js';
import { INTERACTIVE_RETRY, INTERACTIVE_TIMEOUT_MS, out, type GlobalOptions } from '../context.js';

const MARK = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

/**
 * Every check doctor can run, each reported as one line, also when an earlier one failed: a
 * missing variable does not hide the state of the ledger or the CRM. Only a configuration that
 * cannot be read at all stops it (exit 2); any failed check makes the exit code 1.
 */
async function runChecks(g: GlobalOptions, print: (r: CheckResult) => void): Promise<CheckResult[]> {
  const all: CheckResult[] = [];
  const add = (...rs: CheckResult[]) => {
    for (const r of rs) {
      all.push(r);
      print(r);
    }
  };
  let config: AppConfig;
  try {
    config = loadConfig({ flags: g, known: await knownConnectors({ flags: g }) });
  } catch (err) {
    add({ check: 'configuration', verdict: 'fail', detail: describeError(err) });
    throw err;
  }
  add({ check: 'configuration', verdict: 'ok', detail: `${config.accounts.length} account(s)${config.configFile ? ` from ${config.configFile}` : ''}` });
  const log = createLogger({ level: g.verbose ? 'debug' : 'fatal' });

  try {
    requireAvitoCredentials(config);
    add({ check: 'Avito credentials', verdict: 'ok', detail: 'set for every account' });
  } catch (err) {
    add({ check: 'Avito credentials', verdict: 'fail', detail: describeError(err), action: 'Set AVITO_CLIENT_ID and AVITO_CLIENT_SECRET (the company\'s main account key).' });
  }

  // Connector settings, each on its own line.
  let definitionsOk = true;
  let defs: ReturnType<typeof enabledDefinitions> = [];
  try {
    defs = enabledDefinitions(config, config.connectorDefinitions);
  } catch (err) {
    definitionsOk = false;
    add({ check: 'connectors', verdict: 'fail', detail: describeError(err) });
  }
  for (const def of defs) {
    config.accounts.forEach((a, i) => {
      try {
        connectorSettings(config, def, i);
      } catch (err) {
        definitionsOk = false;
        add({ check: `${config.accounts.length > 1 ? `${a.id}: ` : ''}${def.displayName} settings`, verdict: 'fail', detail: describeError(err) });
      }
    });
  }

  // The ledger: never created by doctor; without one, the checks that need it run on a scratch copy.
  const file = path.resolve(config.db);
  const exists = config.db === ':memory:' || /^postgres/i.test(config.db) || existsSync(file);
  let rt: Runtime | undefined;
  try {
    rt = await createRuntime(exists ? config : { ...config, db: ':memory:' }, log, { connectors: false, retry: INTERACTIVE_RETRY, timeoutMs: INTERACTIVE_TIMEOUT_MS });
    if (exists) add(...ledgerChecks(rt));
    else add({ check: 'ledger', verdict: 'warn', detail: `no ledger at ${file} yet`, action: '`avito-sync run` (or sync, backfill) creates it; if one exists elsewhere, point --db or AVITO_SYNC_DB at it.' });
  } catch (err) {
    add({ check: 'ledger', verdict: 'fail', detail: describeError(err) });
    return all;
  }
  try {
    const hookUrl = rt.config.publicUrl ? avitoWebhookUrl(rt.config.publicUrl, await webhookSecret(rt.ledger.db, rt.config.webhookSecret)) : undefined;
    for (const acc of rt.accounts) {
      const knownChatId = await newestChatId(rt.ledger.db, acc.config.id);
      const checks = await avitoChecks(acc.client, { configuredUserId: acc.config.avito.userId, publicWebhookUrl: hookUrl, knownChatId });
      add(...checks.map((c) => (rt!.accounts.length > 1 ? { ...c, check: `${acc.config.id}: ${c.check}` } : c)));
    }
    add(await webhookReachability(hookUrl));
    let connectors: ActiveConnector[] = [];
    if (definitionsOk && defs.length > 0) {
      try {
        connectors = createConnectors(config, rt.ledger.db, log, config.connectorDefinitions, INTERACTIVE_RETRY, undefined, rt.ledger.dialect);
      } catch (err) {
        add({ check: 'connectors', verdict: 'fail', detail: describeError(err) });
      }
    }
    for (const c of connectors) {
      const checks = await c.instance.checkAccess().catch((err: unknown) => [{ check: `${c.definition.displayName} access`, verdict: 'fail' as const, detail: describeError(err) }]);
      add(...checks.map((x) => (rt!.accounts.length > 1 ? { ...x, check: `${c.accountId}: ${x.check}` } : x)));
      await c.instance.close();
    }
    if (defs.length === 0) add({ check: 'CRM connectors', verdict: 'warn', detail: 'none enabled: messages stay in the ledger', action: howToEnableConnectors(config.connectorDefinitions) });
  } finally {
    await rt.close();
  }
  return all;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('checks config, credentials, scopes, tariff (402), employee-key symptoms, webhooks, CRM access: one line per check')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const print = (r: CheckResult) => out(`${MARK[r.verdict]} ${r.check}: ${r.detail}${r.action ? `\n       → ${r.action}` : ''}`);
      let results: CheckResult[];
      try {
        results = await runChecks(g, opts.json ? () => undefined : print);
      } catch (err) {
        if (opts.json && err instanceof ConfigError) out(JSON.stringify([{ check: 'configuration', verdict: 'fail', detail: describeError(err) }], null, 2));
        throw err;
      }
      if (opts.json) out(JSON.stringify(results, null, 2));
      const failed = results.filter((r) => r.verdict === 'fail');
      if (failed.length) throw new OperationalError(`${failed.length} check(s) failed: ${failed.map((f) => f.check).join(', ')}.`);
    });
}
