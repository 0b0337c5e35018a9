import type { Logger } from 'pino';
import { AvitoClient } from './avito/client.js';
import type { ConnectorDefinition } from './connector-sdk/contract.js';
import { createConnectors, type ActiveConnector } from './connector/registry.js';
import type { AppConfig } from './config/load-config.js';
import type { AccountConfig } from './config/schema.js';
import type { RetryPolicy } from './http/retry-policy.js';
import { ensureAccount } from './ledger/accounts.js';
import { tokenLock } from './ledger/tokens.js';
import { openLedger, type Ledger } from './ledger/database.js';
import { secretScrubber } from './log/logger.js';
import { VoiceKeeper } from './avito/voice-keeper.js';

export interface AccountRuntime {
  config: AccountConfig;
  client: AvitoClient;
}

export interface Runtime {
  config: AppConfig;
  log: Logger;
  ledger: Ledger;
  voice: VoiceKeeper;
  accounts: AccountRuntime[];
  /** Enabled connectors, one per (account, connector). */
  connectors: ActiveConnector[];
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Build Avito clients (needs credentials). Default true. */
  avito?: boolean;
  /** Overrides for retry backoff (tests). */
  retry?: Partial<RetryPolicy>;
  /** Build the enabled connectors. Default true. */
  connectors?: boolean;
  /** The connectors this build knows (tests add fakes). Default: the config's (built-ins and connectorModules). */
  known?: readonly ConnectorDefinition[];
  /** Read-only commands: the ledger must already exist (never created). Default false. */
  existingLedger?: boolean;
  /** Per-attempt timeout of Avito calls; default the client's (30 s). */
  timeoutMs?: number;
}

/** Registers every configured secret with the log scrubber (invariant 6). */
export function registerSecrets(config: AppConfig): void {
  secretScrubber.add(config.webhookSecret);
  secretScrubber.add(config.consolePassword);
  secretScrubber.add(config.metricsToken);
  for (const key of config.envKeys) {
    if (!key.secret) continue;
    let node: unknown = config;
    for (const p of key.path) node = typeof node === 'object' && node !== null ? (node as Record<string | number, unknown>)[p] : undefined;
    if (typeof node === 'string') secretScrubber.add(node);
  }
  for (const a of config.accounts) {
    secretScrubber.add(a.avito.clientSecret);
    secretScrubber.add(a.avito.authCode);
    const rec = a as Record<string, unknown>;
    for (const section of Object.values(rec)) {
      if (typeof section !== 'object' || section === null) continue;
      for (const [k, v] of Object.entries(section)) {
        if (typeof v === 'string' && /secret|token|code|password/i.test(k)) secretScrubber.add(v);
      }
    }
  }
}

/** Opens the ledger, makes sure each account has its row, builds one Avito client per account. */
export async function createRuntime(config: AppConfig, log: Logger, options: RuntimeOptions = {}): Promise<Runtime> {
  registerSecrets(config);
  const ledger = await openLedger(config.db, { poolSize: config.dbPool, mustExist: options.existingLedger === true });
  let connectors: ActiveConnector[];
  try {
    connectors = options.connectors === false ? [] : createConnectors(config, ledger.db, log, options.known ?? config.connectorDefinitions, options.retry, ledger.dialect);
  } catch (err) {
    await ledger.close();
    throw err;
  }
  // Each new message gets its deliveries to the enabled connectors in the transaction that stores it.
  for (const account of config.accounts) {
    ledger.routeDeliveries(account.id, connectors.filter((c) => c.accountId === account.id).map((c) => c.definition.id));
  }
  const accounts: AccountRuntime[] = [];
  for (const account of config.accounts) {
    await ensureAccount(ledger.db, account.id, account.avito.userId);
    if (options.avito === false || !account.avito.clientId || !account.avito.clientSecret) continue;
    accounts.push({
      config: account,
      client: new AvitoClient({
        accountId: account.id,
        apiUrl: account.avito.apiUrl,
        clientId: account.avito.clientId,
        clientSecret: account.avito.clientSecret,
        authCode: account.avito.authCode,
        userId: account.avito.userId,
        db: ledger.db,
        lockToken: tokenLock(ledger, account.id, 'avito'),
        log,
        requestsPerSecond: account.avito.requestsPerSecond,
        concurrency: account.avito.concurrency,
        itemsRequestsPerMinute: account.avito.itemsRequestsPerMinute,
        ...(options.retry ? { retry: options.retry } : {}),
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      }),
    });
  }
  return {
    config,
    log,
    ledger,
    voice: new VoiceKeeper(ledger.db, config.dataDir, log),
    accounts,
    connectors,
    async close() {
      await Promise.all(accounts.map((a) => a.client.close()));
      await Promise.all(connectors.map((c) => c.instance.close()));
      await ledger.close();
    },
  };
}
