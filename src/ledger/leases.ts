import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Ledger, LedgerDb } from './ledger.js';

/**
 * Account leases (design.md §8.5): several `run` processes on one PostgreSQL ledger share the
 * accounts. Each account is worked — polled on Avito, its token refreshed, its replies sent — by
 * the one process holding its lease; a lease is a row (owner, expiry), renewed by the holder's
 * heartbeat, never a session lock (facts: PostgreSQL docs on advisory locks vs. PgBouncer; Nango's
 * scheduler keeps ownership in columns the same way). A process that dies stops renewing: its
 * leases run out after `LEASE_TTL_MS` and another process takes them at its next tick, so the
 * takeover is done within TTL + one heartbeat = 25 s (the design asks for 30 s). On SQLite the
 * same code runs with one process (the writer lock), which takes every account at once.
 */

/** How long a lease (and a process's registration) lasts without a heartbeat. */
export const LEASE_TTL_MS = 20_000;
/** How often a process renews its leases and looks for free ones. */
export const LEASE_HEARTBEAT_MS = 5_000;
/**
 * A holder stops starting work this long before its lease would run out un-renewed, so it never
 * works an account that another process may already have taken (clocks: one host, or NTP).
 */
const SAFETY_MS = 3_000;

/** A lease owner id: unique per process (and per ledger it opens), also when a pid is reused. */
export function newLeaseOwner(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/**
 * Registers `owner` as alive for another TTL. `kind` `daemon` marks a process that works
 * accounts (it counts when the accounts are shared out); a `process` (a command) only claims
 * deliveries and never downgrades a daemon's row.
 */
export async function beatLeaseOwner(db: LedgerDb, owner: string, kind: 'daemon' | 'process', now = Date.now()): Promise<void> {
  await db
    .insertInto('lease_owners')
    .values({ owner, host: hostname(), pid: process.pid, kind, started_at: now, heartbeat_at: now, expires_at: now + LEASE_TTL_MS })
    .onConflict((oc) => oc.column('owner').doUpdateSet({ heartbeat_at: now, expires_at: now + LEASE_TTL_MS, ...(kind === 'daemon' ? { kind } : {}) }))
    .execute();
}

/** A clean exit: the process's registration goes, so whatever it still holds is free at once. */
export async function dropLeaseOwner(db: LedgerDb, owner: string): Promise<void> {
  await db.updateTable('account_leases').set({ expires_at: Date.now() }).where('owner', '=', owner).execute();
  await db.deleteFrom('lease_owners').where('owner', '=', owner).execute();
}

export interface AccountLeaseRow {
  accountId: string;
  owner: string;
  host: string | null;
  pid: number | null;
  acquiredAt: number;
  heartbeatAt: number;
  expiresAt: number;
  previousOwner: string | null;
  previousExpiresAt: number | null;
}

/** Every account lease with its holder's host and pid (`status`). */
export async function listAccountLeases(db: LedgerDb): Promise<AccountLeaseRow[]> {
  const rows = await db
    .selectFrom('account_leases as l')
    .leftJoin('lease_owners as o', 'o.owner', 'l.owner')
    .select(['l.account_id', 'l.owner', 'o.host', 'o.pid', 'l.acquired_at', 'l.heartbeat_at', 'l.expires_at', 'l.previous_owner', 'l.previous_expires_at'])
    .orderBy('l.account_id')
    .execute();
  return rows.map((r) => ({
    accountId: r.account_id, owner: r.owner, host: r.host ?? null, pid: r.pid === null || r.pid === undefined ? null : Number(r.pid),
    acquiredAt: Number(r.acquired_at), heartbeatAt: Number(r.heartbeat_at), expiresAt: Number(r.expires_at),
    previousOwner: r.previous_owner, previousExpiresAt: r.previous_expires_at === null ? null : Number(r.previous_expires_at),
  }));
}

export interface AccountLeasesOptions {
  log: Logger;
  /** Called when this process starts working an account (first acquired, or taken over). */
  onAcquired?: (accountId: string) => void;
  /** Between rounds (`AVITO_SYNC_LEASE_HEARTBEAT_SECONDS`); at most LEASE_HEARTBEAT_MS. Default LEASE_HEARTBEAT_MS. */
  heartbeatMs?: number;
  now?: () => number;
}

/**
 * This process's account leases. `use(account, fn)` runs work only while the lease is held (and
 * counts it, so a lease is handed back only when idle); `tick` renews, drops what was lost, takes
 * free leases up to a fair share (accounts ÷ live daemons, rounded up) and hands one back per
 * tick while it holds more than that, so a daemon started later gets its part.
 */
export class AccountLeases {
  /** Held accounts and until when this process may start work on each (epoch ms). */
  private readonly mine = new Map<string, number>();
  private readonly busy = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly now: () => number;

  constructor(
    private readonly ledger: Pick<Ledger, 'db' | 'dialect' | 'owner'>,
    /** The accounts to work: read at every tick (a configuration reload adds and removes some). */
    accounts: readonly string[] | (() => readonly string[]),
    private readonly o: AccountLeasesOptions,
  ) {
    this.now = o.now ?? Date.now;
    this.accounts = typeof accounts === 'function' ? accounts : () => accounts;
  }

  private readonly accounts: () => readonly string[];

  get owner(): string {
    return this.ledger.owner;
  }

  /** Whether this process may start work on the account now. */
  holds(accountId: string): boolean {
    return (this.mine.get(accountId) ?? 0) > this.now();
  }

  held(): string[] {
    return [...this.mine.keys()].filter((a) => this.holds(a)).sort();
  }

  /** Runs `fn` if this process holds the account's lease; undefined (nothing done) otherwise. */
  async use<T>(accountId: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.stopped || !this.holds(accountId)) return undefined;
    this.busy.set(accountId, (this.busy.get(accountId) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      this.busy.set(accountId, this.busy.get(accountId)! - 1);
    }
  }

  /** First tick (so accounts are held before the first poll), then one every LEASE_HEARTBEAT_MS. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => {
      void this.tick().catch((err: unknown) => this.o.log.warn({ err: (err as Error).message }, 'account lease heartbeat failed; work stops when the leases run out'));
    }, Math.min(this.o.heartbeatMs ?? LEASE_HEARTBEAT_MS, LEASE_HEARTBEAT_MS));
    this.timer.unref();
  }

  /** One renewal and acquisition round, after any round in progress (so a caller sees its own effects). */
  tick(): Promise<void> {
    const run = this.ticking.then(() => this.doTick());
    this.ticking = run.catch(() => undefined);
    return run;
  }

  private async doTick(): Promise<void> {
    if (this.stopped) return;
    const { db } = this.ledger;
    const owner = this.owner;
    const now = this.now();
    const validUntil = now + LEASE_TTL_MS - SAFETY_MS;
    const accounts = this.accounts();
    await beatLeaseOwner(db, owner, 'daemon', now);
    // An account removed from the configuration (a reload): its lease goes back when idle.
    for (const a of [...this.mine.keys()]) {
      if (accounts.includes(a) || this.busy.get(a)) continue;
      this.mine.delete(a);
      await db.updateTable('account_leases').set({ expires_at: now }).where('account_id', '=', a).where('owner', '=', owner).execute();
    }

    // Renew; what is not renewed was taken by another process (this one stalled past its TTL).
    const renewed = new Set(accounts.length === 0 ? [] : (await db.updateTable('account_leases').set({ heartbeat_at: now, expires_at: now + LEASE_TTL_MS })
      .where('owner', '=', owner).where('account_id', 'in', [...accounts]).returning('account_id').execute()).map((r) => r.account_id));
    for (const a of [...this.mine.keys()]) {
      if (renewed.has(a)) this.mine.set(a, validUntil);
      else {
        this.mine.delete(a);
        this.o.log.warn({ account: a }, 'account lease lost to another process; this one stops working the account');
      }
    }
    for (const a of renewed) if (!this.mine.has(a) && accounts.includes(a)) this.mine.set(a, validUntil);

    // SQLite: the writer lock says no other daemon runs, so every account is this one's now.
    const force = this.ledger.dialect === 'sqlite';
    const live = force ? 1 : Number((await db.selectFrom('lease_owners').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('kind', '=', 'daemon').where('expires_at', '>=', now).executeTakeFirstOrThrow()).n);
    const share = Math.ceil(accounts.length / Math.max(1, live));
    for (const accountId of accounts) {
      if (this.mine.size >= share || this.stopped) break;
      if (this.mine.has(accountId)) continue;
      const got = await db
        .insertInto('account_leases')
        .values({ account_id: accountId, owner, acquired_at: now, heartbeat_at: now, expires_at: now + LEASE_TTL_MS, previous_owner: null, previous_expires_at: null })
        .onConflict((oc) => {
          const up = oc.column('account_id').doUpdateSet((eb) => ({
            owner, acquired_at: now, heartbeat_at: now, expires_at: now + LEASE_TTL_MS,
            previous_owner: eb.ref('account_leases.owner'), previous_expires_at: eb.ref('account_leases.expires_at'),
          }));
          return force ? up : up.where('account_leases.expires_at', '<', now);
        })
        .returning(['account_id', 'previous_owner', 'previous_expires_at'])
        .executeTakeFirst();
      if (!got) continue;
      this.mine.set(accountId, validUntil);
      this.o.log.info({ account: accountId, owner, ...(got.previous_owner ? { from: got.previous_owner, expiredAt: new Date(Number(got.previous_expires_at)).toISOString() } : {}) }, got.previous_owner ? 'account lease taken over' : 'account lease acquired');
      this.o.onAcquired?.(accountId);
    }

    // More than a fair share: hand one idle account back, so a daemon that started later gets work.
    if (!force && this.mine.size > share) {
      const idle = [...this.mine.keys()].reverse().find((a) => !this.busy.get(a));
      if (idle) {
        this.mine.delete(idle); // no work starts on it from here on
        await db.updateTable('account_leases').set({ expires_at: now }).where('account_id', '=', idle).where('owner', '=', owner).execute();
        this.o.log.info({ account: idle, share }, 'account lease handed back (more than a fair share)');
      }
    }
  }

  /** A clean stop: no new work, the leases and the registration go (others take over at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    this.mine.clear();
    await dropLeaseOwner(this.ledger.db, this.owner);
  }
}
