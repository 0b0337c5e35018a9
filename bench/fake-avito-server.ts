import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';

/**
 * The fake Avito in its own process, seeded, for benchmarks: prints `{"url":…}` on one line
 * and serves until killed.
 */
const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
// --latency-ms: every answer waits this long, as a remote server's round trip would (default 0).
const fake = new SandboxAvito({ latencyMs: Number(args.get('latency-ms') ?? 0) });
await fake.start();
const itemCount = Number(args.get('items') ?? 0);
const itemIds = Array.from({ length: itemCount }, (_, i) => 3_000_000 + i);
for (const id of itemIds) fake.addItem({ id });
fake.seed(Number(args.get('chats') ?? 200), Number(args.get('messages') ?? 100), itemCount ? { itemIds } : {});
process.stdout.write(`${JSON.stringify({ url: fake.url, clientId: fake.clientId, clientSecret: fake.clientSecret, userId: fake.userId })}\n`);
// Requests served, by operation, on demand (the parent sends SIGUSR2).
process.on('SIGUSR2', () => {
  const by: Record<string, number> = {};
  for (const r of fake.requests) by[r.op] = (by[r.op] ?? 0) + 1;
  process.stderr.write(`${JSON.stringify({ served: by })}\n`);
});
process.on('SIGTERM', () => {
  void fake.stop().then(() => process.exit(0));
});
