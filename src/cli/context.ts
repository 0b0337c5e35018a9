import type { Logger } from 'pino';
import { loadConfig, requireAvitoCredentials, type AppConfig, type ConfigFlags } from '../config/load-config.js';
import { knownConnectors } from '../connector/load-modules.js';
import { ConfigError } from '../errors.js';
import { createLogger } from '../log/logger.js';
import { createRuntime, type AccountRuntime, type Runtime } from '../runtime.js';

/** Options every command accepts (set on the root program). */
export interface GlobalOptions extends ConfigFlags {
  verbose?: boolean;
  account?: string;
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Loads the connector modules the configuration names, then the configuration itself. */
export async function loadCliConfig(opts: GlobalOptions): Promise<{ config: AppConfig; log: Logger }> {
  const config = loadConfig({ flags: opts, known: await knownConnectors({ flags: opts }) });
  const log = createLogger({ level: opts.verbose && config.logLevel === 'info' ? 'debug' : config.logLevel });
  return { config, log };
}

/** Loads config, opens the ledger (and Avito clients when asked), runs `fn`, closes. */
export async function withRuntime<T>(opts: GlobalOptions, needs: { avito: boolean; connectors?: boolean }, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const { config, log } = await loadCliConfig(opts);
  if (needs.avito) requireAvitoCredentials(config);
  const rt = await createRuntime(config, log, { avito: needs.avito, connectors: needs.connectors ?? needs.avito });
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

/** The account a single-account command works on: `--account`, else the first. */
export function pickAccount(rt: Runtime, id: string | undefined): AccountRuntime {
  const acc = id ? rt.accounts.find((a) => a.config.id === id) : rt.accounts[0];
  if (!acc) throw new ConfigError(id ? `No account "${id}" in the configuration (--account).` : 'No Avito account is configured: set AVITO_CLIENT_ID and AVITO_CLIENT_SECRET.', id ? '--account' : 'AVITO_CLIENT_ID');
  return acc;
}
