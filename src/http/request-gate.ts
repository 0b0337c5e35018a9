import { setTimeout as delay } from 'node:timers/promises';

/**
 * A connector's per-account request rate, as the SDK hands it out (`ConnectorContext.requestGate`):
 * `wait()` before each request; `holdFor(ms)` after the remote said "too many" (nothing starts for
 * `ms`). The rule is GCRA (the generic cell rate algorithm, the leaky bucket as a meter): starts
 * at least `intervalMs` apart on average, with up to `burst` at once after a quiet spell; `burst`
 * 1 is a strict spacing. Each start is recorded when it actually happens, so late timers never
 * bunch two starts together.
 */
export interface RequestGate {
  wait(): Promise<void>;
  holdFor(ms: number): void;
}

export interface RequestGateOptions {
  /** Average time between request starts (ms), e.g. `Math.ceil(1000 / requestsPerSecond)`. */
  intervalMs: number;
  /** Requests that may start at once after a quiet spell (a leaky bucket's capacity). Default 1. */
  burst?: number;
  /** Separates two gates of one connector and account (two APIs with their own limits). Default `default`. */
  name?: string;
}

/** The in-process gate: enough where one process works an account (SQLite, tests). */
export class LocalRequestGate implements RequestGate {
  /** The theoretical arrival time of the next request (GCRA's TAT), epoch ms. */
  private tat = 0;
  private tail: Promise<void> = Promise.resolve();
  private readonly tolerance: number;

  constructor(private readonly intervalMs: number, burst = 1) {
    this.tolerance = Math.max(0, burst - 1) * intervalMs;
  }

  wait(): Promise<void> {
    const turn = this.tail.then(async () => {
      for (let wait = this.tat - this.tolerance - Date.now(); wait > 0; wait = this.tat - this.tolerance - Date.now()) await delay(wait);
      this.tat = Math.max(this.tat, Date.now()) + this.intervalMs;
    });
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  holdFor(ms: number): void {
    this.tat = Math.max(this.tat, Date.now() + ms + this.tolerance);
  }
}
