import { hostname } from 'node:os';
import type { LedgerDb } from '../ledger/database.js';
import { getSetting, setSetting } from '../ledger/settings.js';

/**
 * What a running daemon leaves in the ledger so that `status` (a separate process, ledger only)
 * can say whether one is running and when each account was last polled.
 */
export const HEARTBEAT_KEY = 'daemon_heartbeat';
/** Seconds between heartbeats; `status` calls a daemon gone after three missed ones. */
export const HEARTBEAT_SECONDS = 30;

export interface Heartbeat {
  pid: number;
  host: string;
  startedAt: number;
  at: number;
  /** Set when the daemon stopped cleanly. */
  stoppedAt?: number;
  /** Each account's run state in this daemon (running, restarting, removed…) and since when. */
  accounts?: Record<string, { state: string; since: number }>;
}

export interface LastPoll {
  at: number;
  ok: boolean;
  error?: string;
  /** The last poll that succeeded (kept across failures). */
  lastGoodAt?: number;
}

export async function writeHeartbeat(db: LedgerDb, startedAt: number, stopped = false, accounts?: Heartbeat['accounts']): Promise<void> {
  const now = Date.now();
  const hb: Heartbeat = { pid: process.pid, host: hostname(), startedAt, at: now, ...(stopped ? { stoppedAt: now } : {}), ...(accounts ? { accounts } : {}) };
  await setSetting(db, HEARTBEAT_KEY, JSON.stringify(hb));
}

export async function recordPoll(db: LedgerDb, accountId: string, ok: boolean, error?: string): Promise<void> {
  const key = `last_poll:${accountId}`;
  const prev = await readJson<LastPoll>(db, key);
  const now = Date.now();
  const row: LastPoll = { at: now, ok, ...(error ? { error } : {}), ...(ok ? { lastGoodAt: now } : prev?.lastGoodAt ? { lastGoodAt: prev.lastGoodAt } : {}) };
  await setSetting(db, key, JSON.stringify(row));
}

async function readJson<T>(db: LedgerDb, key: string): Promise<T | undefined> {
  const raw = await getSetting(db, key);
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return undefined;
  }
}

export interface DaemonStatus {
  running: boolean;
  pid: number | null;
  host: string | null;
  startedAt: string | null;
  lastSeen: string | null;
  /** Per account, while a daemon runs: its state there (`running`, `restarting`, `removed`…) and since when. */
  accounts: Record<string, { state: string; since: string }>;
}

export async function readDaemonStatus(db: LedgerDb, now = Date.now()): Promise<DaemonStatus> {
  const hb = await readJson<Heartbeat>(db, HEARTBEAT_KEY);
  if (!hb) return { running: false, pid: null, host: null, startedAt: null, lastSeen: null, accounts: {} };
  const running = hb.stoppedAt === undefined && now - hb.at < HEARTBEAT_SECONDS * 3 * 1000;
  const accounts = running ? Object.fromEntries(Object.entries(hb.accounts ?? {}).map(([id, a]) => [id, { state: a.state, since: new Date(a.since).toISOString() }])) : {};
  return { running, pid: hb.pid, host: hb.host, startedAt: new Date(hb.startedAt).toISOString(), lastSeen: new Date(hb.stoppedAt ?? hb.at).toISOString(), accounts };
}

export function readLastPoll(db: LedgerDb, accountId: string): Promise<LastPoll | undefined> {
  return readJson<LastPoll>(db, `last_poll:${accountId}`);
}
