import type { Ledger } from './ledger.js';
import { isPostgresUrl } from './location.js';
import { openSqliteLedger } from './sqlite-ledger.js';

export type { Ledger, LedgerDb, LedgerDialect } from './ledger.js';
export { isPostgresUrl, redactUrl } from './location.js';

export interface OpenLedgerOptions {
  /** SQLite: refuse to create a ledger that is not there (read-only commands say "no ledger at …"). */
  mustExist?: boolean;
  /** PostgreSQL only: connections in the pool (`AVITO_SYNC_DB_POOL`). Default 10. */
  poolSize?: number;
}

/**
 * Opens the ledger `AVITO_SYNC_DB` names, creating it when absent, and runs pending migrations:
 * a `postgres://` (or `postgresql://`) URL selects PostgreSQL; anything else is a SQLite file path
 * (the default; `:memory:` for tests).
 */
export async function openLedger(location: string, opts: OpenLedgerOptions = {}): Promise<Ledger> {
  // Loaded only for a PostgreSQL ledger: the driver costs a SQLite daemon ~7 MB of RSS for nothing.
  if (isPostgresUrl(location)) return (await import('./postgres-ledger.js')).openPostgresLedger(location.trim(), opts);
  return openSqliteLedger(location, opts.mustExist ? { mustExist: true } : {});
}
