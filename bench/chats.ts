import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SandboxAmojo } from '../connectors/amocrm/chats/sandbox-amojo.js';
import { loadConfig } from '../src/config/load-config.js';
import { memoryLogger } from '../src/log/logger.js';
import { createRuntime } from '../src/runtime.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { freePort } from '../src/sandbox/net.js';
import { syncOnce } from '../src/sync/sync-once.js';
import { fmt, percentile, PRODUCT_NODE_FLAGS } from './util.js';

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function sandboxes(hookUrl?: string) {
  const avito = new SandboxAvito();
  const amo = new SandboxAmo();
  const amojo = new SandboxAmojo(amo, hookUrl ? { hookUrl } : {});
  await avito.start();
  await amo.start();
  await amojo.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-bench-chats-'));
  const env: Record<string, string> = {
    AVITO_CLIENT_ID: avito.clientId, AVITO_CLIENT_SECRET: avito.clientSecret, AVITO_API_URL: avito.url, AVITO_REQUESTS_PER_SECOND: '1000',
    AVITO_SYNC_DB: path.join(dir, 'bench.db'), AMOCRM_BASE_URL: amo.url, AMOCRM_ACCESS_TOKEN: amo.token, LOG_LEVEL: 'warn', ...amojo.env(),
  };
  const stop = async () => {
    await avito.stop();
    await amo.stop();
    await amojo.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { avito, amo, amojo, env, stop };
}

/** Messages into the chat per second, at the default request budget (6 per second). */
async function throughput(chats: number, perChat: number): Promise<{ messages: number; seconds: number; amojoCalls: number; restCalls: number }> {
  const s = await sandboxes();
  try {
    for (let i = 0; i < chats; i++) {
      const c = s.avito.addChat();
      for (let j = 0; j < perChat; j++) s.avito.addMessage(c.id, { text: `message ${j} in ${c.id}` });
    }
    const rt = await createRuntime(loadConfig({ env: s.env }), memoryLogger('warn').logger);
    const started = performance.now();
    await syncOnce(rt);
    const seconds = (performance.now() - started) / 1000;
    await rt.close();
    const messages = [...s.amojo.chats.values()].reduce((n, c) => n + c.messages.length, 0);
    if (messages !== chats * perChat) throw new Error(`expected ${chats * perChat} messages in the chats, found ${messages}`);
    return { messages, seconds, amojoCalls: s.amojo.requests.filter((r) => r.path.startsWith('/v2/')).length, restCalls: s.amo.requests.length };
  } finally {
    await s.stop();
  }
}

/** A manager's answer in the chat panel → the message at Avito, through the signed hook and `run`. */
async function hookLatency(samples: number): Promise<number[]> {
  const port = await freePort();
  const s = await sandboxes(`http://127.0.0.1:${port}/webhooks/amojo/:scope_id`);
  const chats = Array.from({ length: samples }, () => {
    const c = s.avito.addChat();
    s.avito.addMessage(c.id, { text: 'Здравствуйте' });
    return c;
  });
  const env = { ...s.env, PATH: process.env.PATH ?? '', PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, WEBHOOK_SECRET: 'bench-secret-0123456789' };
  const child = spawn(process.execPath, [...PRODUCT_NODE_FLAGS, path.resolve('dist/src/cli/main.js'), 'run'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await until(() => chats.every((c) => (s.amojo.chat(c.id)?.messages.length ?? 0) > 0), 120_000, 'messages in the chats');
    const latencies: number[] = [];
    for (let i = 0; i < samples; i++) {
      const text = `bench answer ${i}`;
      const chat = s.avito.chats.get(chats[i]!.id)!;
      const started = performance.now();
      s.amojo.managerAnswer(chat.id, { text });
      await until(() => chat.messages.some((m) => m.content.text === text), 60_000, `answer ${i}`);
      latencies.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, 50));
    }
    const statuses = await Promise.all(s.amojo.hookCalls);
    if (statuses.some((x) => x !== 200)) throw new Error(`hooks answered ${statuses.join(',')}`);
    return latencies;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await s.stop();
  }
}

/** amoCRM chats mode (issue 15). */
export async function chatsBench(): Promise<string> {
  const t = await throughput(20, 10);
  const l = (await hookLatency(20)).sort((a, b) => a - b);
  return [
    '### amoCRM chats mode (issue 15)',
    '',
    '| measure | result |',
    '|---|---|',
    `| Avito messages into amoCRM chats, \`sync --once\`, ${t.messages} messages in 20 chats, default budget 6 requests/s | ${fmt(t.messages / t.seconds)} messages/s (${fmt(t.seconds)} s; ${t.amojoCalls} Chats API + ${t.restCalls} REST requests) |`,
    `| manager answer in the chat panel → message at Avito, through the signed hook (\`run\`, ${l.length} samples) | p50 ${fmt(percentile(l, 50), 0)} ms, p95 ${fmt(percentile(l, 95), 0)} ms, max ${fmt(l[l.length - 1]!, 0)} ms |`,
    '',
    'One Chats API request per message (amojo takes one message per call), spaced at the REST budget (6 per second; amoCRM documents no number for amojo, so it gets its own gate at the same rate), plus per new chat: learning its amojo id, finding its unsorted lead and naming it. The hook is stored and answered 200 before the send; the answer then goes to Avito and its delivery status back to amoCRM.',
  ].join('\n');
}
