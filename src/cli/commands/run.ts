import type { Command } from 'commander';
import type { Logger } from 'pino';
import { loadConfig, requireAvitoCredentials } from '../../config/load-config.js';
import { howToEnableConnectors } from '../../connector/enable-hint.js';
import { OperationalError, RemoteApiError, describeError } from '../../errors.js';
import { createRuntime, type Runtime } from '../../runtime.js';
import { startDaemon } from '../../sync/daemon.js';
import { loadCliConfig, type GlobalOptions } from '../context.js';

/**
 * Before the daemon starts: a permanent refusal (bad credentials, 400/401/403 on /token, a tariff
 * without the Messenger API) stops it with one sentence and exit 1, so systemd and Docker show
 * it; a transient failure (network, 5xx, 429) is logged and the daemon keeps trying.
 */
export async function checkAvitoAtStart(rt: Runtime, log: Logger): Promise<void> {
  for (const acc of rt.accounts) {
    try {
      await acc.client.tokens.get();
      await acc.client.userId();
    } catch (err) {
      if (err instanceof RemoteApiError && !err.transient) {
        throw new OperationalError(`avito-sync cannot start: account ${acc.config.id}: ${err.message}`, { cause: err });
      }
      log.warn({ account: acc.config.id, err: describeError(err) }, 'Avito is not reachable right now; the daemon starts and keeps trying');
    }
  }
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('the daemon: webhook server, scheduled polling, delivery; SIGHUP reloads the accounts; SIGTERM drains and exits 0')
    .option('--port <n>', 'listen on this port (overrides PORT)')
    .action(async (opts: { port?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const flags = { ...g, ...(opts.port !== undefined ? { port: opts.port } : {}) };
      const { config, log } = await loadCliConfig(flags);
      requireAvitoCredentials(config);
      const rt = await createRuntime(config, log);
      let daemon;
      try {
        await checkAvitoAtStart(rt, log);
        if (rt.connectors.length === 0 && !(config.connectors?.length === 1 && config.connectors[0] === 'none')) {
          // Said loudly, on stderr as a sentence and in the log: otherwise "running" reads as "syncing to the CRM".
          const line = `No CRM connector is enabled: Avito messages are kept in the ledger and reach no CRM. ${howToEnableConnectors(config.connectorDefinitions)}`;
          process.stderr.write(`avito-sync: WARNING: ${line}\n`);
          log.warn({ connectors: 0 }, line);
        }
        daemon = await startDaemon(rt);
      } catch (err) {
        await rt.close();
        throw err;
      }
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'signal received');
          void daemon.stop().then(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
        // SIGHUP: the configuration file is read again; accounts added, changed or removed take
        // effect without a restart (a bad file is refused with a log line naming the key).
        process.on('SIGHUP', () => {
          log.info({ signal: 'SIGHUP' }, 'signal received: reloading the configuration');
          void daemon.reload(() => loadConfig({ flags, known: config.connectorDefinitions })).catch((err: unknown) => log.error({ err: describeError(err) }, 'configuration reload failed'));
        });
      });
    });
}
