/**
 * What the daemon knows about its own health, per account: shown by `/healthz` and `/metrics`.
 */
export interface AccountHealth {
  lastGoodPollAt?: number;
  lastPollError?: { at: number; message: string };
  lastWebhookAt?: number;
}

/** The daemon's work loops whose failures `/healthz` reports. */
export type LoopName = 'poll' | 'replies' | 'reply-send' | 'delivery';

/** A loop's run of failures: reset by a success. */
export interface LoopHealth {
  failuresInARow: number;
  lastError?: { at: number; message: string };
  lastSuccessAt?: number;
}

/** How long a failed ledger write keeps `/healthz` degraded (unless the ledger accepts writes again). */
export const WRITE_FAILURE_MEMORY_MS = 5 * 60_000;

/**
 * Where an account stands in this daemon: `running` (its jobs are scheduled), `stopping` (a
 * reload is stopping its jobs), `restarting` (its settings changed: stopped, then started with
 * the new ones), `removed` (a reload took it out: nothing runs for it any more).
 */
export type AccountRunState = 'running' | 'stopping' | 'restarting' | 'removed';

export class DaemonState {
  readonly startedAt = Date.now();
  private readonly accounts = new Map<string, AccountHealth>();
  /** Each account's run state and since when (epoch ms); removed ones stay listed. */
  readonly accountStates = new Map<string, { state: AccountRunState; since: number }>();
  /** Keyed `loop account[/connector]`. */
  readonly loops = new Map<string, LoopHealth & { loop: LoopName; account: string; connector?: string }>();
  lastWriteFailure: { at: number; message: string } | undefined;

  account(id: string): AccountHealth {
    let a = this.accounts.get(id);
    if (!a) {
      a = {};
      this.accounts.set(id, a);
    }
    return a;
  }

  pollSucceeded(id: string, at = Date.now()): void {
    const a = this.account(id);
    a.lastGoodPollAt = at;
    delete a.lastPollError;
    this.loopSucceeded('poll', id, undefined, at);
  }

  pollFailed(id: string, message: string, at = Date.now()): void {
    this.account(id).lastPollError = { at, message };
    this.loopFailed('poll', id, undefined, message, at);
  }

  webhookReceived(id: string, at = Date.now()): void {
    this.account(id).lastWebhookAt = at;
  }

  private loop(loop: LoopName, account: string, connector: string | undefined) {
    const key = `${loop} ${account}${connector ? `/${connector}` : ''}`;
    let l = this.loops.get(key);
    if (!l) {
      l = { loop, account, ...(connector ? { connector } : {}), failuresInARow: 0 };
      this.loops.set(key, l);
    }
    return l;
  }

  loopSucceeded(loop: LoopName, account: string, connector?: string, at = Date.now()): void {
    const l = this.loop(loop, account, connector);
    l.failuresInARow = 0;
    l.lastSuccessAt = at;
  }

  loopFailed(loop: LoopName, account: string, connector: string | undefined, message: string, at = Date.now()): void {
    const l = this.loop(loop, account, connector);
    l.failuresInARow++;
    l.lastError = { at, message };
  }

  setAccountState(id: string, state: AccountRunState, at = Date.now()): void {
    this.accountStates.set(id, { state, since: at });
  }

  /** A reload removed the account: its health and loop records go, its state says `removed`. */
  forgetAccount(id: string, at = Date.now()): void {
    this.accounts.delete(id);
    for (const [key, l] of this.loops) if (l.account === id) this.loops.delete(key);
    this.setAccountState(id, 'removed', at);
  }

  /** A ledger write failed (full disk, read-only file, I/O error). */
  writeFailed(message: string, at = Date.now()): void {
    this.lastWriteFailure = { at, message };
  }
}
