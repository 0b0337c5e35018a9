import os from 'node:os';
import { accountsBench } from './accounts.js';
import { backfillBench } from './backfill.js';
import { bitrix24Bench } from './bitrix24.js';
import { chatsBench } from './chats.js';
import { burstBench } from './burst.js';
import { deliveryBench } from './delivery.js';
import { httpBench } from './http.js';
import { ingestBench } from './ingest.js';
import { replyBench } from './replies.js';
import { webhookBench } from './webhooks.js';
import { scaleBench } from './scale.js';

/** `npm run bench [-- name …]`: runs the named benchmarks (default all) and prints markdown. */
const BENCHES: Record<string, () => Promise<string>> = {
  ingest: () => ingestBench(),
  webhooks: () => webhookBench(),
  delivery: () => deliveryBench(),
  replies: () => replyBench(),
  backfill: () => backfillBench(),
  bitrix24: () => bitrix24Bench(),
  chats: () => chatsBench(),
  burst: () => burstBench(),
  http: () => httpBench(),
  accounts: () => accountsBench(),
  scale: () => scaleBench(),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : Object.keys(BENCHES);
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
process.stdout.write(`## Benchmarks — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}\n\n`);
for (const name of names) {
  const bench = BENCHES[name];
  if (!bench) {
    process.stderr.write(`unknown benchmark ${name}; known: ${Object.keys(BENCHES).join(', ')}\n`);
    process.exitCode = 2;
    continue;
  }
  process.stderr.write(`running ${name}…\n`);
  process.stdout.write(`${await bench()}\n\n`);
}
