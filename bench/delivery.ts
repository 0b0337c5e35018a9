import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/load-config.js';
import { createLogger } from '../src/log/logger.js';
import { createRuntime } from '../src/runtime.js';
import { syncOnce } from '../src/sync/sync-once.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { fmt } from './util.js';

interface Row { notesPerRequest: number; amoRequests: number; byPath: Record<string, number>; notes: number; ms: number; http429: number }

async function once(notesPerRequest: number): Promise<Row> {
  const avito = new SandboxAvito();
  const amo = new SandboxAmo();
  await avito.start();
  await amo.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-bench-e2e-'));
  try {
    avito.seed(100, 20);
    const config = loadConfig({
      env: {
        AVITO_CLIENT_ID: avito.clientId, AVITO_CLIENT_SECRET: avito.clientSecret, AVITO_API_URL: avito.url, AVITO_SYNC_DB: path.join(dir, 'bench.db'),
        AVITO_REQUESTS_PER_SECOND: '1000', AMOCRM_BASE_URL: amo.url, AMOCRM_ACCESS_TOKEN: amo.token,
      },
    });
    (config.accounts[0] as Record<string, Record<string, unknown>>).amocrm!.notesPerRequest = notesPerRequest;
    const rt = await createRuntime(config, createLogger({ level: 'warn', pretty: false }));
    const started = performance.now();
    await syncOnce(rt);
    const ms = performance.now() - started;
    await rt.close();
    const byPath: Record<string, number> = {};
    for (const r of amo.requests) byPath[`${r.method} ${r.path}`] = (byPath[`${r.method} ${r.path}`] ?? 0) + 1;
    return { notesPerRequest, amoRequests: amo.requests.length, byPath, notes: amo.notes.size, ms, http429: amo.requests.filter((r) => r.status === 429).length };
  } finally {
    await avito.stop();
    await amo.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * End to end (issue 4): 2,000 messages over 100 chats from the fake Avito into the fake amoCRM
 * with its 7 requests/second limit → amoCRM requests, notes per request, time.
 */
export async function deliveryBench(): Promise<string> {
  const rows = [await once(100), await once(250)];
  const lines = [
    '### End to end (issue 4): 2,000 messages over 100 chats into amoCRM (7 requests/s limit)',
    '',
    '| notes per request | amoCRM requests | notes | notes/request | 429s | time (Avito poll + delivery) |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.notesPerRequest}${r.notesPerRequest === 100 ? ' (default)' : ''} | ${r.amoRequests} | ${r.notes} | ${fmt(r.notes / r.amoRequests, 1)} | ${r.http429} | ${fmt(r.ms / 1000, 2)} s |`),
    '',
    `Requests by endpoint (default): ${Object.entries(rows[0]!.byPath).map(([k, v]) => `${k} × ${v}`).join('; ')}.`,
  ];
  return lines.join('\n');
}
