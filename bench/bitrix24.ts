import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SandboxB24 } from '../connectors/bitrix24/sandbox.js';
import { loadConfig } from '../src/config/load-config.js';
import { createLogger } from '../src/log/logger.js';
import { createRuntime } from '../src/runtime.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { syncOnce } from '../src/sync/sync-once.js';
import { fmt } from './util.js';

const CHATS = 100;
const PER_CHAT = 20;

/**
 * Bitrix24 (issue 14): 2,000 messages over 100 chats from the sandbox Avito into the sandbox
 * Bitrix24 at its real limits (a leaky bucket of 50 drained 2 per second → 503
 * QUERY_LIMIT_EXCEEDED) → requests used against the minimum `batch` allows, time, 503s.
 */
export async function bitrix24Bench(): Promise<string> {
  const avito = new SandboxAvito();
  const b24 = new SandboxB24();
  await avito.start();
  await b24.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-bench-b24-'));
  try {
    avito.seed(CHATS, PER_CHAT);
    const config = loadConfig({
      env: {
        AVITO_CLIENT_ID: avito.clientId, AVITO_CLIENT_SECRET: avito.clientSecret, AVITO_API_URL: avito.url, AVITO_SYNC_DB: path.join(dir, 'bench.db'),
        AVITO_REQUESTS_PER_SECOND: '1000', AVITO_SYNC_CONNECTORS: 'bitrix24', BITRIX24_WEBHOOK_URL: b24.webhookUrl,
      },
    });
    (config.accounts[0] as Record<string, unknown>).bitrix24 = { webhookUrl: b24.webhookUrl };
    const rt = await createRuntime(config, createLogger({ level: 'warn', pretty: false }));
    const started = performance.now();
    const report = await syncOnce(rt);
    const ms = performance.now() - started;
    await rt.close();
    const d = report.deliveries[0]?.report;
    const byCommand: Record<string, number> = {};
    for (const c of b24.commands) byCommand[c.method] = (byCommand[c.method] ?? 0) + 1;
    const answered = b24.requests.filter((r) => r.status === 200);
    const deliveryRequests = answered.filter((r) => r.method === 'batch').length;
    // Contacts and leads: 2 commands per chat, 50 per batch; comments: 50 per batch; replies: one list per lead, 50 per batch.
    const minCreate = Math.ceil((CHATS * 2) / 50);
    const minComments = Math.ceil((CHATS * PER_CHAT) / 50);
    const minReplies = Math.ceil(CHATS / 50);
    const minimum = minCreate + minComments + minReplies;
    return [
      `### Bitrix24 (issue 14): ${(CHATS * PER_CHAT).toLocaleString('en-US')} messages over ${CHATS} chats into the sandbox Bitrix24 (bucket 50, 2 requests/s)`,
      '',
      '| requests | minimum `batch` allows | commands | comments | 503 QUERY_LIMIT_EXCEEDED | delivered | time (Avito poll + delivery + one reply poll) |',
      '|---|---|---|---|---|---|---|',
      `| ${b24.requests.length} (${deliveryRequests} batch) | ${minimum} (${minCreate} contacts+leads, ${minComments} comments, ${minReplies} reply poll) | ${b24.commands.length} | ${b24.comments.size} | ${b24.count(503, 'QUERY_LIMIT_EXCEEDED')} | ${d?.delivered ?? 0} | ${fmt(ms / 1000, 2)} s |`,
      '',
      `Commands: ${Object.entries(byCommand).map(([k, v]) => `${k} × ${v}`).join('; ')}.`,
    ].join('\n');
  } finally {
    await avito.stop();
    await b24.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
