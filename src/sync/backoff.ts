import type { Logger } from 'pino';
import type { ConnectorCapabilities, ConnectorInstance } from '../connector-sdk/contract.js';
import type { Ledger } from '../ledger/database.js';

/** What every per-(account, connector) worker gets: the dispatcher and the reply service. */
export interface ConnectorWorkOptions {
  ledger: Ledger;
  log: Logger;
  accountId: string;
  connectorId: string;
  connector: ConnectorInstance;
  capabilities: ConnectorCapabilities;
  /** First retry after `baseMs`, doubling, ±20 % jitter, at most `capMs`. */
  backoff?: { baseMs: number; capMs: number };
  now?: () => number;
}

/** Delay before the next try after `attempt` failed attempts (1-based). */
export function backoffMs(attempt: number, { baseMs, capMs }: { baseMs: number; capMs: number }): number {
  const raw = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(raw * (0.8 + Math.random() * 0.4));
}
