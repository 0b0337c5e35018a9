import { setTimeout as delay } from 'node:timers/promises';
import { sql } from 'kysely';
import type { RequestGate } from '../http/request-gate.js';
import type { LedgerDb } from './ledger.js';

/** The longest single sleep before looking at the slot again (another process may have held it). */
const MAX_SLEEP_MS = 1_000;

/**
 * A request gate shared by every process on one PostgreSQL ledger: the GCRA state of one
 * (account, connector, name) is a row of `request_slots`, and a process may start a request only
 * by moving that row's `next_at` forward in one atomic statement, taken when the request is due
 * (never reserved ahead), so a CRM's per-account limit (counted per account, not per process)
 * holds however many daemons send. Local callers take turns first,
 * so one process sends one claim at a time. Times are epoch ms from each host's clock: the hosts'
 * clocks must agree (NTP), as they must for the leases.
 */
export class SharedRequestGate implements RequestGate {
  private tail: Promise<void> = Promise.resolve();
  private readonly tolerance: number;

  constructor(
    private readonly db: LedgerDb,
    private readonly key: string,
    private readonly intervalMs: number,
    burst = 1,
  ) {
    this.tolerance = Math.max(0, burst - 1) * intervalMs;
  }

  wait(): Promise<void> {
    const turn = this.tail.then(() => this.take());
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  private async take(): Promise<void> {
    const { db, key, intervalMs: iv, tolerance: tol } = this;
    for (;;) {
      const now = Date.now();
      const took = await sql<{ next_at: number }>`INSERT INTO request_slots (key, next_at) VALUES (${key}, ${now + iv})
        ON CONFLICT (key) DO UPDATE SET next_at = (CASE WHEN request_slots.next_at > ${now} THEN request_slots.next_at ELSE ${now} END) + ${iv}
        WHERE request_slots.next_at - ${tol} <= ${now}
        RETURNING next_at`.execute(db);
      if (took.rows.length) return;
      const row = await db.selectFrom('request_slots').select('next_at').where('key', '=', key).executeTakeFirst();
      const wait = Number(row?.next_at ?? 0) - tol - Date.now();
      if (wait > 0) await delay(Math.min(wait, MAX_SLEEP_MS));
    }
  }

  holdFor(ms: number): void {
    const until = Date.now() + ms + this.tolerance;
    // Best effort: a lost hold only means the next request may meet the remote's refusal again.
    void this.db.updateTable('request_slots').set({ next_at: sql<number>`(CASE WHEN next_at > ${until} THEN next_at ELSE ${until} END)` })
      .where('key', '=', this.key).execute().catch(() => undefined);
  }
}
