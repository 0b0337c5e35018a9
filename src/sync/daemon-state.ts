/**
 * What the daemon knows about its own health, per account: shown by `/healthz` and `/metrics`.
 */
export interface AccountHealth {
  lastGoodPollAt?: number;
  lastPollError?: { at: number; message: string };
  lastWebhookAt?: number;
}

export class DaemonState {
  readonly startedAt = Date.now();
  private readonly accounts = new Map<string, AccountHealth>();

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
  }

  pollFailed(id: string, message: string, at = Date.now()): void {
    this.account(id).lastPollError = { at, message };
  }

  webhookReceived(id: string, at = Date.now()): void {
    this.account(id).lastWebhookAt = at;
  }
}
