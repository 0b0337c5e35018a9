import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { fmt, percentile, PRODUCT_NODE_FLAGS } from './util.js';
import { freePort } from '../src/sandbox/net.js';

const SECRET = 'bench-secret-0123456789';


function post(agent: http.Agent, port: number, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: `/webhooks/avito/${SECRET}`, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Webhooks (issue 3): 2,000 deliveries, 20 concurrent, against `avito-sync run` in its own
 * process → acknowledgement latency seen by the sender and deliveries per second.
 */
export async function webhookBench(total = 2000, concurrency = 20): Promise<string> {
  const fake = new SandboxAvito();
  await fake.start();
  const chats = Array.from({ length: 100 }, () => fake.addChat());
  const bodies = Array.from({ length: total }, (_, i) => {
    const chat = chats[i % chats.length]!;
    return JSON.stringify(fake.webhookBody(chat.id, fake.addMessage(chat.id, { text: `webhook message ${i}` })));
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-bench-wh-'));
  const port = await freePort();
  const child = spawn(process.execPath, [...PRODUCT_NODE_FLAGS, path.resolve('dist/src/cli/main.js'), 'run'], {
    env: {
      PATH: process.env.PATH ?? '', AVITO_CLIENT_ID: fake.clientId, AVITO_CLIENT_SECRET: fake.clientSecret, AVITO_API_URL: fake.url,
      AVITO_SYNC_DB: path.join(dir, 'bench.db'), AVITO_SYNC_CONNECTORS: 'none', PORT: String(port), WEBHOOK_SECRET: SECRET, LOG_LEVEL: 'warn',
      POLL_INTERVAL_SECONDS: '3600',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 300) throw new Error('daemon did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    // Warm-up: 100 deliveries not counted (JIT, prepared statements).
    const warm = Array.from({ length: 100 }, (_, i) => JSON.stringify({ id: `warm-${i}`, version: 'v3.0.0', timestamp: 1, payload: { type: 'warmup', value: {} } }));
    await Promise.all(warm.map((b) => post(agent, port, b)));

    const latencies: number[] = [];
    let failures = 0;
    let next = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < bodies.length; i = next++) {
        const t = performance.now();
        const status = await post(agent, port, bodies[i]!);
        latencies.push(performance.now() - t);
        if (status !== 200) failures++;
      }
    }));
    const wall = performance.now() - started;
    agent.destroy();
    const sorted = latencies.sort((a, b) => a - b);
    return [
      `### Webhooks (issue 3): ${total} deliveries, ${concurrency} concurrent, against \`avito-sync run\``,
      '',
      '| deliveries/s | ack p50 | ack p90 | ack p99 | max | non-200 |',
      '|---|---|---|---|---|---|',
      `| ${fmt(total / (wall / 1000), 0)} | ${fmt(percentile(sorted, 50), 2)} ms | ${fmt(percentile(sorted, 90), 2)} ms | ${fmt(percentile(sorted, 99), 2)} ms | ${fmt(sorted[sorted.length - 1]!, 2)} ms | ${failures} |`,
      '',
      `Latency is measured by the sender (keep-alive connections), from request to response; each 200 means the raw event and the message were committed to SQLite. Goal: p99 < 20 ms.`,
    ].join('\n');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
