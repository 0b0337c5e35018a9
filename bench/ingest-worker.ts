import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/load-config.js';
import { createLogger } from '../src/log/logger.js';
import { countMessages } from '../src/ledger/messages.js';
import { createRuntime } from '../src/runtime.js';
import { pollAccount } from '../src/sync/poller.js';

/**
 * One measured run in a fresh process: `ours` = the real poller into a fresh SQLite ledger
 * (`ours-routed`: the same with a CRM routed, so every new message gets a delivery row);
 * `bare` = a fetch loop doing the same pagination with four requests in flight, storing nothing;
 * `bare-http` = the same loop on node:http with four kept-alive sockets (the product's transport,
 * src/http/transport.ts), for a stricter baseline. Prints one JSON line.
 */
const [mode, url, clientId, clientSecret, userId] = process.argv.slice(2) as [string, string, string, string, string];

interface Measured { ms: number; cpuMs: number; requests: number; messages: number; setupMs?: number; closeMs?: number }

/** Wall and CPU time of `fn` (the main thread's CPU plus any thread of the process). */
async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; cpuMs: number }> {
  const started = performance.now();
  const before = process.cpuUsage();
  const value = await fn();
  const cpu = process.cpuUsage(before);
  return { value, ms: performance.now() - started, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function bare(transport: 'fetch' | 'http'): Promise<Measured> {
  const { value, ms, cpuMs } = await timed(() => bareLoop(transport === 'fetch' ? fetchGet : httpGet()));
  return { ms, cpuMs, ...value };
}

type Get = (path: string, token: string) => Promise<unknown>;

const fetchGet: Get = async (p, token) => {
  const r = await fetch(url + p, { headers: { authorization: `Bearer ${token}` } });
  return r.json() as Promise<unknown>;
};

/** GET on node:http with four kept-alive sockets; the body collected and parsed as the product's transport does. */
function httpGet(): Get {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  return (p, token) =>
    new Promise((resolve, reject) => {
      const req = http.request(new URL(url + p), { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, agent }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', reject);
        res.on('end', () => resolve(JSON.parse(Buffer.concat(parts).toString('utf8'))));
      });
      req.on('error', reject);
      req.end();
    });
}

async function bareLoop(getWith: Get): Promise<{ requests: number; messages: number }> {
  let requests = 0;
  const tokenRes = await fetch(`${url}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }) });
  requests++;
  const { access_token: token } = (await tokenRes.json()) as { access_token: string };
  const get = (p: string) => {
    requests++;
    return getWith(p, token);
  };
  let messages = 0;
  for (let offset = 0; offset <= 1000; offset += 100) {
    const { chats } = (await get(`/messenger/v2/accounts/${userId}/chats?chat_types=u2i,u2u&limit=100&offset=${offset}`)) as { chats: { id: string }[] };
    const queue = chats.map((c) => c.id);
    const worker = async () => {
      for (let id = queue.shift(); id; id = queue.shift()) {
        for (let off = 0; off <= 1000; off += 100) {
          const page = (await get(`/messenger/v3/accounts/${userId}/chats/${encodeURIComponent(id)}/messages/?limit=100&offset=${off}`)) as { messages: unknown[] };
          messages += page.messages.length;
          if (page.messages.length < 100) break;
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    if (chats.length < 100) break;
  }
  return { requests, messages };
}

/**
 * The poller's pass is what is timed: opening a fresh ledger (migrations) before it and closing
 * it after are reported beside it (`setupMs`, `closeMs`), as the bare loop has neither.
 */
async function ours(routed: boolean): Promise<Measured> {
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-bench-'));
  try {
    const config = loadConfig({
      env: {
        AVITO_CLIENT_ID: clientId, AVITO_CLIENT_SECRET: clientSecret, AVITO_API_URL: url, AVITO_USER_ID: userId,
        AVITO_SYNC_DB: path.join(dir, 'bench.db'), AVITO_SYNC_CONNECTORS: 'none', AVITO_REQUESTS_PER_SECOND: '10000', AVITO_CONCURRENCY: '4',
      },
    });
    const log = createLogger({ level: 'warn', pretty: false });
    const setup = await timed(() => createRuntime(config, log));
    const rt = setup.value;
    const acc = rt.accounts[0]!;
    // `ours-routed`: the ledger enqueues a delivery per new message, as a configured CRM would
    // have it (the connector itself does not run): the product's write path with a CRM.
    if (routed) rt.ledger.routeDeliveries(acc.client.accountId, ['amocrm']);
    // PASS_PROFILE=prefix writes a CPU profile of the pass alone (how docs/benchmarks.md's were taken).
    const session = process.env.PASS_PROFILE ? new Session() : undefined;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const pass = await timed(() => pollAccount({ ledger: rt.ledger, client: acc.client, log, voice: rt.voice }, { chatTypes: ['u2i', 'u2u'] }));
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(`${process.env.PASS_PROFILE}.${process.pid}.cpuprofile`, JSON.stringify(profile));
    }
    const messages = await countMessages(rt.ledger.db);
    const requests = acc.client.requestCount;
    const close = await timed(() => rt.close());
    return { ms: pass.ms, cpuMs: pass.cpuMs, requests, messages, setupMs: setup.ms, closeMs: close.ms };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const r = mode === 'bare' ? await bare('fetch') : mode === 'bare-http' ? await bare('http') : await ours(mode === 'ours-routed');
// Exit once the line is out: kept-alive sockets of the bare loop would otherwise hold the process.
process.stdout.write(`${JSON.stringify({ mode, ...r, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`, () => process.exit(0));
