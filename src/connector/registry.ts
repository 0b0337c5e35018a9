import type { Logger } from 'pino';
import { describeIssue, type AppConfig } from '../config/load-config.js';
import { ConfigError } from '../errors.js';
import type { RetryPolicy } from '../http/retry-policy.js';
import { connectorPauses, connectorStore } from '../ledger/connector-state.js';
import type { LedgerDb, LedgerDialect } from '../ledger/database.js';
import { LocalRequestGate, type RequestGate, type RequestGateOptions } from '../http/request-gate.js';
import { SharedRequestGate } from '../ledger/request-slots.js';
import { secretScrubber } from '../log/logger.js';
import type { ConnectorDefinition, ConnectorInstance } from '../connector-sdk/contract.js';

/** A connector running for one account. */
export interface ActiveConnector {
  accountId: string;
  definition: ConnectorDefinition;
  instance: ConnectorInstance;
}

/** Checks `AVITO_SYNC_CONNECTORS` against the known connectors. */
export function enabledDefinitions(config: AppConfig, known: readonly ConnectorDefinition[]): ConnectorDefinition[] {
  return config.enabledConnectors.map((id) => {
    const def = known.find((d) => d.id === id);
    if (!def) throw new ConfigError(`Invalid AVITO_SYNC_CONNECTORS: no connector "${id}"; known: ${known.map((d) => d.id).join(', ')}, or none.`, 'AVITO_SYNC_CONNECTORS');
    return def;
  });
}

/**
 * One account's section for a connector, checked by the connector's own schema: a bad value
 * names its key (the connector's env variable, or its path in the file) and echoes the value back. Throws ConfigError (exit 2).
 */
export function connectorSettings(config: AppConfig, def: ConnectorDefinition, accountIndex: number): unknown {
  const section = (config.accounts[accountIndex] as Record<string, unknown>)[def.id] ?? {};
  const parsed = def.configSchema.safeParse(section);
  if (!parsed.success) throw describeIssue(parsed.error.issues[0]!, Boolean(config.configFile), section, ['accounts', accountIndex, def.id], config.envKeys);
  return parsed.data;
}

/** Checks every enabled connector's settings for every account without creating anything (read-only commands). */
export function checkConnectorSettings(config: AppConfig, known: readonly ConnectorDefinition[]): void {
  for (const def of enabledDefinitions(config, known)) config.accounts.forEach((_, i) => connectorSettings(config, def, i));
}

/**
 * Validates each account's section for every enabled connector with the connector's own schema
 * (a bad value names its key: the connector's env variable, or its path in the file) and creates one instance per account
 * (only the account at `onlyAccountIndex` when given: one added by a config reload).
 */
export function createConnectors(config: AppConfig, db: LedgerDb, log: Logger, known: readonly ConnectorDefinition[], retry?: Partial<RetryPolicy>, onlyAccountIndex?: number, dialect: LedgerDialect = 'sqlite'): ActiveConnector[] {
  const out: ActiveConnector[] = [];
  // One gate per (account, connector, name), shared by the instance's clients; on PostgreSQL shared
  // with every other process through the ledger, so a CRM's per-account limit holds across daemons.
  const gates = new Map<string, RequestGate>();
  const gate = (accountId: string, connectorId: string, o: RequestGateOptions): RequestGate => {
    const key = `${accountId}/${connectorId}/${o.name ?? 'default'}`;
    let g = gates.get(key);
    if (!g) gates.set(key, (g = dialect === 'postgres' ? new SharedRequestGate(db, key, o.intervalMs, o.burst) : new LocalRequestGate(o.intervalMs, o.burst)));
    return g;
  };
  for (const def of enabledDefinitions(config, known)) {
    config.accounts.forEach((account, i) => {
      if (onlyAccountIndex !== undefined && i !== onlyAccountIndex) return;
      const parsed = { data: connectorSettings(config, def, i) };
      const clog = log.child({ connector: def.id, account: account.id });
      out.push({
        accountId: account.id,
        definition: def,
        instance: def.create({
          accountId: account.id,
          config: parsed.data,
          log: clog,
          store: connectorStore(db, account.id, def.id, { log: clog }),
          ...connectorPauses(db, account.id, def.id),
          registerSecret: (s) => secretScrubber.add(s),
          requestGate: (o) => gate(account.id, def.id, o),
          ...(retry ? { retry } : {}),
        }),
      });
    });
  }
  return out;
}
