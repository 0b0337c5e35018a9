import { INDEFINITE, pauseEnd, pausedState } from '../ledger/connector-state.js';
import { probeLedgerWrite } from '../ledger/write-probe.js';
import type { Runtime } from '../runtime.js';
import type { HealthReport } from '../server/http-server.js';
import { WRITE_FAILURE_MEMORY_MS, type DaemonState } from './daemon-state.js';

/** A loop (poll, replies, reply sending, delivery) that failed this many times in a row makes the daemon degraded. */
export const LOOP_FAILURES_DEGRADED = 3;

/**
 * `/healthz` (issue 9, item 7): `down` when the ledger cannot be written at all (answered 503);
 * `degraded` (answered 200: the process is alive and catching up by itself) when a ledger write
 * failed lately, a loop failed LOOP_FAILURES_DEGRADED times in a row, an account has not polled
 * for three intervals, or a connector is paused — each with its reason in `reasons`; else `ok`.
 */
export async function healthReport(rt: Runtime, state: DaemonState, pollEverySeconds: number, holds: (accountId: string) => boolean = () => true): Promise<HealthReport> {
  const now = Date.now();
  const writeProblem = await probeLedgerWrite(rt.ledger);
  const reasons: string[] = [];
  if (writeProblem) reasons.push(writeProblem);
  else if (state.lastWriteFailure && state.lastWriteFailure.at > now - WRITE_FAILURE_MEMORY_MS) {
    reasons.push(`a ledger write failed at ${new Date(state.lastWriteFailure.at).toISOString()}: ${state.lastWriteFailure.message}`);
  }
  const staleAfter = pollEverySeconds * 3 * 1000;
  const paused = new Map<string, { connector: string; until: string; reason: string }[]>();
  for (const c of rt.connectors) {
    const p = await pausedState(rt.ledger.db, c.accountId, c.definition.id, now).catch(() => undefined);
    if (p) {
      paused.set(c.accountId, [...(paused.get(c.accountId) ?? []), { connector: c.definition.id, until: pauseEnd(p.until), reason: p.reason }]);
      reasons.push(`${c.definition.id} paused for ${c.accountId} ${pauseEnd(p.until) === INDEFINITE ? 'until resumed' : `until ${pauseEnd(p.until)}`}: ${p.reason}`);
    }
  }
  const loops = [...state.loops.values()].map((l) => ({
    loop: l.loop, account: l.account, ...(l.connector ? { connector: l.connector } : {}),
    failuresInARow: l.failuresInARow,
    lastError: l.lastError ? { at: new Date(l.lastError.at).toISOString(), message: l.lastError.message } : null,
  }));
  for (const l of state.loops.values()) {
    if (l.failuresInARow >= LOOP_FAILURES_DEGRADED) reasons.push(`${l.loop} for ${l.account}${l.connector ? `/${l.connector}` : ''} failed ${l.failuresInARow} times in a row: ${l.lastError?.message ?? ''}`);
  }
  const accounts = rt.accounts.map((a) => {
    const h = state.account(a.config.id);
    const exp = a.client.tokens.expiresAt;
    // An account added by a reload is judged from when it started, not from the daemon's start.
    const since = h.lastGoodPollAt ?? state.accountStates.get(a.config.id)?.since ?? state.startedAt;
    // An account another daemon holds is polled there (several daemons on PostgreSQL).
    const stale = holds(a.config.id) && since < now - staleAfter;
    if (stale) reasons.push(`no good poll of ${a.config.id} for ${Math.round((now - since) / 1000)} s`);
    const pollStreak = [...state.loops.values()].find((l) => l.loop === 'poll' && l.account === a.config.id)?.failuresInARow ?? 0;
    return {
      id: a.config.id,
      state: state.accountStates.get(a.config.id)?.state ?? 'running',
      lastGoodPoll: h.lastGoodPollAt ? new Date(h.lastGoodPollAt).toISOString() : null,
      lastPollError: h.lastPollError ? { at: new Date(h.lastPollError.at).toISOString(), message: h.lastPollError.message } : null,
      lastWebhook: h.lastWebhookAt ? new Date(h.lastWebhookAt).toISOString() : null,
      token: { expiresAt: exp ? new Date(exp).toISOString() : null, state: exp === undefined ? 'unknown' : exp <= now ? 'expired' : 'valid' },
      pausedConnectors: paused.get(a.config.id) ?? [],
      healthy: !stale && pollStreak < LOOP_FAILURES_DEGRADED && !paused.has(a.config.id),
    };
  });
  const status = writeProblem ? 'down' : reasons.length ? 'degraded' : 'ok';
  // Accounts a config reload took out: listed so an operator sees the reload took effect.
  const removed = [...state.accountStates].filter(([, s]) => s.state === 'removed').map(([id, s]) => ({ id, since: new Date(s.since).toISOString() }));
  return { status, ledger: writeProblem ? 'unwritable' : 'ok', reasons, uptimeSeconds: Math.round((now - state.startedAt) / 1000), accounts, removedAccounts: removed, loops };
}
