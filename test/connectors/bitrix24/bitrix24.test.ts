import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectorInstance, ConversationRef, DeliveryItem } from '../../../src/connector-sdk/index.js';
import { LocalRequestGate, RemoteApiError } from '../../../src/connector-sdk/index.js';
import { connectorPauses, connectorStore, pausedState } from '../../../src/ledger/connector-state.js';
import type { Ledger } from '../../../src/ledger/database.js';
import { openTestLedger } from '../../dialects.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { chat, chatWithoutDetails, connectorContract, message } from '../../../src/connector-sdk/testing/index.js';
import type { B24Connector, B24Ref } from '../../../connectors/bitrix24/connector.js';
import { bitrix24 } from '../../../connectors/bitrix24/index.js';
import { markerOf } from '../../../connectors/bitrix24/mappers.js';
import { buildQuery, parseQuery } from '../../../connectors/bitrix24/query.js';
import { replyFromComment } from '../../../connectors/bitrix24/replies.js';
import { MANAGER_USER, SandboxB24, WEBHOOK_USER } from '../../../connectors/bitrix24/sandbox.js';

const FAST = { minTimeoutMs: 1, maxTimeoutMs: 5, maxRetryAfterMs: 50, retries: 2 };

connectorContract<SandboxB24>({
  definition: bitrix24,
  startFake: async () => {
    const f = new SandboxB24();
    await f.start();
    return f;
  },
  stopFake: (f) => f.stop(),
  config: (f, credentials) => ({ webhookUrl: credentials === 'good' ? f.webhookUrl : f.webhookUrl.replace(f.code, 'wrongcode0000'), applicationToken: f.applicationToken }),
  conversationCount: (f) => f.leads.size,
  conversationTitle: (f, conv) => {
    const row = f.leads.get(Number(conv.id));
    return typeof row?.TITLE === 'string' ? row.TITLE : undefined;
  },
  deliveredIds: (f, conv) => f.entityComments('lead', Number(conv.id)).map((c) => markerOf(String(c.COMMENT))!).filter(Boolean),
  clearFaults: (f) => f.clearFaults(),
  inject: (f, fault, times) => f.inject({ method: '*', kind: ({ rate_limited: '503', server_error: '500', bad_request: '400', unauthorized: '401' } as const)[fault], times }),
  replies: {
    write: async (f, conv, text) => void f.managerComment('lead', Number(conv.id), `/avito ${text}`),
    writeInternal: async (f, conv, text) => void f.managerComment('lead', Number(conv.id), text),
    outcomes: (f, conv) => f.entityComments('lead', Number(conv.id)).map((c) => String(c.COMMENT)).filter((t) => /^(Ответ|Reply)/.test(t)),
  },
  webhooks: {
    request: async (f, conv, text) => {
      const id = f.managerComment('lead', Number(conv.id), `/avito ${text}`);
      const body = new URLSearchParams({ event: 'ONCRMTIMELINECOMMENTADD', 'data[FIELDS][ID]': String(id), 'auth[domain]': f.domain, 'auth[application_token]': f.applicationToken }).toString();
      return { body: Buffer.from(body), headers: { 'content-type': 'application/x-www-form-urlencoded' }, contentType: 'application/x-www-form-urlencoded' };
    },
    signed: false,
    forgeries: (f, genuine) => [{ ...genuine, body: Buffer.from(genuine.body.toString().replace(f.applicationToken, 'forged-token')) }],
  },
});

describe('Bitrix24 replies', () => {
  it('invariant 8: a comment with a link that is not valid percent-encoding (sale-100%.jpg) is a reply, not a throw', () => {
    const c = { ID: 7, ENTITY_ID: 5, ENTITY_TYPE: 'lead', AUTHOR_ID: MANAGER_USER, CREATED: '2026-12-02T10:00:00+03:00', COMMENT: '/avito Скидка!\nhttps://example.com/sale-100%.jpg' };
    expect(replyFromComment(c as Parameters<typeof replyFromComment>[0], '/avito', 'lead')).toEqual({
      remoteId: '7', conversationId: '5', text: 'Скидка!', attachments: [{ url: 'https://example.com/sale-100%.jpg', name: 'sale-100%.jpg', mime: 'image/jpeg' }], createdAt: 1_796_194_800,
    });
  });
});

describe('Bitrix24 connector', () => {
  let fake: SandboxB24;
  let ledger: Ledger;
  const make = (extra: Record<string, unknown> = {}, retry: Record<string, number> = FAST) =>
    bitrix24.create({
      accountId: 'default',
      config: bitrix24.configSchema.parse({ webhookUrl: fake.webhookUrl, applicationToken: fake.applicationToken, ...extra }),
      log: memoryLogger('warn').logger,
      store: connectorStore(ledger.db, 'default', 'bitrix24'),
      ...connectorPauses(ledger.db, 'default', 'bitrix24'),
      registerSecret: () => undefined,
      requestGate: (o) => new LocalRequestGate(o.intervalMs, o.burst),
      retry,
    }) as B24Connector & ConnectorInstance;
  const conv = async (c: ConnectorInstance, info = chat(1)) => {
    const [r] = await c.ensureConversations([{ chat: info, previous: undefined, buyerWrote: true }]);
    if (!r?.ok) throw (r as { error: unknown }).error;
    return r.value as B24Ref;
  };
  const items = (ref: ConversationRef, n: number, prefix = 'm', which = 1): DeliveryItem[] =>
    Array.from({ length: n }, (_, i) => ({ conversation: ref, chat: chat(which), message: message(`${prefix}${i}`, chat(which).chatId, 1_700_000_000 + i) }));

  beforeEach(async () => {
    fake = new SandboxB24();
    await fake.start();
    ledger = await openTestLedger();
  });
  afterEach(async () => {
    await ledger.close();
    await fake.stop();
  });

  it('PHP-style queries: batch commands are encoded as Bitrix24 reads them', () => {
    const q = buildQuery({ fields: { TITLE: 'Велосипед & шлем', WEB: [{ VALUE: 'https://x/y?a=1', VALUE_TYPE: 'OTHER' }], CONTACT_ID: '$result[c0]', SKIP: undefined } });
    expect(q).toContain('CONTACT_ID]=$result[c0]');
    expect(parseQuery(q)).toEqual({ fields: { TITLE: 'Велосипед & шлем', WEB: { 0: { VALUE: 'https://x/y?a=1', VALUE_TYPE: 'OTHER' } }, CONTACT_ID: '$result[c0]' } });
  });

  it('a lead per chat: title from the item, OPPORTUNITY/CURRENCY_ID, chat link, responsible user, ORIGINATOR_ID/ORIGIN_ID, a contact', async () => {
    const ref = await conv(make());
    const lead = fake.leads.get(ref.entityId)!;
    expect(lead).toMatchObject({ TITLE: 'Item 1', OPPORTUNITY: '1000', CURRENCY_ID: 'RUB', ASSIGNED_BY_ID: WEBHOOK_USER, ORIGINATOR_ID: 'avito', ORIGIN_ID: chat(1).chatId, SOURCE_DESCRIPTION: `Avito: ${chat(1).chatUrl}` });
    expect(String(lead.COMMENTS)).toContain(chat(1).chatUrl);
    expect(fake.contacts.get(ref.contactId!)).toMatchObject({ NAME: 'Buyer 1', ORIGINATOR_ID: 'avito', ORIGIN_ID: 'buyer:5001' });
    expect(lead.CONTACT_ID).toBe(ref.contactId);
  });

  it("updateConversations: a deal's placeholder TITLE becomes the item's (crm.deal.update), a manager's title stays, a deleted deal has nothing left to name", async () => {
    const c = make({ entity: 'deal' });
    const refs = await Promise.all([1, 2, 3].map((n) => conv(c, chatWithoutDetails(n))));
    expect(fake.deals.get(refs[0]!.entityId)!.TITLE).toBe(`Чат на Авито: ${chat(1).chatId}`);
    fake.deals.get(refs[1]!.entityId)!.TITLE = 'Диван для Ивана';
    fake.deals.delete(refs[2]!.entityId);
    const out = await c.updateConversations!(refs.map((ref, i) => ({ conversation: ref, chat: chat(i + 1) })));
    expect(out.map((r) => r.ok)).toEqual([true, true, true]);
    expect([fake.deals.get(refs[0]!.entityId)!.TITLE, fake.deals.get(refs[1]!.entityId)!.TITLE]).toEqual(['Item 1', 'Диван для Ивана']);
    const updates = fake.commands.filter((x) => x.method === 'crm.deal.update');
    expect(updates).toEqual([{ method: 'crm.deal.update', ok: true }]);
    await c.updateConversations!([{ conversation: refs[0]!, chat: chat(1) }]); // a repeat changes nothing
    expect(fake.commands.filter((x) => x.method === 'crm.deal.update')).toHaveLength(1);
  });

  it('deals instead of leads, assigned to BITRIX24_RESPONSIBLE_ID', async () => {
    const ref = await conv(make({ entity: 'deal', responsibleId: MANAGER_USER, categoryId: 3 }));
    expect(ref.entity).toBe('deal');
    expect(fake.leads.size).toBe(0);
    expect(fake.deals.get(ref.entityId)).toMatchObject({ TITLE: 'Item 1', ASSIGNED_BY_ID: MANAGER_USER, CATEGORY_ID: 3, ORIGIN_ID: chat(1).chatId });
    const c = make({ entity: 'deal' });
    await c.deliver(items(ref, 2));
    expect(fake.entityComments('deal', ref.entityId)).toHaveLength(2);
  });

  it('one contact per buyer across chats and calls; contacts and leads created in one batch request', async () => {
    const c = make();
    const res = await c.ensureConversations([chat(1, 9), chat(2, 9), chat(3, 8)].map((x) => ({ chat: x, previous: undefined, buyerWrote: true })));
    const refs = res.map((r) => (r as { ok: true; value: B24Ref }).value);
    expect(refs[0]!.contactId).toBe(refs[1]!.contactId);
    expect(refs[2]!.contactId).not.toBe(refs[0]!.contactId);
    expect(fake.requests.filter((r) => r.method === 'batch')).toHaveLength(1);
    const later = await conv(c, chat(4, 9));
    expect(later.contactId).toBe(refs[0]!.contactId);
    expect(fake.contacts.size).toBe(2);
  });

  it('found again by ORIGINATOR_ID/ORIGIN_ID after a crash; a junk or converted lead that hears from the buyer again gets a new one', async () => {
    const c = make();
    const ref = await conv(c);
    // The ledger lost the result (crash): found again, not created twice.
    expect((await conv(make())).entityId).toBe(ref.entityId);
    fake.leads.get(ref.entityId)!.STATUS_SEMANTIC_ID = 'F';
    const [seller] = await c.ensureConversations([{ chat: chat(1), previous: ref, buyerWrote: false }]);
    expect((seller as { ok: true; value: B24Ref }).value.entityId).toBe(ref.entityId);
    const [buyer] = await c.ensureConversations([{ chat: chat(1), previous: ref, buyerWrote: true }]);
    const next = (buyer as { ok: true; value: B24Ref }).value;
    expect(next.entityId).not.toBe(ref.entityId);
    expect(next.contactId).toBe(ref.contactId);
    // Asked again (the ledger lost that too): the new open lead, not a third one.
    const [again] = await c.ensureConversations([{ chat: chat(1), previous: ref, buyerWrote: true }]);
    expect((again as { ok: true; value: B24Ref }).value.entityId).toBe(next.entityId);
    expect(fake.leads.size).toBe(2);
  });

  it('a won deal that hears from the buyer again gets a new deal', async () => {
    const c = make({ entity: 'deal' });
    const ref = await conv(c);
    Object.assign(fake.deals.get(ref.entityId)!, { STAGE_SEMANTIC_ID: 'S', CLOSED: 'Y' });
    const [r] = await c.ensureConversations([{ chat: chat(1), previous: ref, buyerWrote: true }]);
    expect((r as { ok: true; value: B24Ref }).value.entityId).not.toBe(ref.entityId);
    expect(fake.deals.size).toBe(2);
  });

  it('comments say who wrote what, media as links, the chat on the first one, and carry the marker', async () => {
    const c = make();
    const ref = await conv(c);
    const base = { chatId: chat(1).chatId, created: 1_700_000_000, first: false, voiceUrl: null, text: null };
    const msgs = [
      { ...message('t1', chat(1).chatId, 1_700_000_000, 'Здравствуйте'), first: true },
      { ...base, messageId: 'i1', type: 'image', author: { kind: 'buyer' as const, name: 'Ivan' }, content: { image: { sizes: { '140x105': 'https://img/small', '1280x960': 'https://img/large' } } } },
      { ...base, messageId: 'v1', type: 'voice', author: { kind: 'buyer' as const, name: 'Ivan' }, content: { voice: { voice_id: 'v' } }, voiceUrl: 'https://sync.example.com/files/voice/default/v?sig=x' },
      { ...base, messageId: 'it1', type: 'item', author: { kind: 'seller' as const }, content: { item: { title: 'Bike', price_string: '5 000 ₽', item_url: 'https://avito.ru/bike' } } },
      { ...base, messageId: 's1', type: 'system', text: 'Скидка 10%', author: { kind: 'bot' as const, name: 'Avito: offer', flowId: 'x' }, content: { flow_id: 'x' } },
    ];
    const res = await c.deliver(msgs.map((m) => ({ conversation: ref, chat: chat(1), message: m })));
    expect(res.every((r) => r.ok)).toBe(true);
    const texts = fake.entityComments('lead', ref.entityId).map((x) => String(x.COMMENT));
    expect(texts[0]).toMatch(/^Новый чат на Авито: «Item 1», 1 000 ₽\nОбъявление: https:\/\/www.avito.ru\/item_1\nЧат: https:\/\/www.avito.ru\/profile\/messenger\/channel\/u2i-contract-1/);
    expect(texts[0]).toMatch(/Покупатель Buyer · 15\.11\.2023, 01:13\nЗдравствуйте\n#avito:t1$/);
    expect(texts[1]).toContain('[Изображение] https://img/large');
    expect(texts[2]).toContain('[Голосовое сообщение] https://sync.example.com/files/voice/default/v?sig=x');
    expect(texts[3]).toMatch(/^Продавец \(приложение Авито\)/);
    expect(texts[4]).toMatch(/^Чат-бот: Avito: offer/);
    expect(res.map((r) => (r as { ok: true; value: { remoteId: string } }).value.remoteId)).toEqual(fake.entityComments('lead', ref.entityId).map((x) => String(x.ID)));
  });

  it('batch use: 120 comments go in 3 requests of at most 50 commands, in order', async () => {
    const c = make();
    const ref = await conv(c);
    const before = fake.requests.length;
    await c.deliver(items(ref, 120));
    const used = fake.requests.slice(before);
    expect(used.map((r) => r.commands)).toEqual([50, 50, 20]);
    expect(fake.entityComments('lead', ref.entityId).map((x) => markerOf(String(x.COMMENT)))).toEqual(Array.from({ length: 120 }, (_, i) => `m${i}`));
    expect(fake.count(400, 'ERROR_BATCH_LENGTH_EXCEEDED')).toBe(0);
  });

  it('the sandbox refuses a batch of 51 commands and a nested batch', async () => {
    const c = make();
    const cmds = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, { method: 'scope' }]));
    await expect(c.client.batch({ ...cmds, k50: { method: 'scope' } })).rejects.toThrow(/at most 50/);
    const res = await fetch(`${fake.webhookUrl}batch.json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cmd: { ...Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'scope'])) } }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'ERROR_BATCH_LENGTH_EXCEEDED' });
    const nested = await fetch(`${fake.webhookUrl}batch.json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cmd: { a: 'batch?cmd[b]=scope' } }) });
    expect(nested.status).toBe(405);
  });

  it('503 QUERY_LIMIT_EXCEEDED backs off and retries: 0 lost, 0 twice', async () => {
    const c = make();
    const ref = await conv(c);
    fake.inject({ method: 'crm.timeline.comment.add', kind: '503', times: 2 });
    const res = await c.deliver(items(ref, 60));
    expect(res.every((r) => r.ok)).toBe(true);
    expect(fake.count(503, 'QUERY_LIMIT_EXCEEDED')).toBe(2);
    const ids = fake.entityComments('lead', ref.entityId).map((x) => markerOf(String(x.COMMENT)));
    expect(ids).toEqual(Array.from({ length: 60 }, (_, i) => `m${i}`));
  });

  it('the leaky bucket: a burst past the portal\'s bucket is held back, not refused', async () => {
    await fake.stop();
    fake = new SandboxB24({ bucketSize: 5, drainPerSecond: 20 });
    await fake.start();
    const c = make({ burst: 5, requestsPerSecond: 5 }, { ...FAST, retries: 0 });
    for (let i = 0; i < 12; i++) await c.client.call({ method: 'scope' }, (await import('zod')).z.array((await import('zod')).z.string()));
    expect(fake.count(503)).toBe(0);
    expect(fake.count(200)).toBe(12);
  });

  it('OVERLOAD_LIMIT pauses the account: traffic stops within 5 calls, status says why and until when, a restart stays paused', async () => {
    const c = make();
    const ref = await conv(c);
    fake.overloaded = true;
    const before = fake.requests.length;
    const errors: unknown[] = [];
    for (let i = 0; i < 10; i++) errors.push(await c.deliver(items(ref, 3, `o${i}-`)).catch((e: unknown) => e));
    expect(fake.requests.length - before).toBeLessThanOrEqual(5);
    expect(fake.requests.length - before).toBe(1);
    expect(errors.every((e) => e instanceof RemoteApiError && e.kind === 'banned')).toBe(true);
    const paused = await pausedState(ledger.db, 'default', 'bitrix24');
    expect(paused?.reason).toMatch(/OVERLOAD_LIMIT/);
    expect(paused!.until).toBeGreaterThan(Date.now() + 59 * 60_000);
    const checks = await make().checkAccess();
    expect(checks[0]).toMatchObject({ verdict: 'fail' });
    expect(fake.requests.length - before).toBe(1);
  });

  it('expired_token, NO_AUTH_FOUND and missing scopes are explained', async () => {
    const c = make({ webhookUrl: fake.webhookUrl.replace(fake.code, 'nope') });
    const err = (await c.client.call({ method: 'scope' }, (await import('zod')).z.unknown()).catch((e: unknown) => e)) as RemoteApiError;
    expect(err.kind).toBe('bad_credentials');
    expect(err.message).toMatch(/NO_AUTH_FOUND.*BITRIX24_WEBHOOK_URL/s);
    const { classify, B24_HINTS } = await import('../../../connectors/bitrix24/client.js');
    expect(classify(401, 'expired_token')).toBe('token_expired');
    expect(B24_HINTS.token_expired).toMatch(/expir/);
    expect(classify(403, 'INVALID_CREDENTIALS')).toBe('forbidden');
    expect(classify(403, 'ACCESS_DENIED')).toBe('tariff');
    await fake.stop();
    fake = new SandboxB24({ scopes: ['crm'] });
    await fake.start();
    const checks = await make({ responsibleId: 3 }).checkAccess();
    expect(checks.find((x) => x.check === 'Bitrix24 scopes')).toMatchObject({ verdict: 'fail', detail: expect.stringMatching(/user/) });
    expect(checks.find((x) => x.check === 'Bitrix24 responsible user')).toMatchObject({ verdict: 'fail', detail: expect.stringMatching(/not active/) });
  });

  it('checkAccess: webhook, scopes, responsible user, CRM mode, events, in one request', async () => {
    const checks = await make().checkAccess();
    expect(checks.map((x) => [x.check, x.verdict])).toEqual([
      ['Bitrix24 webhook', 'ok'], ['Bitrix24 scopes', 'ok'], ['Bitrix24 responsible user', 'ok'], ['Bitrix24 CRM mode', 'ok'], ['Bitrix24 events', 'ok'],
    ]);
    expect(fake.requests).toHaveLength(1);
    const noToken = await make({ applicationToken: undefined }).checkAccess();
    expect(noToken.find((x) => x.check === 'Bitrix24 events')?.verdict).toBe('warn');
  });

  it('findDelivered reads every page of a long timeline', async () => {
    const c = make();
    const ref = await conv(c);
    await c.deliver(items(ref, 130));
    const found = await c.findDelivered(items(ref, 131));
    expect(found.size).toBe(130);
    expect(found.has('m130')).toBe(false);
  });
});
