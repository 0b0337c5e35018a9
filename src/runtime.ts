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
  /** The running configuration; a config reload (SIGHUP) replaces its accounts. */
  config: AppConfig;
  log: Logger;
  ledger: Ledger;
  voice: VoiceKeeper;
  /** One per configured account with Avito credentials; changed in place by a config reload. */
  accounts: AccountRuntime[];
  /** Enabled connectors, one per (account, connector); changed in place by a config reload. */
  connectors: ActiveConnector[];
  /** How the runtime was built: accounts added by a reload are built the same way. */
  readonly options: RuntimeOptions;
  close(): Promise<void>;
}

/** What one account runs on: its Avito client (when it has credentials) and its connector instances. */
export interface AccountParts {
  id: string;
  account: AccountRuntime | undefined;
  connectors: ActiveConnector[];
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

/**
 * Builds one account's Avito client and connector instances from `config` (its connector sections
 * checked by each connector's schema: a bad value throws ConfigError naming the key). Nothing is
 * started and the runtime is not changed: `addAccount` does that.
 */
export function buildAccount(config: AppConfig, accountId: string, ledger: Ledger, log: Logger, options: RuntimeOptions = {}): AccountParts {
  const index = config.accounts.findIndex((a) => a.id === accountId);
  const account = config.accounts[index];
  if (!account) throw new Error(`no account ${accountId} in the configuration`);
  const connectors = options.connectors === false ? [] : createConnectors(config, ledger.db, log, options.known ?? config.connectorDefinitions, options.retry, index, ledger.dialect);
  if (options.avito === false || !account.avito.clientId || !account.avito.clientSecret) return { id: accountId, account: undefined, connectors };
  return {
    id: accountId,
    connectors,
    account: {
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
    },
  };
}

/** Closes what `buildAccount` built (a refused reload, a removed account). */
export async function closeAccount(parts: AccountParts): Promise<void> {
  await parts.account?.client.close().catch(() => undefined);
  await Promise.all(parts.connectors.map((c) => c.instance.close().catch(() => undefined)));
}

/** Puts a built account into the runtime: its ledger row, its delivery routes, its client and connectors. */
export async function addAccount(rt: Runtime, parts: AccountParts): Promise<void> {
  const config = rt.config.accounts.find((a) => a.id === parts.id);
  await ensureAccount(rt.ledger.db, parts.id, config?.avito.userId);
  rt.ledger.routeDeliveries(parts.id, parts.connectors.map((c) => c.definition.id));
  if (parts.account) rt.accounts.push(parts.account);
  rt.connectors.push(...parts.connectors);
}

/** Takes an account out of the runtime (its jobs already stopped) and closes its client and connectors. */
export async function removeAccount(rt: Runtime, accountId: string): Promise<void> {
  const parts: AccountParts = { id: accountId, account: rt.accounts.find((a) => a.config.id === accountId), connectors: rt.connectors.filter((c) => c.accountId === accountId) };
  rt.ledger.routeDeliveries(accountId, []);
  for (let i = rt.accounts.length - 1; i >= 0; i--) if (rt.accounts[i]!.config.id === accountId) rt.accounts.splice(i, 1);
  for (let i = rt.connectors.length - 1; i >= 0; i--) if (rt.connectors[i]!.accountId === accountId) rt.connectors.splice(i, 1);
  await closeAccount(parts);
}

/** Opens the ledger, makes sure each account has its row, builds one Avito client per account. */
export async function createRuntime(config: AppConfig, log: Logger, options: RuntimeOptions = {}): Promise<Runtime> {
  registerSecrets(config);
  const ledger = await openLedger(config.db, { poolSize: config.dbPool, mustExist: options.existingLedger === true });
  let connectors: ActiveConnector[];
  try {
    connectors = options.connectors === false ? [] : createConnectors(config, ledger.db, log, options.known ?? config.connectorDefinitions, options.retry, undefined, ledger.dialect);
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
    const built = buildAccount(config, account.id, ledger, log, { ...options, connectors: false });
    if (built.account) accounts.push(built.account);
  }
  const rt: Runtime = {
    config,
    log,
    ledger,
    voice: new VoiceKeeper(ledger.db, config.dataDir, log),
    accounts,
    connectors,
    options,
    async close() {
      await Promise.all(rt.accounts.map((a) => a.client.close()));
      await Promise.all(rt.connectors.map((c) => c.instance.close()));
      await ledger.close();
    },
  };
  return rt;
}
