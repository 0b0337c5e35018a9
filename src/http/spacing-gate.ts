import { setTimeout as delay } from 'node:timers/promises';

/**
 * Spaces request starts at least `intervalMs` apart, strictly: each caller reserves the next
 * slot before waiting, so no sliding window ever holds more than 1000 / intervalMs starts.
 * (p-queue's intervalCap lets two starts share an interval when tasks run long.)
 */
export class SpacingGate {
  private next = 0;

  constructor(private readonly intervalMs: number) {}

  async wait(): Promise<void> {
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + this.intervalMs;
    if (at > now) await delay(at - now);
  }

  /** Nothing starts for `ms` (after a 429). */
  holdFor(ms: number): void {
    this.next = Math.max(this.next, Date.now() + ms);
  }
}
