import type { Kysely } from 'kysely';
import { SQLITE_TYPES, type ColumnTypes } from './column-types.js';

/**
 * Several daemons on one ledger (design.md §8.5): the processes that hold leases (`lease_owners`,
 * one row per process, renewed by its heartbeat), which process works each account
 * (`account_leases`), and the shared request slots that keep each connector's per-account rate
 * across processes (`request_slots`).
 */
export async function up(db: Kysely<unknown>, t: ColumnTypes = SQLITE_TYPES): Promise<void> {
  await db.schema
    .createTable('lease_owners')
    // `host:pid:random`: unique per process, also when a pid comes back (pid 1 in a container).
    .addColumn('owner', 'text', (c) => c.primaryKey())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('pid', t.int, (c) => c.notNull())
    // `daemon` (works accounts) or `process` (a command that may claim deliveries).
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('started_at', t.int, (c) => c.notNull())
    .addColumn('heartbeat_at', t.int, (c) => c.notNull())
    // Past this the process counts as gone: its account and delivery leases are free.
    .addColumn('expires_at', t.int, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('account_leases')
    .addColumn('account_id', 'text', (c) => c.primaryKey())
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('acquired_at', t.int, (c) => c.notNull())
    .addColumn('heartbeat_at', t.int, (c) => c.notNull())
    .addColumn('expires_at', t.int, (c) => c.notNull())
    // The lease this one replaced: who held it and when it ran out (takeover time = acquired_at − that).
    .addColumn('previous_owner', 'text')
    .addColumn('previous_expires_at', t.int)
    .execute();

  await db.schema
    .createTable('request_slots')
    // `account/connector/name`: one spacing gate shared by every process.
    .addColumn('key', 'text', (c) => c.primaryKey())
    // The earliest time (epoch ms) the next request may start.
    .addColumn('next_at', t.int, (c) => c.notNull())
    .execute();
}
