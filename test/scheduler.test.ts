import { afterEach, describe, expect, it, vi } from 'vitest';
import { memoryLogger } from '../src/log/logger.js';
import { phaseOf, Scheduler } from '../src/sync/scheduler.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('scheduler: one timer for every account', () => {
  it('runs each periodic job once per period, first within its period, spread by name', async () => {
    vi.useFakeTimers();
    const s = new Scheduler(memoryLogger('silent').logger);
    const runs = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const name = `poll:seller-${i}`;
      s.add(name, async () => void runs.set(name, (runs.get(name) ?? 0) + 1), 60);
    }
    // One timer for all forty jobs, not one each.
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(runs.size).toBe(40);
    await vi.advanceTimersByTimeAsync(60_000);
    expect([...runs.values()].every((n) => n === 2)).toBe(true);
    // The first runs are spread over the period, not all in one second.
    const phases = [...runs.keys()].map((n) => Math.floor(phaseOf(n) * 60));
    expect(new Set(phases).size).toBeGreaterThan(20);
    await s.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never overlaps a job with itself: a run due while it is busy is skipped', async () => {
    vi.useFakeTimers();
    const s = new Scheduler(memoryLogger('silent').logger, { phase: () => 0 });
    let release!: () => void;
    let started = 0;
    s.add('slow', () => {
      started++;
      return new Promise<void>((r) => (release = r));
    }, 1);
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toBe(1);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(started).toBe(1);
    expect(s.skipped).toBe(5);
    release();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(started).toBe(2);
    release();
    await s.stop();
  });

  it('a triggered job runs once more after its current run when triggers coalesce', async () => {
    const s = new Scheduler(memoryLogger('silent').logger);
    let runs = 0;
    let release!: () => void;
    const job = s.add('dispatch', () => {
      runs++;
      return runs === 1 ? new Promise<void>((r) => (release = r)) : Promise.resolve();
    });
    const first = job.trigger();
    void job.trigger({ coalesce: true });
    void job.trigger({ coalesce: true });
    release();
    await first;
    await job.idle();
    expect(runs).toBe(2);
    await s.stop();
  });

  it('a removed job (its account left the configuration) finishes its run, then never runs again', async () => {
    vi.useFakeTimers();
    const s = new Scheduler(memoryLogger('silent').logger);
    let runs = 0;
    let release!: () => void;
    const job = s.add('poll:gone', () => {
      runs++;
      return new Promise<void>((r) => (release = r));
    }, 60);
    const other = s.add('poll:stays', async () => undefined, 60);
    const running = job.trigger();
    void job.trigger({ coalesce: true }); // a follow-up asked for while it runs: dropped on removal
    let removed = false;
    const removal = s.remove(job).then(() => (removed = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(removed).toBe(false); // waits for the run in progress
    release();
    await running;
    await removal;
    await vi.advanceTimersByTimeAsync(180_000);
    await job.trigger();
    expect(runs).toBe(1);
    expect(s.jobs).toEqual([other]);
    expect(other.runs).toBeGreaterThanOrEqual(3);
    await s.stop();
  });
});
