import type { Logger } from 'pino';

/**
 * A named unit of background work that never runs twice at once. `trigger()` runs it now, or —
 * when it is already running and `coalesce` is set — once more right after, however many
 * triggers arrived meanwhile (webhooks kick the dispatcher this way).
 */
export class Job {
  private running: Promise<void> | undefined;
  private again = false;
  private retired = false;
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
    // A removed job (its account left the configuration) starts no new run.
    if (this.retired) return this.running ?? Promise.resolve();
    if (this.running) {
      if (opts.coalesce) this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** No new runs from now on; a coalesced follow-up is dropped. */
  retire(): void {
    this.retired = true;
    this.again = false;
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
    } while (this.again && !this.retired);
  }
}

interface Timed {
  job: Job;
  everyMs: number;
  due: number;
}

export interface SchedulerOptions {
  /** The clock (tests). Default `Date.now`. */
  now?: () => number;
  /**
   * Where in its period a job's first scheduled run falls, 0–1. Default: a fraction derived from
   * the job's name, so forty accounts' polls spread over the period instead of starting together.
   */
  phase?: (name: string) => number;
}

/**
 * A stable fraction in [0, 1) from a name (FNV-1a, then murmur3's finaliser so names that differ
 * only in their last digit land far apart), so a restart keeps the same spread.
 */
export function phaseOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/**
 * The daemon's schedule: one timer for every periodic job of every account (not a timer per job),
 * each job on its own period, spread over it, never overlapping itself. A run that comes due while
 * the job is still busy is skipped, not queued: the job's next run sees the same work.
 */
export class Scheduler {
  readonly jobs: Job[] = [];
  private readonly timed: Timed[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly now: () => number;
  private readonly phase: (name: string) => number;
  /** Scheduled runs skipped because the job was still busy. */
  skipped = 0;

  constructor(
    private readonly log: Logger,
    opts: SchedulerOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.phase = opts.phase ?? phaseOf;
  }

  /** A job; with `everySeconds`, also run on that period (first run within one period). */
  add(name: string, fn: () => Promise<unknown>, everySeconds?: number): Job {
    const job = new Job(name, fn, this.log);
    this.jobs.push(job);
    if (everySeconds !== undefined && !this.stopped) {
      const everyMs = Math.max(1, everySeconds) * 1000;
      this.timed.push({ job, everyMs, due: this.now() + Math.floor(this.phase(name) * everyMs) });
      this.log.debug({ job: name, everySeconds }, 'scheduled');
      this.arm();
    }
    return job;
  }

  /**
   * Takes a job off the schedule for good (an account removed by a config reload): no new run
   * starts, and this resolves when the one in progress is over.
   */
  async remove(job: Job): Promise<void> {
    job.retire();
    const i = this.jobs.indexOf(job);
    if (i >= 0) this.jobs.splice(i, 1);
    const t = this.timed.findIndex((x) => x.job === job);
    if (t >= 0) this.timed.splice(t, 1);
    await job.idle();
  }

  /** Stops the schedule and waits for running jobs. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timed.length = 0;
    await Promise.all(this.jobs.map((j) => j.idle()));
  }

  /** Runs what is due, then sleeps until the next due job. */
  private tick(): void {
    this.timer = undefined;
    const now = this.now();
    for (const t of this.timed) {
      if (t.due > now) continue;
      if (t.job.busy) this.skipped++;
      else void t.job.trigger();
      // From now, not from the old due time: a stalled process does not fire a backlog of runs.
      t.due = now + t.everyMs;
    }
    this.arm();
  }

  private arm(): void {
    if (this.stopped || this.timed.length === 0) return;
    const next = Math.min(...this.timed.map((t) => t.due));
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), Math.max(0, next - this.now()));
  }
}
