import v8 from 'node:v8';

/**
 * How far V8 lets the old generation grow past what survived the last full collection, in percent
 * (V8's `--heap-growing-percent`). Left alone, V8 sizes that step by its own speed estimates up to
 * 4× the live heap when the process may use gigabytes: a backfill with ~30 MB live then grew its
 * heap to 110–125 MB of mostly garbage, and the RSS with it. 50 % keeps the peak near the live
 * size at no measurable cost in CPU or time (docs/benchmarks.md, issue 13 item 2).
 */
export const HEAP_GROWING_PERCENT = 50;

/**
 * The young generation's semi-space cap in MB that `avito-sync` starts with (V8's
 * `--max-semi-space-size`; V8's own cap on 64-bit is 16 MB, two semi-spaces of it = 32 MB of
 * RSS once a busy process has grown them). Unlike the growth step, V8 reads this flag only when
 * the heap is created, so it cannot be set from here: it is on the CLI's shebang line
 * (`#!/usr/bin/env -S node --max-semi-space-size=8`), in the Docker image's ENTRYPOINT and in
 * the systemd unit's ExecStart, and `test/heap-flags.test.ts` keeps them in step. Measured (docs/benchmarks.md, issue 13 item
 * 2): a 100,000-message backfill peaks at 139.6 MB instead of 159.7 MB, for 1.2 s more CPU of
 * 36 s and the same wall time. An operator who runs `node <flags> dist/src/cli/main.js` chooses
 * their own.
 */
export const SEMI_SPACE_MB = 8;

/**
 * Sets the heap growth step for this process, unless `--heap-growing-percent` was given on the
 * command line or in NODE_OPTIONS (an operator's choice wins). The flag is read by V8 at every
 * full collection, so setting it after start takes effect from the next one; it changes when the
 * collector runs, never what the program computes. Returns the percent in force (undefined: the
 * operator's own).
 */
export function limitHeapGrowth(percent = HEAP_GROWING_PERCENT): number | undefined {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'));
  if (given) return undefined;
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
  return percent;
}
