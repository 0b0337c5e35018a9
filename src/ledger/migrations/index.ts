import type { Kysely, Migration, MigrationProvider } from 'kysely';
import type { LedgerDialect } from '../ledger.js';
import * as m001 from './001-foundation.js';
import * as m002 from './002-delivery.js';
import * as m003 from './003-read-receipts.js';
import * as m004 from './004-leases.js';
import * as m005 from './005-console-sessions.js';
import * as m006 from './006-stub-chats-index.js';
import * as m007 from './007-conversation-details.js';
import * as m008 from './008-conversations-to-look-at.js';
import { POSTGRES_TYPES, SQLITE_TYPES, type ColumnTypes } from './column-types.js';

type Up = (db: Kysely<unknown>, t: ColumnTypes) => Promise<void>;

/** Every migration, in order, written once for both dialects. A new one is added here and never edited once released. */
const MIGRATIONS: [string, Up][] = [
  ['001-foundation', m001.up],
  ['002-delivery', m002.up],
  ['003-read-receipts', m003.up],
  ['004-leases', m004.up],
  ['005-console-sessions', m005.up],
  ['006-stub-chats-index', m006.up],
  ['007-conversation-details', m007.up],
  ['008-conversations-to-look-at', m008.up],
];

/** The migrations for one dialect (its column types bound in). */
export function migrationProvider(dialect: LedgerDialect): MigrationProvider {
  const t = dialect === 'postgres' ? POSTGRES_TYPES : SQLITE_TYPES;
  const out: Record<string, Migration> = {};
  for (const [name, up] of MIGRATIONS) out[name] = { up: (db) => up(db, t) };
  return { getMigrations: async () => out };
}

/** Names of the migrations this build knows (a ledger with others was made by a newer version). */
export const MIGRATION_NAMES: readonly string[] = MIGRATIONS.map(([name]) => name);
