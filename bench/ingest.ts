import { fmt, median, runJsonProcess, startJsonProcess } from './util.js';

interface Run { mode: string; ms: number; requests: number; messages: number; maxRssMb: number }

/**
 * Ingest: 200 chats × 100 messages from the fake Avito (own process, no rate limit) into the
 * ledger, against a bare fetch loop doing the same pagination with four requests in flight.
 */
export async function ingestBench(rounds = 5): Promise<string> {
  const { child, first: fake } = await startJsonProcess<{ url: string; clientId: string; clientSecret: string; userId: number }>('fake-avito-server.js', ['--chats=200', '--messages=100']);
  try {
    const args = [fake.url, fake.clientId, fake.clientSecret, String(fake.userId)];
    const bare: Run[] = [];
    const ours: Run[] = [];
    // Warm the fake once so neither side pays its JIT.
    await runJsonProcess<Run>('ingest-worker.js', ['bare', ...args]);
    for (let i = 0; i < rounds; i++) {
      bare.push(await runJsonProcess<Run>('ingest-worker.js', ['bare', ...args]));
      ours.push(await runJsonProcess<Run>('ingest-worker.js', ['ours', ...args]));
    }
    const b = median(bare.map((r) => r.ms));
    const o = median(ours.map((r) => r.ms));
    const sample = ours[0]!;
    const lines = [
      '### Ingest (issue 2): 200 chats × 100 messages, fake Avito without rate limit',
      '',
      `| | median time | messages/s | Avito requests | requests/message | peak RSS |`,
      `|---|---|---|---|---|---|`,
      `| bare fetch loop, 4 in flight, stores nothing | ${fmt(b, 0)} ms | ${fmt(bare[0]!.messages / (b / 1000), 0)} | ${bare[0]!.requests} | ${fmt(bare[0]!.requests / bare[0]!.messages, 4)} | ${fmt(median(bare.map((r) => r.maxRssMb)))} MB |`,
      `| avito-sync poller → SQLite ledger | ${fmt(o, 0)} ms | ${fmt(sample.messages / (o / 1000), 0)} | ${sample.requests} | ${fmt(sample.requests / sample.messages, 4)} | ${fmt(median(ours.map((r) => r.maxRssMb)))} MB |`,
      '',
      `Ratio ours / bare: **${fmt(o / b, 2)}×** (goal ≤ 1.10×), median of ${rounds} alternating runs, each in a fresh process.`,
      `Runs (ms): bare ${bare.map((r) => fmt(r.ms, 0)).join(', ')}; ours ${ours.map((r) => fmt(r.ms, 0)).join(', ')}.`,
    ];
    return lines.join('\n');
  } finally {
    child.kill('SIGTERM');
  }
}
