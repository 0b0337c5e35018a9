import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load-config.js';
import type { ServerLimits } from '../src/server/http-server.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import type { Runtime } from '../src/runtime.js';
import { startDaemon, type Daemon } from '../src/sync/daemon.js';
import { fakeEnv, tempDir, testRuntime, waitFor } from './helpers.js';

const SECRET = 'test-secret-0123456789';
let fake: SandboxAvito | undefined;
let rt: Runtime;
let daemon: Daemon | undefined;
let cleanup: (() => void) | undefined;
let base: string;
const sockets: Socket[] = [];

async function setup(env: Record<string, string> = {}, limits: Partial<ServerLimits> = {}) {
  fake = new SandboxAvito();
  await fake.start();
  const t = tempDir();
  cleanup = t.cleanup;
  ({ rt } = await testRuntime(fakeEnv(fake, t.dir, { WEBHOOK_SECRET: SECRET, ...env })));
  daemon = await startDaemon(rt, { port: 0, host: '127.0.0.1', initialPoll: false, serverLimits: limits });
  base = `http://127.0.0.1:${daemon.port}`;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await daemon?.stop();
  daemon = undefined;
  await fake?.stop();
  cleanup?.();
});

/** A raw connection to the daemon, tracking whether the server closed it and what it answered. */
function rawSocket(): Promise<{ socket: Socket; closed: () => boolean; received: () => string }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    let data = '';
    const socket = connect(daemon!.port, '127.0.0.1', () => resolve({ socket, closed: () => closed, received: () => data }));
    socket.on('data', (d) => (data += d.toString()));
    socket.on('close', () => (closed = true));
    socket.on('error', () => (closed = true));
    socket.once('error', reject);
    sockets.push(socket);
  });
}

describe('HTTP server hardening (issue 9)', () => {
  it('1,000 junk requests leave /metrics bounded: unknown routes and connectors are labelled other', async () => {
    await setup();
    const size = async () => (await (await fetch(`${base}/metrics`)).text()).replace(/^(process|nodejs|avito_sync_process|avito_sync_nodejs).*$/gm, '').length;
    // Warm up every label value a junk request can produce once, then measure.
    const junk = (i: number) => [
      fetch(`${base}/webhooks/junk-${i}/x`, { method: 'POST', body: 'a' }),
      fetch(`${base}/webhooks/avito/wrong-${i}`, { method: 'POST', body: 'a' }),
      fetch(`${base}/webhooks/junk-${i}/${SECRET}`, { method: 'POST', body: 'a' }),
      fetch(`${base}/nothing-${i}`),
    ];
    for (let i = 0; i < 4; i++) await Promise.all(junk(i));
    const before = await size();
    for (let i = 0; i < 1000; i += 100) {
      await Promise.all(Array.from({ length: 25 }, (_, k) => junk(1000 + i + k)).flat());
    }
    const after = await size();
    expect(after - before).toBeLessThan(200); // counters grew by digits, no new series
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).not.toMatch(/junk-/);
    expect(text).toMatch(/avito_sync_webhooks_rejected_total\{source="other",reason="wrong_secret"\} \d+/);
    expect(text).toMatch(/avito_sync_webhooks_rejected_total\{source="other",reason="unknown_connector"\} \d+/);
  }, 300_000);

  it('slow-trickle sockets are cut: request and header timeouts hold', async () => {
    await setup({}, { requestTimeoutMs: 400, headersTimeoutMs: 300, checkIntervalMs: 50, idleTimeoutMs: 5_000 });
    const conns = await Promise.all(Array.from({ length: 20 }, () => rawSocket()));
    // Half trickle their headers, half a body after complete headers; one byte at a time.
    conns.forEach((c, i) => c.socket.write(i % 2 ? `POST /webhooks/avito/${SECRET} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n` : 'POST /webhooks/avito/'));
    for (let round = 0; round < 200 && conns.some((c) => !c.closed()); round++) {
      for (const c of conns) if (!c.closed()) c.socket.write('a');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(conns.filter((c) => !c.closed())).toHaveLength(0);
    // The daemon still serves.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  }, 60_000);

  it('the webhook secret is checked before the body is read', async () => {
    await setup();
    const wrong = await rawSocket();
    // Headers announce 10 MB; no body byte is sent: the 404 comes anyway.
    wrong.socket.write(`POST /webhooks/avito/wrong-secret-0123456789 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n`);
    await waitFor(() => wrong.received().includes('\r\n\r\n'), 10_000, 'an answer before the body');
    expect(wrong.received()).toMatch(/^HTTP\/1\.1 404/);
    const crm = await rawSocket();
    crm.socket.write(`POST /webhooks/amocrm/wrong-secret-0123456789 HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n`);
    await waitFor(() => crm.received().includes('\r\n\r\n'), 10_000, 'an answer before the body');
    expect(crm.received()).toMatch(/^HTTP\/1\.1 404/);
  });

  it('a connection cap: connections past it are refused, the ones inside it are served', async () => {
    await setup({}, { maxConnections: 5 });
    const held = await Promise.all(Array.from({ length: 5 }, () => rawSocket()));
    const extra = await Promise.all(Array.from({ length: 5 }, () => rawSocket().catch(() => undefined)));
    await waitFor(() => extra.every((c) => !c || c.closed()), 10_000, 'extra connections closed');
    expect(held.every((c) => !c.closed())).toBe(true);
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => held[0]!.received().startsWith('HTTP/1.1 200'), 10_000, 'served');
  });

  it('METRICS_TOKEN: /metrics wants the bearer token', async () => {
    await setup({ METRICS_TOKEN: 'metrics-token-0123456789' });
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const ok = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789' } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/avito_sync_webhooks_received_total/);
  });

  it('HOST: the daemon binds 127.0.0.1 unless told otherwise', () => {
    expect(loadConfig({ env: {} }).host).toBe('127.0.0.1');
    expect(loadConfig({ env: { HOST: '0.0.0.0' } }).host).toBe('0.0.0.0');
  });
});
