import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectorInstance, DeliveryItem, WebhookRequest } from '../../../src/connector-sdk/contract.js';
import { connectorPauses, connectorStore, pausedState } from '../../../src/ledger/connector-state.js';
import type { Ledger } from '../../../src/ledger/database.js';
import { openTestLedger } from '../../dialects.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { classifyFailure } from '../../../src/sync/dispatcher.js';
import { chat, connectorContract, message } from '../../../src/connector-sdk/testing/index.js';
import type { HttpConnector } from '../../../connectors/http/connector.js';
import { http } from '../../../connectors/http/index.js';
import { SandboxReceiver } from '../../../connectors/http/sandbox.js';
import { secretKey, sign, signedHeaders, verify } from '../../../connectors/http/signature.js';

/** A request signed the way a receiver's owner signs a reply (Standard Webhooks, HTTP_CONNECTOR_SECRET). */
function replyRequest(rx: SandboxReceiver, data: Record<string, unknown>, opts: { timestamp?: number; secret?: string } = {}): WebhookRequest {
  const r = rx.signedReply(data, opts);
  return { method: 'POST', body: Buffer.from(r.body), headers: r.headers, contentType: 'application/json' };
}

// The SDK's contract kit against the HTTP connector and its sandbox receiver (real HTTP). No
// findDelivered: the kit checks that a message sent again carries the same webhook-id instead.
connectorContract<SandboxReceiver>({
  definition: http,
  startFake: async () => {
    const rx = new SandboxReceiver();
    await rx.start();
    return rx;
  },
  stopFake: (rx) => rx.stop(),
  // Bad credentials: a key the receiver does not verify with (it answers 401).
  config: (rx, credentials) => ({ url: rx.url, secret: credentials === 'good' ? rx.secret : `whsec_${Buffer.alloc(32, 9).toString('base64')}`, timeoutSeconds: 5 }),
  deliveredIds: (rx, conv) => rx.messageIds(conv.id),
  clearFaults: (rx) => rx.clearFaults(),
  inject: (rx, fault, times) => rx.inject({ kind: ({ rate_limited: '429', server_error: '503', bad_request: '400', unauthorized: '401' } as const)[fault], times, ...(fault === 'rate_limited' ? { retryAfter: 0 } : {}) }),
  replies: {
    // Replies arrive only by webhook (no polling): the receiver's owner POSTs a signed reply.created.
    write: async (rx, conv, text) => replyRequest(rx, { reply_id: `kit-${Math.random().toString(36).slice(2)}`, chat_id: conv.id, text }),
    outcomes: (rx, conv) => rx.events.filter((e) => e.type.startsWith('reply.') && e.body.data.chat_id === conv.id).map((e) => `${e.type} ${JSON.stringify(e.body.data)}`),
  },
  webhooks: {
    request: async (rx, conv, text) => replyRequest(rx, { reply_id: 'kit-webhook-1', chat_id: conv.id, text }),
    signed: true,
    forgeries: (rx, genuine) => {
      const data = (JSON.parse(genuine.body.toString('utf8')) as { data: Record<string, unknown> }).data;
      return [
        replyRequest(rx, data, { secret: `whsec_${Buffer.alloc(32, 3).toString('base64')}` }), // another key
        replyRequest(rx, data, { timestamp: Math.floor(Date.now() / 1000) - 600 }), // 10 minutes old
        { ...genuine, headers: { 'content-type': 'application/json' } }, // unsigned
      ];
    },
  },
});

describe('Standard Webhooks 1.0 signatures', () => {
  // The spec's published test vector (libraries/javascript/src/webhook.test.ts).
  const key = secretKey('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
  const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
  const ts = 1614265330;
  const body = '{"test": 2432232314}';

  it('signs the test vector exactly', () => {
    expect(sign(key, id, ts, body)).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('verifies the test vector within 5 minutes, and refuses every bad variant', () => {
    const h = { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' };
    const raw = Buffer.from(body);
    expect(verify(key, h, raw, ts + 299)).toEqual({ ok: true, id, timestamp: ts });
    expect(verify(key, h, raw, ts - 299).ok).toBe(true);
    expect(verify(key, { ...h, 'webhook-signature': `v1a,xyz v2,abc ${h['webhook-signature']}` }, raw, ts).ok).toBe(true); // rotation lists
    expect(verify(key, h, raw, ts + 301)).toMatchObject({ ok: false, reason: expect.stringMatching(/5 minutes/) });
    expect(verify(key, h, raw, ts - 301).ok).toBe(false);
    expect(verify(key, h, Buffer.from('{"test": 2432232315}'), ts).ok).toBe(false);
    expect(verify(key, { ...h, 'webhook-id': 'msg_other' }, raw, ts).ok).toBe(false);
    expect(verify(key, { ...h, 'webhook-signature': 'v1,AAAA' }, raw, ts).ok).toBe(false);
    expect(verify(key, { 'webhook-id': id, 'webhook-timestamp': String(ts) }, raw, ts).ok).toBe(false);
    expect(verify(key, { ...h, 'webhook-timestamp': '1614265330.5' }, raw, ts).ok).toBe(false);
    expect(verify(secretKey('whsec_' + Buffer.alloc(24, 7).toString('base64')), h, raw, ts).ok).toBe(false);
  });
});

describe('HTTP connector', () => {
  let rx: SandboxReceiver;
  let ledger: Ledger;
  const make = (extra: Record<string, unknown> = {}) =>
    http.create({
      accountId: 'default',
      config: http.configSchema.parse({ url: rx.url, secret: rx.secret, ...extra }),
      log: memoryLogger('warn').logger,
      store: connectorStore(ledger.db, 'default', 'http'),
      ...connectorPauses(ledger.db, 'default', 'http'),
      registerSecret: () => undefined,
      retry: { minTimeoutMs: 1, maxTimeoutMs: 5, maxRetryAfterMs: 2_000, retries: 2 },
    }) as HttpConnector & ConnectorInstance;
  const item = (id: string, chatN = 1, created = 1_700_000_000): DeliveryItem => ({ conversation: { id: chat(chatN).chatId }, chat: chat(chatN), message: message(id, chat(chatN).chatId, created) });

  beforeEach(async () => {
    rx = new SandboxReceiver();
    await rx.start();
    ledger = await openTestLedger();
  });
  afterEach(async () => {
    await ledger.close();
    await rx.stop();
  });

  it('one signed message.created event per message, with the exact body of design.md §8.2', async () => {
    const res = await make().deliver([item('m1')]);
    expect(res).toEqual([{ ok: true, value: { remoteId: expect.stringMatching(/^msg_[A-Za-z0-9_-]{32}$/) } }]);
    expect(rx.events).toHaveLength(1);
    const ev = rx.events[0]!;
    expect(ev.id).toBe((res[0] as { value: { remoteId: string } }).value.remoteId);
    expect(ev.body).toEqual({
      type: 'message.created',
      timestamp: '2023-11-14T22:13:20.000Z',
      data: {
        account_id: 'default',
        chat: { id: 'u2i-contract-1', type: 'u2i', url: 'https://www.avito.ru/profile/messenger/channel/u2i-contract-1', item: { id: '1001', title: 'Item 1', url: 'https://www.avito.ru/item_1', price: '1 000 ₽' }, buyer: { id: '5001', name: 'Buyer 1' } },
        message: { id: 'm1', created: 1_700_000_000, type: 'text', author: { kind: 'buyer', name: 'Buyer' }, text: 'text of m1', content: { text: 'text of m1' } },
      },
    });
  });

  it('5xx, 429 with Retry-After, dropped connections and timeouts are retried with the same webhook-id', async () => {
    const c = make({ timeoutSeconds: 1 });
    rx.inject({ kind: '503', times: 1 });
    rx.inject({ kind: '429', times: 1, retryAfter: 1 });
    expect((await c.deliver([item('a')]))[0]!.ok).toBe(true);
    rx.inject({ kind: 'hangup', times: 1 });
    rx.inject({ kind: 'hang', times: 1 });
    expect((await c.deliver([item('b')]))[0]!.ok).toBe(true);
    const byId = (n: number) => rx.attempts.filter((a) => a.id === rx.events[n]!.id).map((a) => a.status);
    expect(byId(0)).toEqual([503, 429, 200]);
    expect(byId(1)).toEqual([0, 0, 200]);
    expect(rx.messageIds()).toEqual(['a', 'b']);
  });

  it('a failure still failing after the retries is transient for the dispatcher, and holds the rest of its chat', async () => {
    rx.inject({ kind: '500', times: 3 });
    const res = await make().deliver([item('x1', 1), item('y1', 2), item('x2', 1)]);
    expect(res.map((r) => r.ok)).toEqual([false, true, false]);
    expect(classifyFailure((res[0] as { error: unknown }).error)).toBe('transient');
    expect(rx.messageIds()).toEqual(['y1']); // x2 waits for x1: each chat in order
  });

  it('other 4xx dead-letter the event (permanent)', async () => {
    rx.inject({ kind: '400', times: 1 });
    const [r] = await make().deliver([item('bad')]);
    expect(classifyFailure((r as { error: unknown }).error)).toBe('permanent');
    expect(rx.attempts).toHaveLength(1); // not retried
  });

  it('410 pauses the account indefinitely and stops the run; a new URL lifts it', async () => {
    rx.inject({ kind: '410', times: 1 });
    const c = make();
    const err = await c.deliver([item('g1'), item('g2')]).then(() => undefined, (e: unknown) => e);
    expect(classifyFailure(err)).toBe('halt');
    const p = await pausedState(ledger.db, 'default', 'http');
    expect(p?.reason).toMatch(/410 Gone/);
    expect(p!.until).toBeGreaterThan(Date.now() + 100 * 365 * 86_400_000);
    expect(rx.attempts).toHaveLength(1);
    // The operator points the connector at another receiver: the pause is lifted at start.
    const other = new SandboxReceiver(rx.secret);
    await other.start();
    try {
      const moved = make({ url: other.url });
      expect((await moved.deliver([item('g1')]))[0]!.ok).toBe(true);
      expect(await pausedState(ledger.db, 'default', 'http')).toBeUndefined();
    } finally {
      await other.stop();
    }
  });

  it('a receiver that refuses the signature stops the run (wrong secret), and checkAccess says so', async () => {
    const wrong = make({ secret: `whsec_${Buffer.alloc(32, 1).toString('base64')}` });
    expect(classifyFailure(await wrong.deliver([item('s')]).then(() => undefined, (e: unknown) => e))).toBe('halt');
    const checks = await wrong.checkAccess();
    expect(checks.find((x) => x.verdict === 'fail')?.action).toMatch(/key/);
    expect((await make().checkAccess()).filter((x) => x.verdict === 'fail')).toEqual([]);
  });

  it('a message sent again carries the same webhook-id; the receiver keeps it once', async () => {
    const [a] = await make().deliver([item('again')]);
    const [b] = await make().deliver([item('again')]);
    expect(b).toEqual(a);
    expect(rx.messageIds()).toEqual(['again']);
    expect(rx.attempts.map((x) => x.status)).toEqual([200, 200]);
  });

  it('reply outcomes go out as reply.sent / reply.failed with data.reply_id, without the text', async () => {
    await make().reportReplies([
      { conversation: { id: 'chat-1' }, remoteId: 'r1', outcome: { sent: true, parts: 2 } },
      { conversation: { id: 'chat-1' }, remoteId: 'r2', outcome: { sent: false, reason: 'the chat is closed on Avito' } },
    ]);
    expect(rx.events.map((e) => [e.type, e.body.data])).toEqual([
      ['reply.sent', { account_id: 'default', chat_id: 'chat-1', reply_id: 'r1', parts: 2 }],
      ['reply.failed', { account_id: 'default', chat_id: 'chat-1', reply_id: 'r2', reason: 'the chat is closed on Avito' }],
    ]);
  });

  it('incoming replies: signed reply.created is accepted; every bad case of §8.2 is refused', async () => {
    const c = make();
    const req = (r: { headers: Record<string, string>; body: string }): WebhookRequest => ({ body: Buffer.from(r.body), headers: r.headers, contentType: 'application/json' });
    const good = rx.signedReply({ reply_id: 'R-1', chat_id: 'u2i-1', text: 'Да, в наличии', images: ['https://cdn.example.com/p/photo.png'] });
    const v = await c.webhook(req(good));
    expect(v).toEqual({ accepted: true, replies: [{ remoteId: 'R-1', conversationId: '', chatId: 'u2i-1', text: 'Да, в наличии', attachments: [{ url: 'https://cdn.example.com/p/photo.png', name: 'photo.png', mime: 'image/png' }], createdAt: expect.any(Number) }] });
    const now = Math.floor(Date.now() / 1000);
    const bad: [string, WebhookRequest, number][] = [
      ['no signature', { ...req(good), headers: { 'content-type': 'application/json' } }, 401],
      ['another secret', req(rx.signedReply({ reply_id: 'R-2', chat_id: 'u2i-1', text: 'x' }, { secret: `whsec_${Buffer.alloc(32, 9).toString('base64')}` })), 401],
      ['6 minutes old', req(rx.signedReply({ reply_id: 'R-3', chat_id: 'u2i-1', text: 'x' }, { timestamp: now - 360 })), 401],
      ['6 minutes ahead', req(rx.signedReply({ reply_id: 'R-4', chat_id: 'u2i-1', text: 'x' }, { timestamp: now + 360 })), 401],
      ['body changed after signing', { ...req(good), body: Buffer.from(good.body.replace('Да', 'Нет')) }, 401],
      ['not JSON', req({ headers: { ...good.headers, ...signedHeaders(secretKey(rx.secret), 'x1', now, 'nope') }, body: 'nope' }), 400],
      ['no chat_id', req(rx.signedReply({ reply_id: 'R-5', text: 'x' })), 400],
      ['nothing to send', req(rx.signedReply({ reply_id: 'R-6', chat_id: 'u2i-1', text: '  ' })), 400],
      ['an unsafe numeric reply_id', req(rx.signedReply({ reply_id: 2 ** 53 + 1, chat_id: 'u2i-1', text: 'x' })), 400],
      ['another account', req(rx.signedReply({ reply_id: 'R-7', account_id: 'other', chat_id: 'u2i-1', text: 'x' })), 422],
    ];
    for (const [what, r, status] of bad) expect(await c.webhook(r), what).toMatchObject({ accepted: false, status });
    expect(c.matchesWebhook(req(rx.signedReply({ reply_id: 'R-8', account_id: 'default', chat_id: 'c', text: 'x' })))).toBe(true);
    expect(c.matchesWebhook(req(good))).toBe(false);
  });
});
