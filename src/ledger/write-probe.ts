import type { Ledger } from './ledger.js';

/** Thrown inside the probe's transaction to roll it back. */
const ROLLBACK = Symbol('rollback');
/** Larger than a page or two of either database: the insert must allocate new pages. */
const ROOM_BYTES = 16_384;

/**
 * Can the ledger be written? Two checks, each cheap enough for every `/healthz` call:
 * - a small committed write (a settings row): fails on a full disk, a read-only file, an I/O error;
 * - room for new pages: a larger insert that is rolled back, which fails (`SQLITE_FULL`) when the
 *   file cannot grow (its size limit, `max_page_count`) even while small updates still fit.
 * Returns undefined when both pass, else the reason.
 */
export async function probeLedgerWrite(ledger: Ledger): Promise<string | undefined> {
  try {
    const value = String(Date.now());
    await ledger.db.insertInto('settings').values({ key: 'health:probe', value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
    // SQLite rolls a transaction back itself on SQLITE_FULL; the rollback that follows then fails
    // with another message, so the insert's own error is kept and reported.
    let inner: unknown;
    await ledger.transaction(async (trx) => {
      try {
        await trx.insertInto('settings').values({ key: 'health:room', value: 'x'.repeat(ROOM_BYTES) }).onConflict((oc) => oc.column('key').doUpdateSet({ value: 'y'.repeat(ROOM_BYTES) })).execute();
      } catch (err) {
        inner = err;
        throw err;
      }
      throw ROLLBACK;
    }).catch((err: unknown) => {
      if (inner) throw inner;
      if (err !== ROLLBACK) throw err;
    });
    return undefined;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return `the ledger cannot be written${e.code ? ` (${e.code})` : ''}: ${e.message ?? String(err)}`;
  }
}

/** The database's own failures (full disk, I/O error, read-only file): the ledger, not the item, is at fault. */
export function isLedgerError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_') || /^(53|58|XX)/.test(code));
}
