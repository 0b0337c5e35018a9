import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { ConfigError, OperationalError } from '../errors.js';

/**
 * Checks around opening a ledger file. Read-only commands (`status`, `dead-letters list`,
 * `reconcile --report`) must never create one: a mistyped `--db` would otherwise report an empty
 * ledger as if nothing had ever synced.
 */

/** Throws "no ledger at …" (exit 1) when the file is not there. */
export function requireExistingLedger(file: string): void {
  if (file === ':memory:' || /^postgres(ql)?:\/\//i.test(file)) return;
  const resolved = path.resolve(file);
  if (!existsSync(resolved)) {
    throw new OperationalError(`There is no ledger at ${resolved}: check --db or AVITO_SYNC_DB (and the folder you run from); \`avito-sync run\`, \`sync\` or \`backfill\` create it.`);
  }
  if (statSync(resolved).isDirectory()) {
    throw new OperationalError(`${resolved} is a folder, not a ledger file: point --db or AVITO_SYNC_DB at the .db file inside it.`);
  }
}

/** A file that SQLite cannot read as a database: name the path, and never suggest deleting it. */
export function notALedger(file: string, err: unknown): OperationalError {
  return new OperationalError(`${file} is not an avito-sync ledger (SQLite says: ${(err as Error).message}): check --db or AVITO_SYNC_DB; the file was left untouched.`, { cause: err });
}

/**
 * A ledger migrated by a newer avito-sync holds migrations this build does not know. Running on
 * it could undo what the newer one relies on, and "missing migration" invites deleting the ledger
 * (which would send everything to the CRM again): refuse with exit 2 and say to upgrade.
 */
export function refuseNewerLedger(sqlite: Database.Database, file: string, known: readonly string[]): void {
  const table = sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'kysely_migration'").get();
  if (!table) return;
  const applied = (sqlite.prepare('SELECT name FROM kysely_migration ORDER BY name').all() as { name: string }[]).map((r) => r.name);
  const unknown = applied.filter((n) => !known.includes(n));
  if (unknown.length === 0) return;
  throw newerLedger(file, unknown);
}

/** The refusal for a ledger holding migrations this build does not know (either dialect). */
export function newerLedger(file: string, unknown: readonly string[]): ConfigError {
  return new ConfigError(
    `The ledger ${file} was written by a newer avito-sync (migration ${unknown.join(', ')}); upgrade avito-sync to use it. Do not delete the ledger: it records what reached the CRM.`,
    'AVITO_SYNC_DB',
  );
}
