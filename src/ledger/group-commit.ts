import type Database from 'better-sqlite3';

/** Runs `fn` synchronously inside one SQLite write transaction (sqlite-ledger.ts). */
export type WriteSync = <T>(fn: (sqlite: Database.Database) => T) => Promise<T>;

interface Pending {
  fn: (sqlite: Database.Database) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** When a group commits. */
export interface GroupCommitOptions {
  /**
   * How long the first write of a group may wait for others before the group commits. Default 0:
   * the writes submitted in the same tick share the commit (`setImmediate`), which is what a
   * webhook acknowledgement can afford.
   */
  windowMs?: number;
  /** The group commits at once when the writes waiting weigh this much (their `weight`). Default Infinity. */
  maxWeight?: number;
}

/**
 * Group commit (SQLite only): synchronous writes submitted together share one transaction, which
 * saves a commit each (webhook bursts, chats finishing together) and, with a window, writes each
 * index page touched by the group to the WAL once instead of once per write (chat pages of a poll
 * touch the random-ordered message-id index all over: docs/benchmarks.md). Each caller's promise
 * resolves only after the shared commit. If the shared transaction fails, each write is retried
 * alone, so one bad write fails alone and the others go on.
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private weight = 0;
  private timer: { kind: 'timeout'; t: NodeJS.Timeout } | { kind: 'immediate'; t: NodeJS.Immediate } | undefined;
  private readonly windowMs: number;
  private readonly maxWeight: number;

  constructor(
    private readonly writeSync: WriteSync,
    opts: GroupCommitOptions = {},
  ) {
    this.windowMs = opts.windowMs ?? 0;
    this.maxWeight = opts.maxWeight ?? Infinity;
  }

  /**
   * Queues `fn` for the next group. `weight` counts toward `maxWeight` (default 1); `wait: false`
   * commits the group without waiting out the window (the last write of a burst).
   */
  run<T>(fn: (sqlite: Database.Database) => T, opts: { weight?: number; wait?: boolean } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      this.weight += opts.weight ?? 1;
      if (this.windowMs > 0 && (this.weight >= this.maxWeight || opts.wait === false)) {
        // Full: commit now (still after this tick, so writes submitted with this one join it).
        if (this.timer?.kind !== 'immediate') {
          if (this.timer) clearTimeout(this.timer.t);
          this.timer = { kind: 'immediate', t: setImmediate(() => void this.flush()) };
        }
      } else if (!this.timer) {
        this.timer = this.windowMs > 0
          ? { kind: 'timeout', t: setTimeout(() => void this.flush(), this.windowMs) }
          : { kind: 'immediate', t: setImmediate(() => void this.flush()) };
      }
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.weight = 0;
    this.timer = undefined;
    if (batch.length === 0) return;
    if (batch.length === 1) {
      const only = batch[0]!;
      await this.writeSync(only.fn).then(only.resolve, only.reject);
      return;
    }
    let results: unknown[];
    try {
      results = await this.writeSync((sqlite) => batch.map((p) => p.fn(sqlite)));
    } catch {
      for (const p of batch) await this.writeSync(p.fn).then(p.resolve, p.reject);
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]));
  }
}
