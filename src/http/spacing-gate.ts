import { setTimeout as delay } from 'node:timers/promises';

/**
 * Spaces request starts at least `intervalMs` apart, strictly, in real time: callers queue in
 * order and each start is measured from the previous one's actual start, so late timers cannot
 * bunch two starts together and no sliding window ever holds more than 1000 / intervalMs starts.
 * (p-queue's intervalCap lets two starts share an interval when tasks run long.)
 */
export class SpacingGate {
  private next = 0;
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly intervalMs: number) {}

  wait(): Promise<void> {
    const turn = this.tail.then(async () => {
      for (let wait = this.next - Date.now(); wait > 0; wait = this.next - Date.now()) await delay(wait);
      this.next = Date.now() + this.intervalMs;
    });
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  /** Nothing starts for `ms` (after a 429). */
  holdFor(ms: number): void {
    this.next = Math.max(this.next, Date.now() + ms);
  }
}
