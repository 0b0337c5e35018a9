import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectorInstance, ConversationRef, RemoteApiError } from '../../src/connector-sdk/index.js';
import { chat, chatWithoutDetails, connectorContract, createTestBench, message, type TestBench } from '../../src/connector-sdk/testing/index.js';
import type { AmoConnector, AmoRef } from './connector.js';
import { amocrm } from './index.js';
import { markerOf } from './mappers.js';
import { SandboxAmo, FIRST_OPEN_STATUS, MAIN_PIPELINE } from './sandbox.js';

/** Texts of the service notes the connector wrote itself (not message notes, which carry a marker). */
const serviceTexts = (f: SandboxAmo, conv: ConversationRef) => f.leadNotes((conv as AmoRef).leadId, 'service_message').map((n) => String(n.params.text)).filter((t) => !markerOf(t));

connectorContract<SandboxAmo>({
  definition: amocrm,
  startFake: async () => {
    const f = new SandboxAmo();
    await f.start();
    return f;
  },
  stopFake: (f) => f.stop(),
  config: (f, credentials) => ({ baseUrl: f.url, accessToken: credentials === 'good' ? f.token : 'wrong-token-value' }),
  conversationCount: (f) => f.leads.size,
  conversationTitle: (f, conv) => f.leads.get((conv as AmoRef).leadId)?.name,
  deliveredIds: (f, conv) => f.leadNotes((conv as AmoRef).leadId, 'service_message').map((n) => markerOf(String(n.params.text))!).filter(Boolean),
  clearFaults: (f) => f.clearFaults(),
  inject: (f, fault, times) => f.inject({ path: '*', kind: ({ rate_limited: '429', server_error: '500', bad_request: '400', unauthorized: '401' } as const)[fault], times }),
  replies: {
    write: async (f, conv, text) => void f.managerNote((conv as AmoRef).leadId, `/avito ${text}`),
    writeInternal: async (f, conv, text) => void f.managerNote((conv as AmoRef).leadId, text),
    outcomes: (f, conv) => serviceTexts(f, conv).filter((t) => /^(Ответ|Reply)/.test(t)),
  },
  webhooks: {
    // amoCRM signs nothing (the secret in the URL authenticates it): a note_lead form as amoCRM sends it.
    request: async (f, conv, text) => {
      const note = f.managerNote((conv as AmoRef).leadId, `/avito ${text}`);
      const body = new URLSearchParams({ 'leads[note][0][note][id]': String(note.id), 'leads[note][0][note][note_type]': '4', 'leads[note][0][note][text]': `/avito ${text}`, 'account[id]': '31000000', 'account[subdomain]': 'fakeshop' }).toString();
      return { body: Buffer.from(body), headers: { 'content-type': 'application/x-www-form-urlencoded' }, contentType: 'application/x-www-form-urlencoded' };
    },
    signed: false,
  },
  actions: {
    request: async (f, conv) => f.tagLead((conv as AmoRef).leadId, 'avito-blacklist'),
    reports: (f, conv) => serviceTexts(f, conv).filter((t) => /чёрный список|blacklist/i.test(t)),
  },
});

describe('amoCRM connector', () => {
  let fake: SandboxAmo;
  let bench: TestBench;
  const make = (extra: Record<string, unknown> = {}) =>
    amocrm.create(bench.context(amocrm, { baseUrl: fake.url, accessToken: fake.token, ...extra })) as AmoConnector & ConnectorInstance;
  const conv = async (c: ConnectorInstance, info = chat(1)) => {
    const [r] = await c.ensureConversations([{ chat: info, previous: undefined, buyerWrote: true }]);
    if (!r?.ok) throw (r as { error: unknown }).error;
    return r.value as AmoRef;
  };

  beforeEach(async () => {
    fake = new SandboxAmo();
    await fake.start();
    bench = await createTestBench();
  });
  afterEach(async () => {
    await bench.close();
    await fake.stop();
  });

  it('a lead per chat named after the item, with price, tag, chat field, pipeline and first open status', async () => {
    const ref = await conv(make());
    const lead = fake.leads.get(ref.leadId)!;
    expect(lead).toMatchObject({ name: 'Item 1', price: 1000, pipeline_id: MAIN_PIPELINE, status_id: FIRST_OPEN_STATUS, tags: ['avito'] });
    expect(lead.custom_fields_values?.[0]?.values[0]?.value).toBe(chat(1).chatId);
    expect(fake.contacts.get(ref.contactId!)?.name).toBe('Buyer 1');
  });

  it('configured pipeline, status and responsible user are used', async () => {
    const ref = await conv(make({ pipelineId: 2000, statusId: 2001, responsibleUserId: 2 }));
    expect(fake.leads.get(ref.leadId)).toMatchObject({ pipeline_id: 2000, status_id: 2001, responsible_user_id: 2 });
  });

  it('one contact per buyer, reused across chats and calls', async () => {
    const c = make();
    const res = await c.ensureConversations([chat(1, 9), chat(2, 9), chat(3, 8)].map((x) => ({ chat: x, previous: undefined, buyerWrote: true })));
    const refs = res.map((r) => (r as { ok: true; value: AmoRef }).value);
    expect(refs[0]!.contactId).toBe(refs[1]!.contactId);
    expect(refs[2]!.contactId).not.toBe(refs[0]!.contactId);
    const later = await conv(c, chat(4, 9));
    expect(later.contactId).toBe(refs[0]!.contactId);
    expect(fake.contacts.size).toBe(2);
    expect(fake.count('/api/v4/leads/complex')).toBe(1);
  });

  it('a u2u chat is named after the buyer', async () => {
    const ref = await conv(make(), { ...chat(5), chatType: 'u2u', item: { id: null, title: null, url: null, price: null } });
    expect(fake.leads.get(ref.leadId)!.name).toBe('Чат на Авито: Buyer 5');
  });

  it("updateConversations: what a manager renamed before the chat's details came stays; the placeholder names go, in one PATCH each for many leads", async () => {
    const c = make();
    const res = await c.ensureConversations([1, 2, 3].map((n) => ({ chat: chatWithoutDetails(n), previous: undefined, buyerWrote: true })));
    const refs = res.map((r) => (r as { ok: true; value: AmoRef }).value);
    expect(fake.leads.get(refs[0]!.leadId)!.name).toBe(`Чат на Авито: ${chat(1).chatId}`);
    fake.leads.get(refs[1]!.leadId)!.name = 'Диван для Ивана'; // a manager was quicker
    fake.contacts.get(refs[2]!.contactId!)!.name = 'Иван Петров';
    const out = await c.updateConversations!(refs.map((ref, i) => ({ conversation: ref, chat: chat(i + 1) })));
    expect(out.every((r) => r.ok)).toBe(true);
    expect(refs.map((r) => fake.leads.get(r.leadId)!.name)).toEqual(['Item 1', 'Диван для Ивана', 'Item 3']);
    expect(fake.leads.get(refs[0]!.leadId)!.price).toBe(1000);
    expect(refs.map((r) => fake.contacts.get(r.contactId!)!.name)).toEqual(['Buyer 1', 'Buyer 2', 'Иван Петров']);
    expect([fake.count('/api/v4/leads', 'PATCH'), fake.count('/api/v4/contacts', 'PATCH')]).toEqual([1, 1]);
    // The buyer's contact is theirs from now on: their next chat reuses it.
    expect((await conv(c, chat(7, 1))).contactId).toBe(refs[0]!.contactId);
  });

  it('updateConversations: a lead deleted meanwhile has nothing left to name; a PATCH refused fails only the items it carried', async () => {
    const c = make();
    const res = await c.ensureConversations([1, 2].map((n) => ({ chat: chatWithoutDetails(n), previous: undefined, buyerWrote: true })));
    const refs = res.map((r) => (r as { ok: true; value: AmoRef }).value);
    fake.leads.delete(refs[0]!.leadId);
    fake.inject({ path: '/api/v4/contacts', method: 'PATCH', kind: '400', times: 1 });
    const out = await c.updateConversations!(refs.map((ref, i) => ({ conversation: ref, chat: chat(i + 1) })));
    expect(out[0]).toEqual({ ok: true, value: undefined });
    expect(out[1]!.ok).toBe(false);
    expect((out[1] as { error: RemoteApiError }).error.transient).toBe(false);
    expect(fake.leads.get(refs[1]!.leadId)!.name).toBe('Item 2'); // the lead's PATCH went through
  });

  it('chats mode keeps updateConversations on: its leads and the contacts amojo made are named too (test/connectors/amocrm/chats.test.ts)', () => {
    const chats = make({ mode: 'chats', channelId: 'ch', channelSecret: 'secret', amojoUrl: fake.url });
    expect(chats.limits?.updateConversations).not.toBe(false);
    expect(typeof chats.updateConversations).toBe('function');
  });

  it('a won or lost lead gets a new lead when the buyer writes again; not for seller messages', async () => {
    const c = make();
    const ref = await conv(c);
    fake.leads.get(ref.leadId)!.status_id = 142;
    const [seller] = await c.ensureConversations([{ chat: chat(1), previous: ref, buyerWrote: false }]);
    expect((seller as { ok: true; value: AmoRef }).value.leadId).toBe(ref.leadId);
    const [buyer] = await c.ensureConversations([{ chat: chat(1), previous: ref, buyerWrote: true }]);
    const next = (buyer as { ok: true; value: AmoRef }).value;
    expect(next.leadId).not.toBe(ref.leadId);
    expect(next.contactId).toBe(ref.contactId);
    expect(fake.leads.get(next.leadId)!.contacts).toEqual([ref.contactId]);
  });

  it('leads/complex is called with at most 50 leads', async () => {
    const c = make();
    const res = await c.ensureConversations(Array.from({ length: 120 }, (_, i) => ({ chat: chat(100 + i), previous: undefined, buyerWrote: true })));
    expect(res.every((r) => r.ok)).toBe(true);
    expect(fake.count('/api/v4/leads/complex', 'POST', 200)).toBe(3);
    expect(fake.count('/api/v4/leads/complex', 'POST', 400)).toBe(0);
  });

  it('notes say who wrote what, with media as links, and carry the marker', async () => {
    const c = make();
    const ref = await conv(c);
    const base = { chatId: chat(1).chatId, created: 1_700_000_000, first: false, voiceUrl: null, text: null };
    const msgs = [
      { ...message('t1', chat(1).chatId, 1_700_000_000, 'Здравствуйте'), first: true },
      { ...base, messageId: 'i1', type: 'image', author: { kind: 'buyer' as const, name: 'Ivan' }, content: { image: { sizes: { '140x105': 'https://img/small', '1280x960': 'https://img/large' } } } },
      { ...base, messageId: 'v1', type: 'voice', author: { kind: 'buyer' as const, name: 'Ivan' }, content: { voice: { voice_id: 'v' } } },
      { ...base, messageId: 'v2', type: 'voice', author: { kind: 'buyer' as const, name: 'Ivan' }, content: { voice: { voice_id: 'v' } }, voiceUrl: 'https://sync.example.com/files/voice/default/v?sig=x' },
      { ...base, messageId: 'l1', type: 'location', author: { kind: 'buyer' as const, name: 'Ivan' }, content: { location: { lat: 55.75, lon: 37.61, text: 'Москва, Тверская' } } },
      { ...base, messageId: 'it1', type: 'item', author: { kind: 'seller' as const }, content: { item: { title: 'Bike', price_string: '5 000 ₽', item_url: 'https://avito.ru/bike' } } },
      { ...base, messageId: 'c1', type: 'call', author: { kind: 'buyer' as const, name: 'Ivan' }, content: { call: { status: 'missed' } } },
      { ...base, messageId: 'd1', type: 'deleted', author: { kind: 'buyer' as const, name: 'Ivan' }, content: {} },
      { ...base, messageId: 's1', type: 'system', text: 'Скидка 10%', author: { kind: 'bot' as const, name: 'Avito: personal offer from the seller', flowId: 'seller_audience_discount' }, content: { flow_id: 'seller_audience_discount' } },
      { ...base, messageId: 'f1', type: 'file', author: { kind: 'buyer' as const, name: 'Ivan' }, content: {} },
    ];
    const res = await c.deliver(msgs.map((m) => ({ conversation: ref, chat: chat(1), message: m })));
    expect(res.every((r) => r.ok)).toBe(true);
    const texts = fake.leadNotes(ref.leadId, 'service_message').map((n) => String(n.params.text));
    expect(texts[0]).toMatch(/^Новый чат на Авито: «Item 1», 1 000 ₽\nОбъявление: https:\/\/www.avito.ru\/item_1\nЧат: https:\/\/www.avito.ru\/profile\/messenger\/channel\/u2i-contract-1/);
    expect(texts[0]).toMatch(/Покупатель Buyer · 15\.11\.2023, 01:13\nЗдравствуйте\n#avito:t1$/);
    expect(texts[1]).toContain('[Изображение] https://img/large');
    expect(texts[2]).toContain('[Голосовое сообщение] (файл сохранён у avito-sync');
    expect(texts[3]).toContain('[Голосовое сообщение] https://sync.example.com/files/voice/default/v?sig=x');
    expect(texts[4]).toContain('[Геометка] Москва, Тверская https://yandex.ru/maps/?pt=37.61,55.75&z=16');
    expect(texts[5]).toMatch(/^Продавец \(приложение Авито\)/);
    expect(texts[5]).toContain('[Объявление] Bike · 5 000 ₽ · https://avito.ru/bike');
    expect(texts[6]).toContain('[Звонок] пропущен');
    expect(texts[7]).toContain('[Сообщение удалено]');
    expect(texts[8]).toMatch(/^Чат-бот: Avito: personal offer from the seller/);
    expect(texts[8]).toContain('Скидка 10%');
    expect(texts[9]).toContain('Сообщение типа file');
    const notes = fake.leadNotes(ref.leadId, 'service_message');
    expect(notes[0]!.created_at).toBe(1_700_000_000);
    expect(notes.every((n) => n.params.service === 'Avito')).toBe(true);
  });

  it('many notes per request, up to notesPerRequest', async () => {
    const c = make({ notesPerRequest: 100 });
    const ref = await conv(c);
    const items = Array.from({ length: 250 }, (_, i) => ({ conversation: ref as ConversationRef, chat: chat(1), message: message(`n${i}`, chat(1).chatId, 1_700_000_000 + i) }));
    await c.deliver(items);
    expect(fake.count('/api/v4/leads/notes', 'POST')).toBe(3);
    expect(fake.leadNotes(ref.leadId).length).toBe(250);
  });

  it('stays under 7 requests per second: a busy run meets no 429', async () => {
    const c = make();
    for (let i = 0; i < 12; i++) await conv(c, chat(200 + i, 200 + i));
    expect(fake.count('', undefined, 429)).toBe(0);
  });

  it('429 backs off and then succeeds', async () => {
    const c = make();
    await conv(c);
    fake.inject({ path: '/api/v4/leads/notes', kind: '429', times: 2 });
    const ref = await conv(c, chat(2));
    const [r] = await c.deliver([{ conversation: ref, chat: chat(2), message: message('after-429', chat(2).chatId, 1_700_000_000) }]);
    expect(r?.ok).toBe(true);
    expect(fake.count('/api/v4/leads/notes', 'POST', 429)).toBe(2);
  });

  it('a 403 ban (an HTML page) stops all traffic to the account and records why', async () => {
    const c = make();
    const ref = await conv(c);
    fake.banned = true;
    const err = (await c.deliver([{ conversation: ref, chat: chat(1), message: message('x', chat(1).chatId, 1) }]).catch((e: unknown) => e)) as RemoteApiError;
    expect(err.kind).toBe('banned');
    expect(err.message).toMatch(/blocked/);
    const before = fake.requests.length;
    const again = (await c.deliver([{ conversation: ref, chat: chat(1), message: message('y', chat(1).chatId, 1) }]).catch((e: unknown) => e)) as RemoteApiError;
    expect(again.kind).toBe('banned');
    expect(fake.requests.length).toBe(before); // no request went out
    const paused = await bench.context(amocrm, { baseUrl: fake.url, accessToken: fake.token }).paused();
    expect(paused?.reason).toMatch(/Доступ заблокирован/);
    // A new instance (a restart) stays paused too.
    const restarted = make();
    expect(((await restarted.checkAccess())[0])?.verdict).toBe('fail');
    expect(fake.requests.length).toBe(before);
  });

  it('problem+json errors are explained with their title and detail', async () => {
    const c = make({ pipelineId: 2000, statusId: 1002 });
    const err = (await c.ensureConversations([{ chat: chat(1), previous: undefined, buyerWrote: true }]).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/AMOCRM_STATUS_ID to one of: 2001 \(Новый\)/);
    const raw = await c.client.request({ method: 'POST', path: '/api/v4/leads', json: [{ name: 'x', price: -5 }], schema: (await import('zod')).z.unknown() }).catch((e: unknown) => e) as RemoteApiError;
    expect(raw.kind).toBe('bad_request');
    expect(raw.remoteMessage).toMatch(/Bad Request: price must be int32/);
  });

  it('204 No Content lists are empty lists', async () => {
    const c = make();
    const found = await c.findDelivered([{ conversation: await conv(c), chat: chat(1), message: message('none', chat(1).chatId, 1) }]);
    expect(found.size).toBe(0);
    expect(fake.count('/api/v4/leads/notes', 'GET', 204)).toBe(1);
  });

  it('OAuth: the authorization code is exchanged once; the rotating refresh token is saved before use', async () => {
    const code = fake.issueAuthCode();
    const cfg = { baseUrl: fake.url, clientId: fake.oauth.clientId, clientSecret: fake.oauth.clientSecret, redirectUri: fake.oauth.redirectUri, authCode: code };
    const mk = () => amocrm.create(bench.context(amocrm, cfg));
    const c = mk();
    await conv(c);
    const store = bench.context(amocrm, cfg).store;
    const firstRefresh = await store.get('oauth_refresh_token');
    expect(firstRefresh).toMatch(/^amo-refresh-/);
    fake.expireOAuthTokens();
    await conv(c, chat(2));
    const secondRefresh = await store.get('oauth_refresh_token');
    expect(secondRefresh).not.toBe(firstRefresh);
    // A restart reuses the saved tokens (the code was single-use and is not asked for again).
    fake.expireOAuthTokens();
    await conv(mk(), chat(3));
    expect(fake.count('/oauth2/access_token', 'POST', 200)).toBe(3);
  });

  it('without the right to add fields, leads are still created and access checks warn', async () => {
    await fake.stop();
    fake = new SandboxAmo({ canCreateFields: false });
    await fake.start();
    const c = make();
    const ref = await conv(c);
    expect(fake.leads.get(ref.leadId)!.custom_fields_values).toBeNull();
    const checks = await c.checkAccess();
    expect(checks.find((x) => x.check === 'amoCRM chat field')?.verdict).toBe('warn');
  });
});
