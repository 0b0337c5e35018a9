import { setTimeout as delay } from 'node:timers/promises';

/**
 * Bitrix24's own limit, modelled on our side (b24restdocs `limits.md`): a leaky bucket per portal
 * that holds `capacity` requests and drains `perSecond` every second; a request that finds it full
 * gets 503 QUERY_LIMIT_EXCEEDED. Callers take turns in order; each waits until its request fits,
 * so a burst goes out at once and a long run settles at `perSecond` — never over.
 */
export class LeakyBucket {
  private level = 0;
  private at = Date.now();
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
  ) {}

  /** Resolves when one more request fits. */
  take(): Promise<void> {
    const turn = this.tail.then(async () => {
      for (;;) {
        this.drain();
        const wait = Math.ceil(((this.level + 1 - this.capacity) / this.perSecond) * 1000);
        if (wait <= 0) break;
        await delay(wait);
      }
      this.level += 1;
    });
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  /**
   * The remote said the bucket is full (503 QUERY_LIMIT_EXCEEDED): believe it, and wait `ms` more
   * before anything else goes out (others on our IP share the bucket).
   */
  fill(ms: number): void {
    this.drain();
    this.level = this.capacity + (ms / 1000) * this.perSecond - 1;
  }

  private drain(): void {
    const now = Date.now();
    this.level = Math.max(0, this.level - ((now - this.at) / 1000) * this.perSecond);
    this.at = now;
  }
}
