import type Database from 'better-sqlite3';

/** Runs `fn` synchronously inside one SQLite write transaction (sqlite-ledger.ts). */
export type WriteSync = <T>(fn: (sqlite: Database.Database) => T) => Promise<T>;

interface Pending {
  fn: (sqlite: Database.Database) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit (SQLite only): synchronous writes submitted in the same tick share one transaction, which
 * saves a commit each (webhook bursts, chats finishing together). Each caller's promise resolves
 * only after the shared commit. If the shared transaction fails, each write is retried alone,
 * so one bad write fails alone and the others go on.
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(private readonly writeSync: WriteSync) {}

  run<T>(fn: (sqlite: Database.Database) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
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
