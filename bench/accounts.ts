import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { markerOf } from '../connectors/amocrm/mappers.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito, type FakeChat } from '../src/sandbox/sandbox-avito.js';
import { freePort } from '../src/sandbox/net.js';
import { fmt, percentile, postWebhook, until, PRODUCT_NODE_FLAGS } from './util.js';

const SECRET = 'bench-secret-0123456789';

interface Account {
  id: string;
  avito: SandboxAvito;
  amo: SandboxAmo;
  chats: FakeChat[];
}



/** Peak RSS (VmHWM) and CPU seconds of a live process, from /proc (Linux). */
function procStats(pid: number): { peakRssMb: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return { peakRssMb: hwm / 1024, cpuSeconds: ticks / 100 };
}

interface Result {
  accounts: number;
  events: number;
  latencies: number[];
  firstSyncMs: number;
  firstSyncRequestsPerAccount: { min: number; max: number };
  loadRequestsPerAccount: { min: number; max: number };
  http429: number;
  crossed: number;
  peakRssMb: number;
  cpuSecondsPer1000: number;
}

/**
 * Forty sellers in one process (issue 17): `accounts` accounts, each its own sandbox Avito and
 * amoCRM, about 8 chats each, then `rate` webhook events per second for `seconds`.
 */
export async function runAccounts(accountCount: number, seconds: number, rate = 20): Promise<Result> {
  const accounts: Account[] = [];
  for (let i = 0; i < accountCount; i++) {
    const avito = new SandboxAvito({ userId: 2_000_000 + i, clientId: `client-${i}` });
    const amo = new SandboxAmo();
    await avito.start();
    await amo.start();
    accounts.push({ id: `seller-${i}`, avito, amo, chats: avito.seed(8, 4) });
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-bench-accounts-'));
  const port = await freePort();
  const configFile = path.join(dir, 'accounts.json');
  writeFileSync(configFile, JSON.stringify({
    db: path.join(dir, 'bench.db'),
    port,
    publicUrl: `http://127.0.0.1:${port}`,
    webhookSecret: SECRET,
    logLevel: 'warn',
    connectors: ['amocrm'],
    accounts: accounts.map((a) => ({
      id: a.id,
      avito: { clientId: a.avito.clientId, clientSecret: a.avito.clientSecret, apiUrl: a.avito.url, requestsPerSecond: 50 },
      amocrm: { baseUrl: a.amo.url, accessToken: a.amo.token },
    })),
  }));
  const expected = accounts.reduce((n, a) => n + a.chats.reduce((m, c) => m + c.messages.length, 0), 0);
  const seen = new Map<string, number>();
  const noteOwner = new Map<string, string>();
  for (const a of accounts) for (const c of a.chats) for (const m of c.messages) noteOwner.set(m.id, a.id);
  let crossed = 0;
  const scanned = new Map<SandboxAmo, number>();
  let watching = true;
  const watch = (async () => {
    while (watching) {
      for (const a of accounts) {
        const notes = [...a.amo.notes.values()];
        for (let i = scanned.get(a.amo) ?? 0; i < notes.length; i++) {
          const id = markerOf(String(notes[i]!.params.text ?? ''));
          if (!id || seen.has(id)) continue;
          seen.set(id, performance.now());
          if (noteOwner.get(id) !== a.id) crossed++;
        }
        scanned.set(a.amo, notes.length);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const started = performance.now();
  const child = spawn(process.execPath, [...PRODUCT_NODE_FLAGS, path.resolve('dist/src/cli/main.js'), '--config', configFile, 'run'], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await until(() => seen.size >= expected, 300_000, 'the first sync of every account');
    const firstSyncMs = performance.now() - started;
    const firstReq = accounts.map((a) => a.amo.requests.length);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
    const sent = new Map<string, number>();
    const posts: Promise<number>[] = [];
    const cpuBefore = procStats(child.pid!).cpuSeconds;
    const loadStart = performance.now();
    for (let i = 0; i < seconds * rate; i++) {
      const wait = loadStart + (i * 1000) / rate - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const a = accounts[i % accounts.length]!;
      const chat = a.chats[Math.floor(i / accounts.length) % a.chats.length]!;
      const m = a.avito.addMessage(chat.id, { text: `load ${i}` });
      noteOwner.set(m.id, a.id);
      sent.set(m.id, performance.now());
      posts.push(postWebhook(agent, port, SECRET, JSON.stringify(a.avito.webhookBody(chat.id, m))));
    }
    await Promise.all(posts);
    agent.destroy();
    await until(() => [...sent.keys()].every((id) => seen.has(id)), 300_000, 'every load event delivered');
    const stats = procStats(child.pid!);
    const loadReq = accounts.map((a, i) => a.amo.requests.length - firstReq[i]!);
    return {
      accounts: accountCount,
      events: sent.size,
      latencies: [...sent].map(([id, t]) => seen.get(id)! - t).sort((x, y) => x - y),
      firstSyncMs,
      firstSyncRequestsPerAccount: { min: Math.min(...firstReq), max: Math.max(...firstReq) },
      loadRequestsPerAccount: { min: Math.min(...loadReq), max: Math.max(...loadReq) },
      http429: accounts.reduce((n, a) => n + a.amo.requests.filter((r) => r.status === 429).length, 0),
      crossed,
      peakRssMb: stats.peakRssMb,
      cpuSecondsPer1000: ((stats.cpuSeconds - cpuBefore) / sent.size) * 1000,
    };
  } finally {
    watching = false;
    await watch;
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    for (const a of accounts) {
      await a.avito.stop();
      await a.amo.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `npm run bench -- accounts`: 40 and 200 accounts in one process. */
export async function accountsBench(): Promise<string> {
  const rows = [await runAccounts(40, 60), await runAccounts(200, 60)];
  const ms = (l: number[], p: number) => `${fmt(percentile(l, p), 0)} ms`;
  return [
    '### Many accounts in one process (issue 17): 20 webhook events/s for 60 s, each account its own Avito app and amoCRM',
    '',
    '| accounts | first sync (8 chats × 4 messages each) | amoCRM requests per account, first sync | events | event → note p50 | p95 | max | amoCRM requests per account under load | 429s | notes in another account\'s CRM | peak RSS | CPU s per 1,000 events |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.accounts} | ${fmt(r.firstSyncMs / 1000, 1)} s | ${r.firstSyncRequestsPerAccount.min}–${r.firstSyncRequestsPerAccount.max} | ${r.events} | ${ms(r.latencies, 50)} | ${ms(r.latencies, 95)} | ${ms(r.latencies, 100)} | ${r.loadRequestsPerAccount.min}–${r.loadRequestsPerAccount.max} | ${r.http429} | ${r.crossed} | ${fmt(r.peakRssMb, 0)} MB | ${fmt(r.cpuSecondsPer1000, 2)} |`),
    '',
    'The minimum under load is one notes request per event that lands alone in its account (events reach each account every accounts ÷ 20 s). Goals at 40 accounts: p95 ≤ 2 s, peak RSS ≤ 300 MB, 0 × 429.',
  ].join('\n');
}
