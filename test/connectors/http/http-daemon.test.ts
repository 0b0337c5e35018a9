import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SandboxReceiver } from '../../../connectors/http/sandbox.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { createRuntime, type Runtime } from '../../../src/runtime.js';
import { freePort } from '../../../src/sandbox/net.js';
import { SandboxAvito } from '../../../src/sandbox/sandbox-avito.js';
import { startDaemon, type Daemon } from '../../../src/sync/daemon.js';
import { syncOnce } from '../../../src/sync/sync-once.js';
import { FAST_RETRY, afterSigkill, runCli, tempDir, waitFor } from '../../helpers.js';
import { ledgerLocation } from '../../dialects.js';

const SECRET = 'test-secret-0123456789';
let avito: SandboxAvito | undefined;
let rx: SandboxReceiver | undefined;
let rt: Runtime | undefined;
let daemon: Daemon | undefined;
let cleanup: (() => void) | undefined;

afterEach(async () => {
  if (daemon) await daemon.stop();
  else await rt?.close().catch(() => undefined);
  daemon = undefined;
  rt = undefined;
  await avito?.stop();
  await rx?.stop();
  cleanup?.();
});

/** One account whose connector is `http`, from a config file (the form every account can use). */
async function setup(extra: Record<string, unknown> = {}): Promise<{ file: string; port: number; dir: string }> {
  avito = new SandboxAvito();
  rx = new SandboxReceiver();
  await avito.start();
  await rx.start();
  const t = tempDir();
  cleanup = t.cleanup;
  const port = await freePort();
  const file = path.join(t.dir, 'accounts.json');
  writeFileSync(file, JSON.stringify({
    db: ledgerLocation(t.dir),
    connectors: ['http'],
    webhookSecret: SECRET,
    accounts: [{ id: 'default', avito: { clientId: avito.clientId, clientSecret: avito.clientSecret, apiUrl: avito.url, requestsPerSecond: 1000 }, http: { url: rx.url, secret: rx.secret } }],
    ...extra,
  }));
  return { file, port, dir: t.dir };
}

async function runtime(file: string): Promise<Runtime> {
  rt = await createRuntime(loadConfig({ env: { LOG_LEVEL: 'warn' }, flags: { config: file } }), memoryLogger('warn').logger, { retry: FAST_RETRY });
  return rt;
}

const sellerTexts = (chatId: string) => avito!.chats.get(chatId)!.messages.filter((m) => m.author_id === avito!.userId).map((m) => String(m.content.text ?? m.type));

describe('HTTP connector through the daemon', () => {
  it('buyer messages become signed events, per chat in order; a 410 pauses the account and health says so', async () => {
    const { file } = await setup();
    const chats = [avito!.addChat(), avito!.addChat()];
    for (const c of chats) for (let i = 0; i < 3; i++) avito!.addMessage(c.id, { text: `${c.id} #${i}` });
    await syncOnce(await runtime(file));
    for (const c of chats) expect(rx!.messageIds(c.id)).toEqual(avito!.chats.get(c.id)!.messages.map((m) => m.id));

    rx!.inject({ kind: '410', times: 1 });
    avito!.addMessage(chats[0]!.id, { text: 'after 410' });
    const report = await syncOnce(rt!);
    expect(report.deliveries[0]!.report?.halted ?? JSON.stringify(report.deliveries)).toMatch(/answered 410/);
    daemon = await startDaemon(rt!, { port: 0, host: '127.0.0.1', initialPoll: false });
    const health = (await (await fetch(`http://127.0.0.1:${daemon.port}/healthz`)).json()) as { status: string; accounts: { pausedConnectors: { connector: string; until: string; reason: string }[] }[] };
    expect(health.status).toBe('degraded');
    expect(health.accounts[0]!.pausedConnectors).toEqual([{ connector: 'http', until: 'indefinitely', reason: expect.stringMatching(/410 Gone/) }]);
  });

  it('signed replies: 202 once stored, 200 when seen before, 401 forged or stale, 422 for an unknown chat; sent to Avito once, split at 1,000 characters, fate reported', async () => {
    const { file, port } = await setup();
    writeFileSync(file, JSON.stringify({ ...JSON.parse(require_(file)), publicUrl: `http://127.0.0.1:${port}`, port, crmPollIntervalWithWebhooksSeconds: 3600, pollIntervalWithWebhooksSeconds: 3600 }));
    const chat = avito!.addChat();
    avito!.addMessage(chat.id, { text: 'Ещё продаётся?' });
    await syncOnce(await runtime(file));
    daemon = await startDaemon(rt!, { host: '127.0.0.1', initialPoll: false });
    const url = `http://127.0.0.1:${port}/webhooks/http/${SECRET}`;
    const post = (r: { headers: Record<string, string>; body: string }) => fetch(url, { method: 'POST', headers: r.headers, body: r.body });
    const count = async () => (await rt!.ledger.db.selectFrom('replies').selectAll().execute()).length;

    const text = Array.from({ length: 250 }, (_, i) => `слово${String(i).padStart(4, '0')}`).join(' ').slice(0, 2500);
    const genuine = rx!.signedReply({ reply_id: 'crm-reply-1', chat_id: chat.id, text });
    const now = Math.floor(Date.now() / 1000);
    const refused: [string, { headers: Record<string, string>; body: string }, number][] = [
      ['missing signature', { headers: { 'content-type': 'application/json' }, body: genuine.body }, 401],
      ['bad signature', { headers: { ...genuine.headers, 'webhook-signature': 'v1,AAAA' }, body: genuine.body }, 401],
      ['signed with another secret', rx!.signedReply({ reply_id: 'crm-reply-2', chat_id: chat.id, text: 'x' }, { secret: `whsec_${Buffer.alloc(32, 5).toString('base64')}` }), 401],
      ['timestamp 6 minutes old', rx!.signedReply({ reply_id: 'crm-reply-3', chat_id: chat.id, text: 'x' }, { timestamp: now - 360 }), 401],
      ['an unknown chat', rx!.signedReply({ reply_id: 'crm-reply-4', chat_id: 'u2i-nobody', text: 'x' }), 422],
      ['not a reply', rx!.signedReply({ reply_id: 'crm-reply-5' }), 400],
    ];
    for (const [what, r, status] of refused) expect((await post(r)).status, what).toBe(status);
    expect(await count()).toBe(0);

    expect((await post(genuine)).status).toBe(202);
    expect((await post(genuine)).status).toBe(200); // the same reply_id again: nothing sent again
    expect((await post(rx!.signedReply({ reply_id: 'crm-reply-1', chat_id: chat.id, text: 'other text, same id' }))).status).toBe(200);
    await waitFor(() => rx!.events.some((e) => e.type === 'reply.sent'), 15_000, 'reply.sent event');
    const sent = sellerTexts(chat.id);
    expect(sent).toHaveLength(3);
    expect(sent.every((t) => t.length <= 1000)).toBe(true);
    expect(sent.join(' ')).toBe(text);
    expect(avito!.count('postSendMessage')).toBe(3);
    expect(rx!.events.filter((e) => e.type.startsWith('reply.')).map((e) => e.body.data)).toEqual([{ account_id: 'default', chat_id: chat.id, reply_id: 'crm-reply-1', parts: 3 }]);
    expect(await count()).toBe(1);
  });
});

describe('invariant 2 with findDelivered false: at-least-once with a stable webhook-id', () => {
  it('SIGKILL after the receiver took an event but before the ledger knew: the restart sends it again with the same id, and the receiver keeps each once', async () => {
    const { file, dir } = await setup();
    const chat = avito!.addChat();
    for (let i = 0; i < 5; i++) avito!.addMessage(chat.id, { text: `m${i}` });
    let child: ChildProcess | undefined;
    let taken = 0;
    const real = rx!.events.push.bind(rx!.events);
    rx!.events.push = (...e) => {
      if (++taken === 3) rx!.stall = { onStall: () => child?.kill('SIGKILL') };
      return real(...e);
    };
    const env = { LOG_LEVEL: 'warn' };
    const first = await runCli(['--config', file, 'sync', '--once'], env, { onSpawn: (c) => (child = c) });
    expect(first.signal).toBe('SIGKILL');
    const afterCrash = rx!.messageIds(chat.id);
    expect(afterCrash.length).toBeGreaterThanOrEqual(3);
    // On PostgreSQL the killed process's claims are free once its registration runs out.
    await afterSigkill(ledgerLocation(dir), child!.pid!);
    const second = await runCli(['--config', file, 'sync', '--once'], env);
    expect(second.code, second.stderr).toBe(0);
    const ids = avito!.chats.get(chat.id)!.messages.map((m) => m.id);
    expect(rx!.messageIds(chat.id)).toEqual(ids); // each once, in order
    const resent = rx!.attempts.filter((a) => a.id === rx!.events[afterCrash.length - 1]!.id);
    expect(resent.map((a) => a.status)).toEqual([0, 200]); // the same webhook-id, sent again
  });
});

function require_(file: string): string {
  return readFileSync(file, 'utf8');
}
