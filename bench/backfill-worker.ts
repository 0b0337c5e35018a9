import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/load-config.js';
import { createLogger } from '../src/log/logger.js';
import { createRuntime } from '../src/runtime.js';
import { backfillAccount } from '../src/sync/backfill.js';

/** One backfill in a fresh process (its own peak RSS); prints one JSON line. */
const [url, clientId, clientSecret, userId, amoUrl, amoToken] = process.argv.slice(2) as [string, string, string, string, string, string];
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
  const started = performance.now();
  let ledgerMs = 0;
  const report = await backfillAccount(rt, rt.accounts[0]!, {
    onProgress: (p) => {
      if (p.phase === 'delivery' && !ledgerMs) ledgerMs = performance.now() - started;
    },
  });
  const ms = performance.now() - started;
  await rt.close();
  process.stdout.write(`${JSON.stringify({ ms, ledgerMs, report, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
