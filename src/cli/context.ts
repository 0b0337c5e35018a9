import type { Logger } from 'pino';
import { loadConfig, requireAvitoCredentials, type AppConfig, type ConfigFlags } from '../config/load-config.js';
import { envTypos } from '../config/env-typos.js';
import { knownConnectors } from '../connector/load-modules.js';
import { checkConnectorSettings } from '../connector/registry.js';
import { ConfigError } from '../errors.js';
import type { RetryPolicy } from '../http/retry-policy.js';
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

/** Every variable avito-sync reads: the core's and each known connector's (config.envKeys). */
function knownVariables(config: AppConfig): string[] {
  return [...config.envKeys.map((k) => k.env), 'AVITO_SYNC_CONFIG', 'AVITO_SYNC_DEMO_STATE', 'NO_COLOR'];
}

/** Loads the connector modules the configuration names, then the configuration itself. */
export async function loadCliConfig(opts: GlobalOptions): Promise<{ config: AppConfig; log: Logger }> {
  const config = loadConfig({ flags: opts, known: await knownConnectors({ flags: opts }) });
  for (const t of envTypos(process.env, knownVariables(config))) {
    process.stderr.write(`avito-sync: WARNING: ${t.name} is not a variable avito-sync reads; did you mean ${t.suggestion}?\n`);
  }
  const log = createLogger({ level: opts.verbose && config.logLevel === 'info' ? 'debug' : config.logLevel });
  return { config, log };
}

/**
 * A person is waiting at the terminal: one quick retry, then the error, instead of the daemon's
 * patient backoff (13 s of retries before `chats list` said the API was unreachable).
 */
export const INTERACTIVE_RETRY: Partial<RetryPolicy> = { retries: 1, minTimeoutMs: 300, maxTimeoutMs: 1000, maxRetryAfterMs: 3000 };
/** Per-attempt timeout for the same commands. */
export const INTERACTIVE_TIMEOUT_MS = 10_000;

export interface Needs {
  /** Avito clients (credentials required). */
  avito: boolean;
  /** Build the enabled connectors. Default: same as `avito`. */
  connectors?: boolean;
  /** Never create a ledger; check connector settings without building connectors. */
  readOnly?: boolean;
  /** A person waits for the answer: short retries (INTERACTIVE_RETRY). */
  interactive?: boolean;
}

/** Loads config, opens the ledger (and Avito clients when asked), runs `fn`, closes. */
export async function withRuntime<T>(opts: GlobalOptions, needs: Needs, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const { config, log } = await loadCliConfig(opts);
  if (needs.avito) requireAvitoCredentials(config);
  const buildConnectors = needs.connectors ?? needs.avito;
  if (!buildConnectors) checkConnectorSettings(config, config.connectorDefinitions);
  const rt = await createRuntime(config, log, {
    avito: needs.avito,
    connectors: buildConnectors,
    existingLedger: needs.readOnly === true,
    ...(needs.interactive ? { retry: INTERACTIVE_RETRY, timeoutMs: INTERACTIVE_TIMEOUT_MS } : {}),
  });
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
