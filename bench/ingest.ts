import os from 'node:os';
import { fmt, median, runJsonProcess, startJsonProcess } from './util.js';

interface Run { mode: string; ms: number; cpuMs: number; requests: number; messages: number; maxRssMb: number; setupMs?: number; closeMs?: number }

const load = () => os.loadavg().map((l) => fmt(l, 2)).join(', ');
const spread = (xs: readonly number[], digits = 0) => `${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)}`;

/**
 * Ingest: 200 chats × 100 messages from the fake Avito (own process, no rate limit) into the
 * ledger, against a bare fetch loop doing the same pagination with four requests in flight and
 * parsing every page's JSON. Runs alternate, each in a fresh process; the ratio is given as the
 * ratio of medians and as the median and spread of the per-round ratios (each round's two runs
 * are next to each other in time, so a change in the machine's load moves both).
 */
export async function ingestBench(rounds = 7): Promise<string> {
  const { child, first: fake } = await startJsonProcess<{ url: string; clientId: string; clientSecret: string; userId: number }>('fake-avito-server.js', ['--chats=200', '--messages=100']);
  try {
    const args = [fake.url, fake.clientId, fake.clientSecret, String(fake.userId)];
    const bare: Run[] = [];
    const ours: Run[] = [];
    const loadBefore = load();
    // Warm the fake once so neither side pays its JIT.
    await runJsonProcess<Run>('ingest-worker.js', ['bare', ...args]);
    for (let i = 0; i < rounds; i++) {
      // Alternate which side goes first, so neither always follows the other.
      const pair = i % 2 === 0 ? (['bare', 'ours'] as const) : (['ours', 'bare'] as const);
      for (const mode of pair) (mode === 'bare' ? bare : ours).push(await runJsonProcess<Run>('ingest-worker.js', [mode, ...args]));
    }
    const loadAfter = load();
    const b = median(bare.map((r) => r.ms));
    const o = median(ours.map((r) => r.ms));
    const ratios = ours.map((r, i) => r.ms / bare[i]!.ms);
    const cpuRatios = ours.map((r, i) => r.cpuMs / bare[i]!.cpuMs);
    const sample = ours[0]!;
    const lines = [
      '### Ingest (issue 2, issue 13 item 1): 200 chats × 100 messages, fake Avito without rate limit',
      '',
      `| | median time | spread | CPU (median) | messages/s | Avito requests | requests/message | peak RSS |`,
      `|---|---|---|---|---|---|---|---|`,
      `| bare fetch loop (\`fetch\`, JSON parsed), 4 in flight, stores nothing | ${fmt(b, 0)} ms | ${spread(bare.map((r) => r.ms))} ms | ${fmt(median(bare.map((r) => r.cpuMs)), 0)} ms | ${fmt(bare[0]!.messages / (b / 1000), 0)} | ${bare[0]!.requests} | ${fmt(bare[0]!.requests / bare[0]!.messages, 4)} | ${fmt(median(bare.map((r) => r.maxRssMb)))} MB |`,
      `| avito-sync poller → SQLite ledger (the pass) | ${fmt(o, 0)} ms | ${spread(ours.map((r) => r.ms))} ms | ${fmt(median(ours.map((r) => r.cpuMs)), 0)} ms | ${fmt(sample.messages / (o / 1000), 0)} | ${sample.requests} | ${fmt(sample.requests / sample.messages, 4)} | ${fmt(median(ours.map((r) => r.maxRssMb)))} MB |`,
      '',
      `Ratio ours / bare: **${fmt(o / b, 2)}×** (ratio of medians; goal ≤ 1.10×); per round: median ${fmt(median(ratios), 2)}×, spread ${spread(ratios, 2)}×; CPU per round: median ${fmt(median(cpuRatios), 2)}×. ${rounds} alternating rounds, each run in a fresh process.`,
      `Runs (ms): bare ${bare.map((r) => fmt(r.ms, 0)).join(', ')}; ours ${ours.map((r) => fmt(r.ms, 0)).join(', ')}.`,
      `Outside the timed pass: a fresh ledger's creation and migrations ${fmt(median(ours.map((r) => r.setupMs ?? 0)), 0)} ms, closing it ${fmt(median(ours.map((r) => r.closeMs ?? 0)), 0)} ms (medians). Load average (1, 5, 15 min) before ${loadBefore}, after ${loadAfter}.`,
    ];
    return lines.join('\n');
  } finally {
    child.kill('SIGTERM');
  }
}
