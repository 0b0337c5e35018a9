import type { LedgerDb } from '../ledger/database.js';
import { listAccounts } from '../ledger/accounts.js';
import { listCursors } from '../ledger/cursors.js';
import { recentItemErrors } from '../ledger/item-errors.js';
import { connectorStore, pauseEnd, pausedState } from '../ledger/connector-state.js';
import { readDaemonStatus, readLastPoll, type DaemonStatus } from './daemon-heartbeat.js';
import { listAccountLeases } from '../ledger/leases.js';
import { getToken } from '../ledger/tokens.js';
import { countPendingVoice } from '../ledger/voice-files.js';
import { countDetailUpdatesPending } from '../ledger/conversations.js';
import { connectorStatusInfo, connectorsWithState, countAccountRows, countConversations, deliveredAfter, deliveryBacklog } from '../ledger/status-figures.js';

export interface AccountStatus {
  id: string;
  /**
   * The account's state in the running daemon: `running`, `restarting`, `removed` (a reload took
   * it out), `not served` (in the ledger, not in the daemon's configuration); null with no daemon.
   */
  state: string | null;
  avitoUserId: string | null;
  chats: number;
  messages: number;
  voicePending: number;
  /** Internal progress marks (poll, enqueue, backfill partitions): `status --verbose` shows them. */
  cursors: Record<string, string>;
  /** The daemon's last poll of this account (any process), and the last one that succeeded. */
  lastPoll: { at: string; ok: boolean; error: string | null; lastGoodAt: string | null } | null;
  token: { expiresAt: string | null; expired: boolean } | null;
  lastErrors: { at: string; scope: string; ref: string | null; error: string }[];
  connectors: ConnectorStatus[];
  /**
   * Which daemon works this account (polls it, refreshes its token, sends its replies): its
   * lease's owner (`host:pid:id`), host and pid, and whether the lease is in force (`held`) or ran
   * out (its process stopped or died; another daemon takes it within 30 s). Null: never leased.
   */
  lease: { owner: string; host: string | null; pid: number | null; acquiredAt: string; expiresAt: string; held: boolean } | null;
}

export interface ConnectorStatus {
  connector: string;
  /** The connector's own name for itself (its definition's `displayName`), else its id. */
  displayName: string;
  /** Deliveries by status: pending (incl. retrying), leased, delivered, dead, skipped (echoes). */
  backlog: { pending: number; leased: number; delivered: number; dead: number; skipped: number };
  conversations: number;
  /**
   * Conversations made before their chat's details arrived that the connector is still to name
   * after them (capability `updateConversations`): they go once the details are in.
   */
  awaitingDetails: number;
  /** Set while the connector paused its CRM traffic (a ban, a 410): until when and why. */
  paused: { until: string; reason: string } | null;
  lastError: string | null;
  /** What the connector says about itself for `status`: its store keys under `status:` (e.g. mode). */
  info: Record<string, string>;
}

export interface StatusReport {
  ledger: string;
  /** Whether a daemon (`run`) is writing to this ledger now, from its heartbeat. */
  daemon: DaemonStatus;
  accounts: AccountStatus[];
}

/** What `status` shows: read from the ledger only, no remote calls. */
export async function collectStatus(db: LedgerDb, ledgerFile: string, now = Date.now(), displayNames: ReadonlyMap<string, string> = new Map()): Promise<StatusReport> {
  const accounts: AccountStatus[] = [];
  const leases = new Map((await listAccountLeases(db)).map((l) => [l.accountId, l]));
  const daemon = await readDaemonStatus(db, now);
  // A daemon too old to say per account: every account counts as running while it runs.
  const perAccount = Object.keys(daemon.accounts).length > 0;
  for (const a of await listAccounts(db)) {
    const lease = leases.get(a.id);
    const token = await getToken(db, a.id, 'avito');
    const cursors: Record<string, string> = {};
    for (const c of await listCursors(db, a.id)) cursors[c.name] = c.value;
    const poll = await readLastPoll(db, a.id);
    accounts.push({
      id: a.id,
      state: !daemon.running ? null : perAccount ? (daemon.accounts[a.id]?.state ?? 'not served') : 'running',
      lastPoll: poll ? { at: new Date(poll.at).toISOString(), ok: poll.ok, error: poll.error ?? null, lastGoodAt: poll.lastGoodAt ? new Date(poll.lastGoodAt).toISOString() : null } : null,
      avitoUserId: a.avito_user_id,
      chats: await countAccountRows(db, 'chats', a.id),
      messages: await countAccountRows(db, 'messages', a.id),
      voicePending: await countPendingVoice(db, a.id),
      cursors,
      token: token ? { expiresAt: token.expires_at ? new Date(token.expires_at).toISOString() : null, expired: token.expires_at !== null && token.expires_at <= now } : null,
      lastErrors: (await recentItemErrors(db, 5, a.id)).map((e) => ({ at: new Date(e.at).toISOString(), scope: e.scope, ref: e.ref, error: e.error })),
      connectors: await connectorStatuses(db, a.id, now, displayNames),
      lease: lease ? {
        owner: lease.owner, host: lease.host, pid: lease.pid, acquiredAt: new Date(lease.acquiredAt).toISOString(),
        expiresAt: new Date(lease.expiresAt).toISOString(), held: lease.expiresAt > now,
      } : null,
    });
  }
  return { ledger: ledgerFile, daemon, accounts };
}

async function connectorStatuses(db: LedgerDb, accountId: string, now: number, displayNames: ReadonlyMap<string, string>): Promise<ConnectorStatus[]> {
  const rows = await deliveryBacklog(db, accountId);
  const ids = [...new Set([...rows.map((r) => r.connector), ...(await connectorsWithState(db, accountId))])].sort();
  const out: ConnectorStatus[] = [];
  for (const connector of ids) {
    const backlog = { pending: 0, leased: 0, delivered: 0, dead: 0, skipped: 0 };
    for (const r of rows) if (r.connector === connector) backlog[r.status] = r.n;
    const paused = await pausedState(db, accountId, connector, now);
    out.push({
      connector,
      displayName: displayNames.get(connector) ?? connector,
      backlog,
      conversations: await countConversations(db, accountId, connector),
      awaitingDetails: await countDetailUpdatesPending(db, accountId, connector),
      paused: paused ? { until: pauseEnd(paused.until), reason: paused.reason } : null,
      lastError: await currentError(db, accountId, connector),
      info: await connectorStatusInfo(db, accountId, connector),
    });
  }
  return out;
}

/**
 * The connector's last error, unless a delivery succeeded after it: a stale error shown after
 * recovery sends the operator looking for a problem that is gone.
 */
async function currentError(db: LedgerDb, accountId: string, connector: string): Promise<string | null> {
  const err = await connectorStore(db, accountId, connector).get('last_error');
  if (!err) return null;
  const at = Date.parse(err.split(' ')[0] ?? '');
  if (!Number.isFinite(at)) return err;
  return (await deliveredAfter(db, accountId, connector, at)) ? null : err;
}
