import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import type { BackfillReport } from '../src/sync/backfill.js';
import { fmt, PRODUCT_NODE_FLAGS, runJsonProcess, startJsonProcess } from './util.js';

const PER_CHAT = 20;

/**
 * Backfill (issue 6, issue 13 item 2): 100,000 messages (5,000 chats × 20 on 500 items) and then
 * twice that, from the sandbox Avito in its own process into the ledger and amoCRM → Avito
 * requests against the minimum the paging caps allow, amoCRM requests, time, peak RSS of the
 * backfill process (flat as history grows: the 200,000 run within 10 % of the 100,000 one; goal
 * ≤ 150 MB) and its CPU time, of which garbage collection. `BACKFILL_V8_DEFAULTS=1`: V8's own heap
 * growth instead of the CLI's (src/heap-growth.ts), to compare.
 */
export async function backfillBench(): Promise<string> {
  // BACKFILL_SMALL=1: only a 20,000-message run (a quick look at the phase overlap);
  // BACKFILL_ONLY=100000 (or 200000): only that run, to compare one change at a time.
  if (process.env.BACKFILL_SMALL === '1') return (await backfillRun(1000, 100)).text;
  const only = Number(process.env.BACKFILL_ONLY ?? 0);
  if (only === 100_000) return (await backfillRun(5000, 500)).text;
  if (only === 200_000) return (await backfillRun(10000, 1000)).text;
  if (only) throw new Error(`BACKFILL_ONLY=${process.env.BACKFILL_ONLY}: 100000 or 200000`);
  const small = await backfillRun(5000, 500);
  const large = await backfillRun(10000, 1000);
  return [small.text, '', large.text, '', `Peak RSS at 200,000 messages / at 100,000: **${fmt(large.maxRssMb / small.maxRssMb, 2)}×** (goal ≤ 1.10×; peak goal 150 MB).`].join('\n');
}

/** One backfill of `chats` × 20 messages on `items` items, in fresh processes. */
async function backfillRun(chats: number, items: number): Promise<{ text: string; maxRssMb: number }> {
  const CHATS = chats;
  const ITEMS = items;
  const { child, first: fake } = await startJsonProcess<{ url: string; clientId: string; clientSecret: string; userId: number }>('fake-avito-server.js', [`--chats=${CHATS}`, `--messages=${PER_CHAT}`, `--items=${ITEMS}`]);
  const amo = new SandboxAmo();
  await amo.start();
  try {
    const r = await runJsonProcess<{ ms: number; report: BackfillReport; maxRssMb: number; cpuMs: number; gcMs: number }>('backfill-worker.js', [fake.url, fake.clientId, fake.clientSecret, String(fake.userId), amo.url, amo.token], process.env.BACKFILL_V8_DEFAULTS === '1' ? [] : PRODUCT_NODE_FLAGS);
    // The minimum: a token, the item pages, every chat once in pages of 100, one message page per chat (20 < 100).
    const minimum = 1 + Math.ceil(ITEMS / 100) + Math.ceil(CHATS / 100) + CHATS;
    const crmBoundS = amo.requests.length / 6;
    const amoByPath: Record<string, number> = {};
    for (const q of amo.requests) amoByPath[`${q.method} ${q.path}`] = (amoByPath[`${q.method} ${q.path}`] ?? 0) + 1;
    const text = [
      `### Backfill (issue 6): ${(CHATS * PER_CHAT).toLocaleString('en-US')} messages (${CHATS.toLocaleString('en-US')} chats × ${PER_CHAT}, ${ITEMS} items) into the ledger and amoCRM`,
      '',
      '| Avito requests | minimum the caps allow | overhead | partitions | amoCRM requests | notes/request | Avito side (fetch phase) | CRM bound (requests ÷ 6/s) | total | total ÷ the longer | peak RSS | CPU (GC) |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
      `| ${r.report.avitoRequests} | ${minimum} | ${fmt(((r.report.avitoRequests - minimum) / minimum) * 100, 1)} % | ${r.report.partitions.total} | ${amo.requests.length} | ${fmt(amo.notes.size / Math.max(1, amoByPath['POST /api/v4/leads/notes'] ?? 1), 1)} | ${fmt(r.report.avitoSeconds, 1)} s | ${fmt(crmBoundS, 1)} s | ${fmt(r.ms / 1000, 1)} s | **${fmt(r.ms / 1000 / Math.max(crmBoundS, r.report.avitoSeconds), 2)}×** (goal ≤ 1.15×) | ${fmt(r.maxRssMb, 1)} MB | ${fmt(r.cpuMs / 1000, 1)} s (${fmt(r.gcMs / 1000, 1)} s) |`,
      '',
      'The fake Avito has no rate limit here, so the Avito side is the measured fetch phase (partitions into the ledger) and the CRM bound is amoCRM requests at 6 per second; delivery runs while partitions are fetched (issue 13 item 3), so the total should come near the longer of the two, not their sum.',
      '',
      `Chats seen ${r.report.chatsSeen} (partitions overlap the first pass of the newest 1,100), new messages ${r.report.messagesNew}, unreachable ${r.report.unreachable.length}; amoCRM: ${Object.entries(amoByPath).map(([k, v]) => `${k} × ${v}`).join('; ')}; notes per request 250.`,
    ].join('\n');
    return { text, maxRssMb: r.maxRssMb };
  } finally {
    child.kill('SIGTERM');
    await amo.stop();
  }
}
