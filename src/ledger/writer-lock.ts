import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import Database from 'better-sqlite3';
import { ConfigError } from '../errors.js';

/** The writer lock of one SQLite ledger, held until `release` (or until the process dies). */
export interface WriterLock {
  release(): void;
}

/**
 * One daemon per SQLite ledger (issue 9, item 10): two on one file both subscribe and both poll,
 * every event is delivered twice, and reply sending has no guard across processes. The lock is
 * SQLite's own: an exclusive lock on `<ledger>-writer.lock`, which the operating system drops
 * when the holder dies (even by SIGKILL), so a stale lock never blocks a restart. The holder's
 * pid is written next to it (`<ledger>-writer.pid`) so the refusal can name it. Read-only
 * commands (`status`, `dead-letters list`) do not take it. PostgreSQL mode is the way to run
 * several daemons. `:memory:` ledgers need no lock.
 */
export function acquireWriterLock(ledgerFile: string, what = 'daemon'): WriterLock {
  if (ledgerFile === ':memory:') return { release() {} };
  const lockFile = `${ledgerFile}-writer.lock`;
  const pidFile = `${ledgerFile}-writer.pid`;
  const db = new Database(lockFile, { timeout: 0 });
  if (existsSync(lockFile)) chmodSync(lockFile, 0o600);
  try {
    // Exclusive locking mode keeps the lock after the first write, until the connection closes.
    db.pragma('journal_mode = DELETE');
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder; INSERT INTO holder VALUES (' + process.pid + '); COMMIT;');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    let holder = 'another process';
    try {
      const [pid, host] = readFileSync(pidFile, 'utf8').trim().split(/\s+/);
      if (pid) holder = `pid ${pid}${host && host !== hostname() ? ` on ${host}` : ''}`;
    } catch {
      /* the holder has not written its pid yet */
    }
    throw new ConfigError(
      `Another avito-sync ${what} (${holder}) is already using the ledger ${ledgerFile}. Run one daemon per SQLite file: stop that one first, or use PostgreSQL (AVITO_SYNC_DB=postgres://…) to run several.`,
      'AVITO_SYNC_DB',
    );
  }
  writeFileSync(pidFile, `${process.pid} ${hostname()}\n`, { mode: 0o600 });
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      db.close();
    },
  };
}
