import type { Ledger } from './database.js';

/**
 * Can the ledger be written? Two checks, each cheap enough for every `/healthz` call:
 * - a small committed write (a settings row): fails on a full disk, a read-only file, an I/O error;
 * - room for new pages: a larger insert that is rolled back, which fails with `SQLITE_FULL` when
 *   the file cannot grow (the size limit, `max_page_count`) even while small updates still fit.
 * Returns undefined when both pass, else the reason.
 */
export async function probeLedgerWrite(ledger: Ledger): Promise<string | undefined> {
  try {
    await ledger.readSync((sqlite) => {
      sqlite.prepare(`INSERT INTO settings (key, value) VALUES ('health:probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(String(Date.now()));
      const pageSize = Number(sqlite.pragma('page_size', { simple: true })) || 4096;
      sqlite.exec('BEGIN IMMEDIATE');
      try {
        sqlite.prepare(`INSERT INTO settings (key, value) VALUES ('health:room', hex(randomblob(?)))`).run(pageSize * 2);
      } finally {
        if (sqlite.inTransaction) sqlite.exec('ROLLBACK'); // SQLITE_FULL may have rolled it back already
      }
    });
    return undefined;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return `the ledger cannot be written${e.code ? ` (${e.code})` : ''}: ${e.message ?? String(err)}`;
  }
}

/** SQLite's own failures (full disk, I/O error, read-only file): the ledger, not the item, is at fault. */
export function isLedgerError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}
