import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { markerOf } from '../connectors/amocrm/mappers.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito, type FakeChat } from '../src/sandbox/sandbox-avito.js';
import { freePort } from '../src/sandbox/net.js';
import { fmt, percentile, postWebhook, until, PRODUCT_NODE_FLAGS } from './util.js';

const SECRET = 'bench-secret-0123456789';
/** amoCRM allows 7 requests/s; the client keeps to 6. */
const AMO_RPS = 6;
const NOTES_PER_REQUEST = 100;
const LEADS_PER_REQUEST = 50;



interface Stage {
  avito: SandboxAvito;
  amo: SandboxAmo;
  port: number;
  chats: FakeChat[];
  /** First time each Avito message id was seen as a note (performance.now()). */
  seen: Map<string, number>;
  stop(): Promise<void>;
}

/** `avito-sync run` in its own process against both sandboxes, with `known` chats already delivered. */
async function stage(known: number): Promise<Stage> {
  const avito = new SandboxAvito();
  const amo = new SandboxAmo();
  await avito.start();
  await amo.start();
  const chats = avito.seed(known, 1);
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-bench-burst-'));
  const port = await freePort();
  const child = spawn(process.execPath, [...PRODUCT_NODE_FLAGS, path.resolve('dist/src/cli/main.js'), 'run'], {
    env: {
      PATH: process.env.PATH ?? '', AVITO_CLIENT_ID: avito.clientId, AVITO_CLIENT_SECRET: avito.clientSecret, AVITO_API_URL: avito.url,
      AVITO_SYNC_DB: path.join(dir, 'bench.db'), AMOCRM_BASE_URL: amo.url, AMOCRM_ACCESS_TOKEN: amo.token, PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`, WEBHOOK_SECRET: SECRET, LOG_LEVEL: 'warn', AVITO_REQUESTS_PER_SECOND: '100',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const seen = new Map<string, number>();
  let watching = true;
  // Watch the sandbox's notes as they land: a note's arrival time is when a manager could see it.
  let scanned = 0;
  const watch = (async () => {
    while (watching) {
      const notes = [...amo.notes.values()];
      for (let i = scanned; i < notes.length; i++) {
        const id = markerOf(String(notes[i]!.params.text ?? ''));
        if (id && !seen.has(id)) seen.set(id, performance.now());
      }
      scanned = notes.length;
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  await until(() => amo.leads.size === known && seen.size >= known, 120_000, 'the known chats delivered');
  return {
    avito, amo, port, chats, seen,
    async stop() {
      watching = false;
      await watch;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await avito.stop();
      await amo.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

interface BurstResult { latencies: number[]; totalMs: number; boundMs: number; amoRequests: number; http429: number; notes: number; newLeads: number }

/**
 * The burst of a seller's busy day (issue 13): 500 events, 450 into 20 known chats and 50 into
 * 10 new chats, 20 % sent twice, shuffled, 20 at a time.
 */
async function burst(): Promise<BurstResult> {
  const s = await stage(20);
  try {
    const fresh = Array.from({ length: 10 }, () => s.avito.addChat());
    const events: { id: string; body: string }[] = [];
    for (let i = 0; i < 450; i++) {
      const chat = s.chats[i % s.chats.length]!;
      const m = s.avito.addMessage(chat.id, { text: `burst ${i}` });
      events.push({ id: m.id, body: JSON.stringify(s.avito.webhookBody(chat.id, m)) });
    }
    for (let i = 0; i < 50; i++) {
      const chat = fresh[i % fresh.length]!;
      const m = s.avito.addMessage(chat.id, { text: `new chat ${i}` });
      events.push({ id: m.id, body: JSON.stringify(s.avito.webhookBody(chat.id, m)) });
    }
    const sends = shuffle([...events, ...events.filter(() => Math.random() < 0.2)]);
    const before = { requests: s.amo.requests.length, http429: s.amo.requests.filter((r) => r.status === 429).length, leads: s.amo.leads.size };
    const firstSent = new Map<string, number>();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
    const started = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 20 }, async () => {
      for (let i = next++; i < sends.length; i = next++) {
        const e = sends[i]!;
        if (!firstSent.has(e.id)) firstSent.set(e.id, performance.now());
        await postWebhook(agent, s.port, SECRET, e.body);
      }
    }));
    agent.destroy();
    await until(() => events.every((e) => s.seen.has(e.id)), 180_000, 'every burst event delivered');
    const totalMs = Math.max(...events.map((e) => s.seen.get(e.id)!)) - started;
    const newLeads = s.amo.leads.size - before.leads;
    return {
      latencies: events.map((e) => s.seen.get(e.id)! - firstSent.get(e.id)!).sort((a, b) => a - b),
      totalMs,
      boundMs: ((events.length / NOTES_PER_REQUEST + newLeads / LEADS_PER_REQUEST) / AMO_RPS + 2) * 1000,
      amoRequests: s.amo.requests.length - before.requests,
      http429: s.amo.requests.filter((r) => r.status === 429).length - before.http429,
      notes: events.length,
      newLeads,
    };
  } finally {
    await s.stop();
  }
}

/** A steady 20 events/s into 20 known chats for `seconds`. */
async function steady(seconds: number, rate = 20): Promise<{ latencies: number[]; http429: number; amoRequests: number }> {
  const s = await stage(20);
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
    const sent = new Map<string, number>();
    const before = { requests: s.amo.requests.length, http429: s.amo.requests.filter((r) => r.status === 429).length };
    const start = performance.now();
    const posts: Promise<number>[] = [];
    for (let i = 0; i < seconds * rate; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const chat = s.chats[i % s.chats.length]!;
      const m = s.avito.addMessage(chat.id, { text: `steady ${i}` });
      sent.set(m.id, performance.now());
      posts.push(postWebhook(agent, s.port, SECRET, JSON.stringify(s.avito.webhookBody(chat.id, m))));
    }
    await Promise.all(posts);
    agent.destroy();
    await until(() => [...sent.keys()].every((id) => s.seen.has(id)), 120_000, 'every steady event delivered');
    return {
      latencies: [...sent].map(([id, t]) => s.seen.get(id)! - t).sort((a, b) => a - b),
      http429: s.amo.requests.filter((r) => r.status === 429).length - before.http429,
      amoRequests: s.amo.requests.length - before.requests,
    };
  } finally {
    await s.stop();
  }
}

/** Real time under bursts (issue 13): Avito webhook → amoCRM note, through `avito-sync run`. */
export async function burstBench(): Promise<string> {
  const b = await burst();
  const st = await steady(30);
  const ms = (l: number[], p: number) => `${fmt(percentile(l, p), 0)} ms`;
  return [
    '### Real time under bursts (issue 13): Avito webhook → amoCRM note, `avito-sync run`',
    '',
    '| load | events | p50 | p95 | max | amoCRM requests | 429s |',
    '|---|---|---|---|---|---|---|',
    `| burst: 500 events (450 into 20 known chats, 50 into 10 new), 20 % twice, 20 at a time | ${b.notes} | ${ms(b.latencies, 50)} | ${ms(b.latencies, 95)} | ${ms(b.latencies, 100)} | ${b.amoRequests} | ${b.http429} |`,
    `| steady: 20 events/s for 30 s into 20 known chats | ${st.latencies.length} | ${ms(st.latencies, 50)} | ${ms(st.latencies, 95)} | ${ms(st.latencies, 100)} | ${st.amoRequests} | ${st.http429} |`,
    '',
    `The burst's last note landed ${fmt(b.totalMs / 1000, 2)} s after its first event was sent; the bound (notes ÷ ${NOTES_PER_REQUEST} + new leads ÷ ${LEADS_PER_REQUEST}) ÷ ${AMO_RPS} requests/s + 2 s is ${fmt(b.boundMs / 1000, 2)} s (${b.newLeads} new leads).`,
    'Latency is from the first send of an event to the moment its note exists in the sandbox amoCRM (watched every 2 ms); goals: steady p95 ≤ 1 s, 0 × 429.',
  ].join('\n');
}
