import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SandboxReceiver } from '../connectors/http/sandbox.js';
import { loadConfig } from '../src/config/load-config.js';
import { createLogger } from '../src/log/logger.js';
import { createRuntime, type Runtime } from '../src/runtime.js';
import { freePort } from '../src/sandbox/net.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { startDaemon } from '../src/sync/daemon.js';
import { Delivery } from '../src/sync/delivery.js';
import { pollAccount } from '../src/sync/poller.js';
import { fmt, percentile } from './util.js';

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function runtimeFor(avito: SandboxAvito, rx: SandboxReceiver, dir: string, extra: Record<string, unknown> = {}): Promise<Runtime> {
  const file = path.join(dir, 'accounts.json');
  writeFileSync(file, JSON.stringify({
    db: path.join(dir, 'bench.db'), connectors: ['http'], webhookSecret: 'bench-secret-0123456789',
    accounts: [{ id: 'default', avito: { clientId: avito.clientId, clientSecret: avito.clientSecret, apiUrl: avito.url, requestsPerSecond: 1000 }, http: { url: rx.url, secret: rx.secret } }],
    ...extra,
  }));
  return createRuntime(loadConfig({ env: {}, flags: { config: file } }), createLogger({ level: 'warn', pretty: false }));
}

/** Events/s: 2,000 ledger messages over 100 chats into a local receiver (signed, one per request). */
async function throughput(): Promise<{ events: number; ms: number; requests: number }> {
  const avito = new SandboxAvito();
  const rx = new SandboxReceiver();
  await avito.start();
  await rx.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-bench-http-'));
  try {
    avito.seed(100, 20);
    const rt = await runtimeFor(avito, rx, dir);
    const acc = rt.accounts[0]!;
    await pollAccount({ ledger: rt.ledger, client: acc.client, log: rt.log, voice: rt.voice }, { chatTypes: acc.config.avito.chatTypes });
    const started = performance.now();
    await new Delivery(rt).runAll();
    const ms = performance.now() - started;
    await rt.close();
    return { events: rx.events.length, ms, requests: rx.attempts.length };
  } finally {
    await avito.stop();
    await rx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reply latency: a signed reply.created POSTed to `avito-sync run` → the message at Avito. */
async function replyLatency(samples: number): Promise<number[]> {
  const avito = new SandboxAvito();
  const rx = new SandboxReceiver();
  await avito.start();
  await rx.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-bench-http-replies-'));
  const port = await freePort();
  try {
    const chats = avito.seed(samples, 1);
    const rt = await runtimeFor(avito, rx, dir, { publicUrl: `http://127.0.0.1:${port}`, port, crmPollIntervalWithWebhooksSeconds: 3600 });
    const daemon = await startDaemon(rt, { host: '127.0.0.1' });
    try {
      await until(() => rx.events.length >= samples, 60_000, 'first events');
      const url = `http://127.0.0.1:${port}/webhooks/http/bench-secret-0123456789`;
      const latencies: number[] = [];
      for (let i = 0; i < samples; i++) {
        const text = `bench reply ${i}`;
        const chat = avito.chats.get(chats[i]!.id)!;
        const r = rx.signedReply({ reply_id: `bench-${i}`, chat_id: chat.id, text });
        const started = performance.now();
        const res = await fetch(url, { method: 'POST', headers: r.headers, body: r.body });
        if (res.status !== 202) throw new Error(`reply ${i} answered ${res.status}`);
        await until(() => chat.messages.some((m) => m.content.text === text), 30_000, `reply ${i}`);
        latencies.push(performance.now() - started);
      }
      return latencies;
    } finally {
      await daemon.stop();
    }
  } finally {
    await avito.stop();
    await rx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The HTTP connector (issue 11): events/s to a local receiver, and reply latency. */
export async function httpBench(): Promise<string> {
  const t = await throughput();
  const l = (await replyLatency(20)).sort((a, b) => a - b);
  return [
    '### HTTP connector (issue 11): signed events to a local receiver, replies back',
    '',
    '| measure | value |',
    '|---|---|',
    `| events delivered (2,000 messages over 100 chats, one signed POST each, in chat order) | ${t.events} in ${fmt(t.ms / 1000, 2)} s = **${fmt(t.events / (t.ms / 1000), 0)} events/s** (${t.requests} requests) |`,
    `| reply latency: signed \`reply.created\` POST → message at Avito (${l.length} samples) | p50 ${fmt(percentile(l, 50), 0)} ms, p95 ${fmt(percentile(l, 95), 0)} ms, max ${fmt(l[l.length - 1]!, 0)} ms |`,
    '',
    'Delivery only (the ledger was filled by one poll first); the receiver checks every signature. The reply is stored before the 202, then sent at once.',
  ].join('\n');
}
