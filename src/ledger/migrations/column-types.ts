import type { ColumnDataType, ColumnDefinitionBuilder } from 'kysely';

/**
 * Column types that differ between the dialects, so each migration is written once for both.
 * Epoch-millisecond times need 64 bits: PostgreSQL's `integer` is 32-bit, SQLite's is 64-bit
 * already. Every integer column is `bigint` on PostgreSQL, and the ledger's PostgreSQL pool parses
 * `bigint` to a JavaScript number (all values are below 2^53), so ids, counts and times come back
 * as numbers on both dialects.
 */
export interface ColumnTypes {
  int: ColumnDataType;
  /** An ever-growing primary key (insertion order). */
  serial: (c: ColumnDefinitionBuilder) => ColumnDefinitionBuilder;
}

export const SQLITE_TYPES: ColumnTypes = {
  int: 'integer',
  // INTEGER PRIMARY KEY is SQLite's rowid; AUTOINCREMENT never reuses a deleted row's id.
  serial: (c) => c.primaryKey().autoIncrement(),
};

export const POSTGRES_TYPES: ColumnTypes = {
  int: 'bigint',
  serial: (c) => c.primaryKey().generatedByDefaultAsIdentity(),
};
