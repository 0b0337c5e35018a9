import type { Ledger } from './ledger.js';
import type Database from 'better-sqlite3';

/** A claimed delivery: one message (or one deletion) for one connector. */
export interface ClaimedDelivery {
  id: number;
  messageId: string;
  kind: 'message' | 'deletion';
  chatId: string;
  /** Attempts before this one: > 0 means an earlier attempt may have reached the CRM. */
  priorAttempts: number;
}

export interface OutboxCounts {
  pending: number;
  leased: number;
  delivered: number;
  dead: number;
  skipped: number;
}

/** How long a claim holds a delivery; an expired lease is claimable again (a crashed process). */
export const LEASE_MS = 120_000;


/**
 * The delivery outbox of one (account, connector): a row per message (or deletion), with status,
 * attempts, next attempt time, last error and a lease. Rows are created in the transaction that
 * stores their message (see `Ingest`); `catchUp` only fills in for a connector that was not
 * routed when its messages came in (newly enabled, replayed, a ledger-only run).
 */
export interface Outbox {
  readonly accountId: string;
  readonly connector: string;
  /**
   * Adds the deliveries of messages stored while this connector was not routed, and deletion
   * notes the ingest could not know about; returns how many. Cheap when there is nothing to do.
   */
  catchUp(): Promise<number>;
  /**
   * Claims due deliveries, keeping each chat's order: per chat, only a prefix of its undelivered
   * rows is taken, stopping at the first that is not due (backing off, or leased by another run).
   * `skipChat` holds a chat back this round.
   */
  claim(limit: number, now?: number, skipChat?: (chatId: string) => boolean): Promise<ClaimedDelivery[]>;
  markDelivered(items: readonly { id: number; remoteId: string }[]): Promise<void>;
  /** Back to pending after a failed attempt, due again at `at`. */
  retryLater(items: readonly { id: number; error: string; at: number }[]): Promise<void>;
  /** Back to pending without counting the attempt (it never reached the CRM: paused, or its chat was blocked). */
  release(ids: readonly number[], at?: number): Promise<void>;
  /** Failed for good: a dead letter, kept with its last error. */
  markDead(items: readonly { id: number; error: string }[]): Promise<void>;
  /** Not to be delivered: the echo of a reply this daemon sent (already in the CRM as the reply). */
  markSkipped(ids: readonly number[]): Promise<void>;
  counts(): Promise<OutboxCounts>;
}

/** The SQLite outbox, on prepared statements run in synchronous transactions. */
export class SqliteOutbox implements Outbox {
  private readonly s: Record<string, Database.Statement>;

  constructor(
    db: Database.Database,
    private readonly writeSync: <T>(fn: () => T) => Promise<T>,
    private readonly readSync: <T>(fn: () => T) => Promise<T>,
    readonly accountId: string,
    readonly connector: string,
    /** This process's lease owner id (`Ledger.owner`). */
    private readonly owner: string,
  ) {
    this.s = {
      cursor: db.prepare(`SELECT value FROM cursors WHERE account_id = ? AND name = ?`).pluck(),
      setCursor: db.prepare(`INSERT INTO cursors (account_id, name, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (account_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
      maxSeq: db.prepare(`SELECT max(seq) FROM (SELECT seq FROM messages WHERE account_id = ? AND seq > ? ORDER BY seq LIMIT ?)`).pluck(),
      enqueue: db.prepare(`INSERT INTO deliveries (account_id, connector, message_id, kind, chat_id, created, seq, status, attempts, next_attempt_at, updated_at)
        SELECT m.account_id, @connector, m.message_id, 'message', m.chat_id, m.created, m.seq,
          CASE WHEN EXISTS (SELECT 1 FROM reply_sends r WHERE r.account_id = m.account_id AND r.avito_message_id = m.message_id) THEN 'skipped' ELSE 'pending' END,
          0, @now, @now
        FROM messages m WHERE m.account_id = @account AND m.seq > @from AND m.seq <= @to
        ON CONFLICT (account_id, connector, message_id, kind) DO NOTHING`),
      maxDeleted: db.prepare(`SELECT max(deleted_at) FROM messages WHERE account_id = ? AND deleted_at > ?`).pluck(),
      enqueueDeleted: db.prepare(`INSERT INTO deliveries (account_id, connector, message_id, kind, chat_id, created, seq, status, attempts, next_attempt_at, updated_at)
        SELECT m.account_id, @connector, m.message_id, 'deletion', m.chat_id, m.created, m.seq, 'pending', 0, @now, @now
        FROM messages m WHERE m.account_id = @account AND m.deleted_at > @from AND m.deleted_at <= @to
          AND EXISTS (SELECT 1 FROM deliveries d WHERE d.account_id = m.account_id AND d.connector = @connector AND d.message_id = m.message_id AND d.kind = 'message' AND d.status = 'delivered')
        ON CONFLICT (account_id, connector, message_id, kind) DO NOTHING`),
      // One status per query, so the deliveries_due index gives the order (no sort of the whole backlog).
      candidates: db.prepare(`SELECT id, message_id, kind, chat_id, status, attempts, next_attempt_at, lease_until, lease_owner, created, seq FROM deliveries
        WHERE account_id = ? AND connector = ? AND status = ? ORDER BY chat_id, created, seq LIMIT ?`),
      lease: db.prepare(`UPDATE deliveries SET status = 'leased', lease_until = ?, lease_owner = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?`),
      delivered: db.prepare(`UPDATE deliveries SET status = 'delivered', remote_id = ?, lease_until = NULL, last_error = NULL, updated_at = ? WHERE id = ?`),
      retry: db.prepare(`UPDATE deliveries SET status = 'pending', next_attempt_at = ?, last_error = ?, lease_until = NULL, updated_at = ? WHERE id = ?`),
      release: db.prepare(`UPDATE deliveries SET status = 'pending', attempts = max(attempts - 1, 0), next_attempt_at = ?, lease_until = NULL, updated_at = ? WHERE id = ?`),
      dead: db.prepare(`UPDATE deliveries SET status = 'dead', last_error = ?, lease_until = NULL, updated_at = ? WHERE id = ?`),
      skipped: db.prepare(`UPDATE deliveries SET status = 'skipped', lease_until = NULL, updated_at = ? WHERE id = ?`),
      counts: db.prepare(`SELECT status, count(*) AS n FROM deliveries WHERE account_id = ? AND connector = ? GROUP BY status`),
    };
  }

  /**
   * The cursors here are high-water marks of what was looked at, not what was enqueued: rows
   * below them that commit late were enqueued by their own transaction.
   */
  async catchUp(batch = 20_000): Promise<number> {
    const name = `enqueue:${this.connector}`;
    const delName = `enqueue-deleted:${this.connector}`;
    return this.writeSync(() => {
      const now = Date.now();
      let added = 0;
      const from = Number(this.s.cursor!.get(this.accountId, name) ?? 0);
      const to = this.s.maxSeq!.get(this.accountId, from, batch) as number | null;
      if (to !== null) {
        added += this.s.enqueue!.run({ connector: this.connector, account: this.accountId, from, to, now }).changes;
        this.s.setCursor!.run(this.accountId, name, String(to), now);
      }
      const delFrom = Number(this.s.cursor!.get(this.accountId, delName) ?? 0);
      const delTo = this.s.maxDeleted!.get(this.accountId, delFrom) as number | null;
      if (delTo !== null) {
        added += this.s.enqueueDeleted!.run({ connector: this.connector, account: this.accountId, from: delFrom, to: delTo, now }).changes;
        this.s.setCursor!.run(this.accountId, delName, String(delTo), now);
      }
      return added;
    });
  }

  async claim(limit: number, now = Date.now(), skipChat?: (chatId: string) => boolean): Promise<ClaimedDelivery[]> {
    return this.writeSync(() => {
      type Row = {
        id: number; message_id: string; kind: 'message' | 'deletion'; chat_id: string; status: string; attempts: number; next_attempt_at: number; lease_until: number | null; lease_owner: string | null; created: number; seq: number;
      };
      const take = limit * 2;
      const pending = this.s.candidates!.all(this.accountId, this.connector, 'pending', take) as Row[];
      const leased = this.s.candidates!.all(this.accountId, this.connector, 'leased', take) as Row[];
      const order = (a: Row, b: Row) => (a.chat_id < b.chat_id ? -1 : a.chat_id > b.chat_id ? 1 : a.created - b.created || a.seq - b.seq);
      // A list cut short knows nothing past its last row: the merge is valid up to the smallest such row.
      const cuts = [pending, leased].filter((l) => l.length === take).map((l) => l[l.length - 1]!).sort(order);
      const upTo = cuts[0];
      const rows = [...pending, ...leased].filter((r) => !upTo || order(r, upTo) <= 0).sort(order);
      // One writer per SQLite ledger (the writer lock): a lease of another owner was left by a
      // process that is gone (killed), so it is free now, not when it expires.
      const isOrphaned = (owner: string | null) => owner !== null && owner !== this.owner;
      const out: ClaimedDelivery[] = [];
      let blockedChat: string | undefined;
      for (const r of rows) {
        if (out.length >= limit) break;
        if (r.chat_id === blockedChat) continue;
        const due = r.status === 'pending' ? r.next_attempt_at <= now : (r.lease_until ?? 0) < now || isOrphaned(r.lease_owner);
        if (!due || skipChat?.(r.chat_id)) {
          blockedChat = r.chat_id;
          continue;
        }
        out.push({ id: r.id, messageId: r.message_id, kind: r.kind, chatId: r.chat_id, priorAttempts: r.attempts });
      }
      for (const c of out) this.s.lease!.run(now + LEASE_MS, this.owner, now, c.id);
      return out;
    });
  }

  async markDelivered(items: readonly { id: number; remoteId: string }[]): Promise<void> {
    if (items.length === 0) return;
    await this.writeSync(() => {
      const now = Date.now();
      for (const i of items) this.s.delivered!.run(i.remoteId, now, i.id);
    });
  }

  async retryLater(items: readonly { id: number; error: string; at: number }[]): Promise<void> {
    if (items.length === 0) return;
    await this.writeSync(() => {
      const now = Date.now();
      for (const i of items) this.s.retry!.run(i.at, i.error.slice(0, 1000), now, i.id);
    });
  }

  async release(ids: readonly number[], at = Date.now()): Promise<void> {
    if (ids.length === 0) return;
    await this.writeSync(() => {
      const now = Date.now();
      for (const id of ids) this.s.release!.run(at, now, id);
    });
  }

  async markDead(items: readonly { id: number; error: string }[]): Promise<void> {
    if (items.length === 0) return;
    await this.writeSync(() => {
      const now = Date.now();
      for (const i of items) this.s.dead!.run(i.error.slice(0, 1000), now, i.id);
    });
  }

  async markSkipped(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.writeSync(() => {
      const now = Date.now();
      for (const id of ids) this.s.skipped!.run(now, id);
    });
  }

  async counts(): Promise<OutboxCounts> {
    const rows = await this.readSync(() => this.s.counts!.all(this.accountId, this.connector) as { status: keyof OutboxCounts; n: number }[]);
    const out: OutboxCounts = { pending: 0, leased: 0, delivered: 0, dead: 0, skipped: 0 };
    for (const r of rows) out[r.status] = r.n;
    return out;
  }
}

/**
 * Frees every delivery lease at a daemon's start, while it holds the SQLite ledger's writer lock:
 * their holder is gone (killed), possibly with this very pid (pid 1 in a container), and must not
 * be waited for until the lease runs out. The attempt stays counted, so the next claim reconciles
 * before it sends again (invariant 2). Never on PostgreSQL, where other daemons hold live leases.
 */
export async function releaseLeases(ledger: Pick<Ledger, 'db' | 'dialect'>): Promise<number> {
  if (ledger.dialect !== 'sqlite') return 0;
  const now = Date.now();
  const res = await ledger.db.updateTable('deliveries')
    .set((eb) => ({ status: 'pending', lease_until: null, lease_owner: null, next_attempt_at: eb.fn('min', [eb.ref('next_attempt_at'), eb.val(now)]), updated_at: now }))
    .where('status', '=', 'leased').executeTakeFirst();
  return Number(res.numUpdatedRows ?? 0n);
}
