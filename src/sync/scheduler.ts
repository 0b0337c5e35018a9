import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';

/**
 * A named unit of background work that never runs twice at once. `trigger()` runs it now, or —
 * when it is already running and `coalesce` is set — once more right after, however many
 * triggers arrived meanwhile (webhooks kick the dispatcher this way).
 */
export class Job {
  private running: Promise<void> | undefined;
  private again = false;
  runs = 0;

  constructor(
    readonly name: string,
    private readonly fn: () => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  get busy(): boolean {
    return this.running !== undefined;
  }

  trigger(opts: { coalesce?: boolean } = {}): Promise<void> {
    if (this.running) {
      if (opts.coalesce) this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Resolves when the current run (and a coalesced follow-up) is over. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      this.runs++;
      try {
        await this.fn();
      } catch (err) {
        this.log.error({ job: this.name, err }, `job ${this.name} failed`);
      }
    } while (this.again);
  }
}

/** A cron expression (with seconds) for "about every n seconds", rounded to what cron can say. */
export function cronEvery(seconds: number): string {
  const divisorAtMost = (limit: number, n: number) => {
    for (let d = Math.max(1, Math.min(n, limit)); d >= 1; d--) if (limit % d === 0) return d;
    return 1;
  };
  if (seconds < 60) return `*/${divisorAtMost(60, Math.max(1, Math.round(seconds)))} * * * * *`;
  if (seconds < 3600) return `0 */${divisorAtMost(60, Math.round(seconds / 60))} * * * *`;
  return `0 0 */${divisorAtMost(24, Math.round(seconds / 3600))} * * *`;
}

/**
 * The daemon's schedule (node-cron): each job on its cron expression, without overlapping runs.
 */
export class Scheduler {
  private readonly tasks: ScheduledTask[] = [];
  readonly jobs: Job[] = [];

  constructor(private readonly log: Logger) {}

  add(name: string, fn: () => Promise<unknown>, everySeconds?: number): Job {
    const job = new Job(name, fn, this.log);
    this.jobs.push(job);
    if (everySeconds !== undefined) {
      const expr = cronEvery(everySeconds);
      this.tasks.push(cron.schedule(expr, () => job.trigger(), { name, noOverlap: true, suppressMissedWarning: true }));
      this.log.debug({ job: name, cron: expr }, 'scheduled');
    }
    return job;
  }

  /** Stops the schedule and waits for running jobs. */
  async stop(): Promise<void> {
    await Promise.all(this.tasks.map((t) => t.destroy()));
    this.tasks.length = 0;
    await Promise.all(this.jobs.map((j) => j.idle()));
  }
}
