import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { loadConfig } from '../src/config/load-config.js';
import { limitHeapGrowth } from '../src/heap-growth.js';
import { createLogger } from '../src/log/logger.js';
import { createRuntime } from '../src/runtime.js';
import { backfillAccount } from '../src/sync/backfill.js';

/** One backfill in a fresh process (its own peak RSS); prints one JSON line. */
const [url, clientId, clientSecret, userId, amoUrl, amoToken] = process.argv.slice(2) as [string, string, string, string, string, string];
// As the CLI does for every command; BACKFILL_V8_DEFAULTS=1 measures V8's own heap sizing.
if (process.env.BACKFILL_V8_DEFAULTS !== '1') limitHeapGrowth();
const dir = mkdtempSync(path.join(tmpdir(), 'avito-bench-backfill-'));
try {
  const config = loadConfig({
    env: {
      AVITO_CLIENT_ID: clientId, AVITO_CLIENT_SECRET: clientSecret, AVITO_API_URL: url, AVITO_USER_ID: userId, AVITO_SYNC_DB: path.join(dir, 'bench.db'),
      AVITO_REQUESTS_PER_SECOND: '10000', AVITO_ITEMS_REQUESTS_PER_MINUTE: '6000', AVITO_CHAT_TYPES: 'u2i', AMOCRM_BASE_URL: amoUrl, AMOCRM_ACCESS_TOKEN: amoToken,
    },
  });
  (config.accounts[0] as Record<string, Record<string, unknown>>).amocrm!.notesPerRequest = 250;
  const rt = await createRuntime(config, createLogger({ level: 'warn', pretty: false }));
  // Time in garbage collection (all kinds), beside the CPU time: a smaller heap must not cost more.
  let gcMs = 0;
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let phase = 'start';
  const gcTimer = process.env.FORCEGC && globalThis.gc ? setInterval(() => globalThis.gc!(), Number(process.env.FORCEGC)) : undefined;
  // MEMTRACE=1: one line a second on stderr with the phase and where the memory is.
  const trace = process.env.MEMTRACE
    ? setInterval(() => {
        const m = process.memoryUsage();
        const mb = (n: number) => Math.round(n / 2 ** 20);
        // The V8 spaces (committed): the young generation's two semi-spaces beside the old one.
        const spaces = v8.getHeapSpaceStatistics().map((x) => `${x.space_name.replace('_space', '')} ${mb(x.space_size)}`).join(' ');
        process.stderr.write(`${Math.round(performance.now() - started)} ms ${phase}: rss ${mb(m.rss)} heapTotal ${mb(m.heapTotal)} heapUsed ${mb(m.heapUsed)} external ${mb(m.external)} arrayBuffers ${mb(m.arrayBuffers)} | ${spaces}\n`);
      }, 1000)
    : undefined;
  const report = await backfillAccount(rt, rt.accounts[0]!, {
    onProgress: (p) => {
      phase = `${p.phase} ${p.done}/${p.total}`;
    },
  });
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  gcObserver.disconnect();
  if (trace) clearInterval(trace);
  if (gcTimer) clearInterval(gcTimer);
  await rt.close();
  process.stdout.write(`${JSON.stringify({ ms, report, maxRssMb: process.resourceUsage().maxRSS / 1024, cpuMs: (cpu.user + cpu.system) / 1000, gcMs })}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
