import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../../src/runtime.js';
import { syncOnce } from '../../../src/sync/sync-once.js';
import { collectStatus } from '../../../src/status/collect-status.js';
import { SandboxAmo } from '../../../connectors/amocrm/sandbox.js';
import { SandboxAvito, type FakeChat } from '../../../src/sandbox/sandbox-avito.js';
import { memoryLogger } from '../../../src/log/logger.js';
import { afterSigkill, fakeEnvWithAmo, impatientDispatcher, runCli, tempDir, testRuntime, waitFor } from '../../helpers.js';
import { startDaemon, type Daemon } from '../../../src/sync/daemon.js';
import type { DispatcherOptions } from '../../../src/sync/dispatcher.js';
import { countDetailUpdatesPending } from '../../../src/ledger/conversations.js';
import { freePort } from '../../../src/sandbox/net.js';
import { AmojoClient } from '../../../connectors/amocrm/chats/amojo-client.js';
import type { ChatsConnector } from '../../../connectors/amocrm/chats/connector.js';
import { MANAGER_AMOJO_ID, SandboxAmojo } from '../../../connectors/amocrm/chats/sandbox-amojo.js';
import { hookSignature, md5Hex, requestSignature, signRequest, verifyHookSignature } from '../../../connectors/amocrm/chats/signing.js';

/** The worked examples of amoCRM's chat-step-by-step page, byte for byte. */
const VECTOR_SECRET = 'f2d7f8704eff95087ed45b23ba99c0b5aac8278e';
const CHANNEL = '344a5002-f8ca-454d-af3d-396180102ac7';
const ACCOUNT = '52e591f7-c98f-4255-8495-827210138c81';

describe('amojo request signing (chat-step-by-step vectors)', () => {
  it('connect: Content-MD5 and X-Signature as published', () => {
    const body = JSON.stringify({ account_id: ACCOUNT, title: 'ChatsIntegration', hook_api_version: 'v2' });
    const h = signRequest({ secret: VECTOR_SECRET, method: 'POST', path: `/v2/origin/custom/${CHANNEL}/connect`, body, date: 'Wed, 15 Dec 2021 23:12:55 +0000' });
    expect(h['Content-MD5']).toBe('2fbcb3c652b61e24e004daddfc73d0ce');
    expect(h['X-Signature']).toBe('81211856ce0c5095f3e1a90c0a38dc9d736cfd55');
    expect(h['Content-Type']).toBe('application/json');
  });

  it('disconnect: DELETE with a body', () => {
    const body = JSON.stringify({ account_id: ACCOUNT });
    const h = signRequest({ secret: VECTOR_SECRET, method: 'DELETE', path: `/v2/origin/custom/${CHANNEL}/disconnect`, body, date: 'Wed, 15 Dec 2021 23:59:28 +0000' });
    expect(h['Content-MD5']).toBe('271fa2e4fb0ff84a3ef9689027bd1f38');
    expect(h['X-Signature']).toBe('e1678e3b6aa674b5127f4feb448e6200ce0bfc72');
  });

  it('typing: signs the /typing path (the reference page signs /connect by mistake)', () => {
    const scope = `${CHANNEL}_${ACCOUNT}`;
    const body = JSON.stringify({ conversation_id: 'my_int-d5a421f7f218', sender: { id: 'my_int-1376265f-86df-4c49-a0c3-a4816df41af8' } });
    const h = signRequest({ secret: VECTOR_SECRET, method: 'POST', path: `/v2/origin/custom/${scope}/typing`, body, date: 'Thu, 16 Dec 2021 16:01:21 +0000' });
    expect(h['Content-MD5']).toBe('255a22566d68be207fa36804e78a523a');
    expect(h['X-Signature']).toBe('e8263b1daf2b20396c02db6c8c846f95cc0f9540');
  });

  it('the delivery-status body the step-by-step really signed, and GET with an empty body and no query in the path', () => {
    expect(md5Hex('{"msgid":"079e44fb-fc22-476b-9e8a-421b688ec53b","delivery_status":2,"error_code":905,"error":"Error text"}')).toBe('a0bbbac729c6341f0a521e2db7a8a236');
    const get = signRequest({ secret: VECTOR_SECRET, method: 'get', path: '/v2/origin/custom/s/chats/c/history?offset=0&limit=50', body: '', date: 'Thu, 16 Dec 2021 16:01:21 +0000' });
    expect(get['Content-MD5']).toBe('d41d8cd98f00b204e9800998ecf8427e');
    expect(get['X-Signature']).toBe(requestSignature(VECTOR_SECRET, 'GET', 'd41d8cd98f00b204e9800998ecf8427e', 'application/json', 'Thu, 16 Dec 2021 16:01:21 +0000', '/v2/origin/custom/s/chats/c/history'));
  });

  it('hooks: hex HMAC-SHA1 of the raw body, with or without a trailing newline; anything else refused', () => {
    const body = Buffer.from('{"account_id":"x","message":{}}');
    const sig = hookSignature(VECTOR_SECRET, body);
    expect(verifyHookSignature(VECTOR_SECRET, body, sig)).toBe(true);
    expect(verifyHookSignature(VECTOR_SECRET, Buffer.concat([body, Buffer.from('\n')]), sig)).toBe(true);
    expect(verifyHookSignature(VECTOR_SECRET, body, sig.toUpperCase())).toBe(true);
    expect(verifyHookSignature(VECTOR_SECRET, body, hookSignature('0'.repeat(40), body))).toBe(false);
    expect(verifyHookSignature(VECTOR_SECRET, Buffer.from('{"account_id":"y","message":{}}'), sig)).toBe(false);
    expect(verifyHookSignature(VECTOR_SECRET, body, undefined)).toBe(false);
    expect(verifyHookSignature(VECTOR_SECRET, body, 'not-hex')).toBe(false);
  });
});

// ---- against the sandboxes, over real HTTP ----------------------------------------------------

let avito: SandboxAvito;
let amo: SandboxAmo;
let amojo: SandboxAmojo;
let rt: Runtime | undefined;
let cleanup: (() => void) | undefined;
let dir: string;
let env: Record<string, string>;

async function setup(extra: Record<string, string> = {}, opts: { runtime?: boolean } = {}) {
  avito = new SandboxAvito();
  amo = new SandboxAmo();
  amojo = new SandboxAmojo(amo);
  await avito.start();
  await amo.start();
  await amojo.start();
  ({ dir, cleanup } = tempDir());
  env = fakeEnvWithAmo(avito, amo, dir, { ...amojo.env(), ...extra });
  if (opts.runtime !== false) ({ rt } = await testRuntime(env));
}

afterEach(async () => {
  await rt?.close().catch(() => undefined);
  rt = undefined;
  await avito?.stop();
  await amo?.stop();
  await amojo?.stop();
  cleanup?.();
  cleanup = undefined;
});

const connector = () => rt!.connectors[0]!.instance as ChatsConnector;
const sellerTexts = (chat: FakeChat) => avito.chats.get(chat.id)!.messages.filter((m) => m.author_id === avito.userId).map((m) => String(m.content.text ?? m.type));
const ids = (chat: FakeChat) => avito.chats.get(chat.id)!.messages.map((m) => m.id);

describe('chats mode: the channel', () => {
  it('connects once: the scope id is kept across passes and restarts', async () => {
    await setup();
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'Здравствуйте' });
    await syncOnce(rt!);
    await syncOnce(rt!);
    await rt!.close();
    ({ rt } = await testRuntime(env));
    avito.addMessage(chat.id, { text: 'Есть?' });
    await syncOnce(rt!);
    expect(amojo.count('/connect', 'POST', 200)).toBe(1);
    expect(amo.count('/api/v4/account')).toBe(1);
    expect(amojo.scopes.get(amo.amojoId)).toBe(`${amojo.channel.id}_${amo.amojoId}`);
    const status = await collectStatus(rt!.ledger.db, rt!.ledger.file);
    expect(status.accounts[0]!.connectors[0]!.info['chat channel']).toContain(`/webhooks/amojo/${amojo.channel.id}_${amo.amojoId}`);
  });

  it('a connection amoCRM forgot (integration switched off and on) is made again, once', async () => {
    await setup();
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'первое' });
    await syncOnce(rt!);
    amojo.scopes.clear();
    avito.addMessage(chat.id, { text: 'второе' });
    await syncOnce(rt!);
    expect(amojo.count('/connect', 'POST', 200)).toBe(2);
    expect(amojo.clientIds(chat.id)).toEqual(ids(chat));
  });

  it('doctor explains a wrong secret, an unknown channel and an account amoCRM did not approve', async () => {
    await setup();
    const secretCheck = await connectorWith({ channelSecret: 'ab'.repeat(20) }).checkAccess();
    expect(secretCheck.find((c) => c.check === 'amoCRM chat channel')).toMatchObject({ verdict: 'fail' });
    expect(secretCheck.find((c) => c.check === 'amoCRM chat channel')!.action).toMatch(/AMOCRM_CHANNEL_SECRET/);
    const channelCheck = await connectorWith({ channelId: '00000000-0000-4000-8000-000000000000' }).checkAccess();
    expect(channelCheck.find((c) => c.check === 'amoCRM chat channel')!.action).toMatch(/AMOCRM_CHANNEL_ID/);
    amojo.approved.clear();
    const approval = await connectorWith({}).checkAccess();
    expect(approval.find((c) => c.check === 'amoCRM chat channel')!.action).toMatch(/amoCRM support approves channels per account/);
    amojo.approved.add(amo.amojoId);
    const ok = await connectorWith({}).checkAccess();
    expect(ok.map((c) => c.verdict)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(ok[1]!.action).toContain(`/webhooks/amojo/${amojo.channel.id}_${amo.amojoId}`);
  });

  it('an unsigned or wrongly signed request is refused by the sandbox (403), like amojo', async () => {
    await setup({}, { runtime: false });
    const res = await fetch(`${amojo.url}/v2/origin/custom/${amojo.channel.id}/connect`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(403);
    const client = new AmojoClient({ amojoUrl: amojo.url, channelId: amojo.channel.id, channelSecret: amojo.channel.secret, log: memoryLogger('warn').logger, requestsPerSecond: 100, now: () => new Date(Date.now() - 20 * 60_000) });
    await expect(client.connect(amo.amojoId, 'x')).rejects.toThrow(/clock/);
  });
});

function connectorWith(over: Record<string, string>): ChatsConnector {
  const c = connector();
  const cfg = { ...(c as unknown as { ctx: { config: Record<string, unknown> } }).ctx.config, ...over };
  const ctor = c.constructor as new (ctx: unknown) => ChatsConnector;
  const ctx = (c as unknown as { ctx: Record<string, unknown> }).ctx;
  return new ctor({ ...ctx, config: cfg });
}

describe('chats mode: Avito messages into the chat', () => {
  it('invariant 2: every message once and in order, buyer as sender with name and profile link; the lead found, named, priced and tagged', async () => {
    await setup();
    const a = avito.addChat({ buyerName: 'Иван' });
    const b = avito.addChat({ buyerName: 'Мария' });
    for (let i = 0; i < 5; i++) {
      avito.addMessage(a.id, { text: `a${i}` });
      avito.addMessage(b.id, { text: `b${i}` });
    }
    await syncOnce(rt!);
    await syncOnce(rt!);
    expect(amojo.clientIds(a.id)).toEqual(ids(a));
    expect(amojo.clientIds(b.id)).toEqual(ids(b));
    const first = amojo.chat(a.id)!.messages[0]!;
    expect(first.sender).toMatchObject({ id: String(a.buyer.id), name: 'Иван', client: true });
    expect(first.silent).toBe(false);
    expect(amojo.chat(a.id)!.user.profile_link).toContain(String(a.buyer.id));
    const lead = amojo.leadOf(a.id)!;
    const item = avito.items.get(a.itemId!)!;
    expect(lead).toMatchObject({ name: item.title, price: item.price, tags: ['avito'], status_id: 1001 });
    expect(amojo.unsorted.size).toBe(2); // not configured: they stay in Unsorted for a manager
    expect(await connector().leadOf(a.id)).toBe(lead.id);
  });

  it('unsorted leads are accepted into the configured pipeline and status, with the responsible user', async () => {
    await setup({ AMOCRM_PIPELINE_ID: '2000', AMOCRM_STATUS_ID: '2001', AMOCRM_RESPONSIBLE_USER_ID: '2' });
    const a = avito.addChat();
    avito.addMessage(a.id, { text: 'Добрый день' });
    await syncOnce(rt!);
    expect(amojo.leadOf(a.id)).toMatchObject({ pipeline_id: 2000, status_id: 2001, responsible_user_id: 2, tags: ['avito'] });
    expect(amojo.unsorted.size).toBe(0);
  });

  it("history and the seller's own messages go silent; the seller writes as the channel bot to the buyer", async () => {
    await setup();
    const old = Math.floor(Date.now() / 1000) - 3 * 86_400;
    const a = avito.addChat({ created: old });
    avito.addMessage(a.id, { text: 'старое', created: old });
    avito.addMessage(a.id, { text: 'старый ответ', fromSeller: true, created: old + 60 });
    await syncOnce(rt!);
    const [h1, h2] = amojo.chat(a.id)!.messages;
    expect([h1!.silent, h2!.silent]).toEqual([true, true]);
    expect(h2!.sender.ref_id).toBe(amojo.channel.botId);
    expect(h2!.receiver?.id).toBe(String(a.buyer.id));
    expect(amojo.leadOf(a.id)).toBeUndefined(); // silent history makes no lead
    avito.addMessage(a.id, { text: 'новое' });
    avito.addMessage(a.id, { text: 'ответ из приложения', fromSeller: true });
    await syncOnce(rt!);
    const msgs = amojo.chat(a.id)!.messages;
    expect(msgs.map((m) => m.silent)).toEqual([true, true, false, true]);
    expect(amojo.leadOf(a.id)).toBeDefined();
  });

  it('images, voice and locations as their own types; other types as text', async () => {
    await setup();
    const a = avito.addChat();
    avito.addMessage(a.id, { type: 'image', content: { image: { sizes: { '140x105': `${amojo.url}/media/s.jpg`, '1280x960': `${amojo.url}/media/big.jpg` } } } });
    avito.addMessage(a.id, { type: 'location', content: { location: { lat: 55.75, lon: 37.62, title: 'Москва' } } });
    avito.addMessage(a.id, { type: 'link', content: { link: { text: 'смотрите', url: 'https://example.com/x' } } });
    await syncOnce(rt!);
    const [img, loc, link] = amojo.chat(a.id)!.messages;
    expect(img!.message).toMatchObject({ type: 'picture', media: `${amojo.url}/media/big.jpg`, file_name: 'big.jpg', file_size: 10 });
    expect(loc!.message).toMatchObject({ type: 'location', location: { lat: 55.75, lon: 37.62 }, text: 'Москва' });
    expect(link!.message).toMatchObject({ type: 'text' });
    expect(link!.message.text).toContain('https://example.com/x');
  });

  it('a closed lead that hears from the buyer again: amoCRM opens a new unsorted lead, which is named too', async () => {
    await setup();
    const a = avito.addChat();
    avito.addMessage(a.id, { text: 'Здравствуйте' });
    await syncOnce(rt!);
    const firstLead = amojo.leadOf(a.id)!;
    firstLead.status_id = 143;
    avito.addMessage(a.id, { text: 'А ещё есть?' });
    await syncOnce(rt!);
    const second = amojo.leadOf(a.id)!;
    expect(second.id).not.toBe(firstLead.id);
    expect(second).toMatchObject({ name: firstLead.name, tags: ['avito'] });
    expect(await connector().leadOf(a.id)).toBe(second.id);
  });

  it('invariant 2: SIGKILL after amojo took a message but before the ledger knew: the restart puts nothing twice into the chat', async () => {
    await setup({}, { runtime: false });
    const a = avito.addChat();
    avito.addMessage(a.id, { text: 'один' });
    avito.addMessage(a.id, { text: 'два' });
    avito.addMessage(a.id, { text: 'три' });
    let child: import('node:child_process').ChildProcess | undefined;
    amojo.stall = { msgid: ids(a)[1]!, onStall: () => child?.kill('SIGKILL') };
    const first = await runCli(['sync', '--once'], env, { onSpawn: (c) => (child = c) });
    expect(first.signal).toBe('SIGKILL');
    await afterSigkill(env.AVITO_SYNC_DB!, child!.pid!);
    const second = await runCli(['sync', '--once'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(amojo.clientIds(a.id)).toEqual(ids(a));
  });
});

describe('chats mode: switching modes', () => {
  it('notes → chats → notes: the chat joins the notes lead, and no message reaches the CRM twice', async () => {
    await setup({ AMOCRM_MODE: 'notes' });
    const a = avito.addChat();
    avito.addMessage(a.id, { text: 'заметкой' });
    await syncOnce(rt!);
    const lead = [...amo.leads.values()][0]!;
    const notesBefore = amo.leadNotes(lead.id, 'service_message').length;
    await rt!.close();
    ({ rt } = await testRuntime({ ...env, AMOCRM_MODE: 'chats' }));
    avito.addMessage(a.id, { text: 'в чат' });
    await syncOnce(rt!);
    expect(amojo.clientIds(a.id)).toEqual([ids(a)[1]]);
    expect(amo.leads.size).toBe(1); // linked to the notes-mode contact: no second lead
    expect(amojo.chat(a.id)!.contactId).toBe(lead.contacts[0]);
    expect(amo.leadNotes(lead.id, 'service_message').length).toBe(notesBefore);
    await rt!.close();
    ({ rt } = await testRuntime({ ...env, AMOCRM_MODE: 'notes' }));
    avito.addMessage(a.id, { text: 'снова заметкой' });
    await syncOnce(rt!);
    expect(amo.leads.size).toBe(1);
    const notes = amo.leadNotes(lead.id, 'service_message').map((n) => String(n.params.text));
    expect(notes.length).toBe(notesBefore + 1);
    expect(notes.at(-1)).toContain('снова заметкой');
    expect(amojo.clientIds(a.id)).toEqual([ids(a)[1]]);
  });
});

describe('chats mode: managers answer in the chat panel', () => {
  it('invariant 7: a lost hook is caught by reconciliation; the answer reaches Avito once and its status goes back', async () => {
    await setup();
    const a = avito.addChat();
    avito.addMessage(a.id, { text: 'Можно дешевле?' });
    await syncOnce(rt!); // delivers, and sets the reply cursor
    const msgid = amojo.managerAnswer(a.id, { text: 'Могу уступить 500 ₽' }, { hook: false });
    await syncOnce(rt!);
    expect(sellerTexts(a)).toEqual(['Могу уступить 500 ₽']);
    expect(amojo.statuses.get(msgid)).toEqual([{ delivery_status: 1 }]);
    await syncOnce(rt!); // the echo comes back from Avito: linked, not put into the chat
    await syncOnce(rt!);
    expect(sellerTexts(a)).toEqual(['Могу уступить 500 ₽']);
    expect(amojo.clientIds(a.id)).toEqual([ids(a)[0]]);
  });

  it('read receipts: the buyer reads the answer on Avito → its status in amoCRM becomes read (2), once; an unread answer stays delivered', async () => {
    await setup();
    const a = avito.addChat();
    const b = avito.addChat();
    avito.addMessage(a.id, { text: 'Можно дешевле?' });
    avito.addMessage(b.id, { text: 'Есть доставка?' });
    await syncOnce(rt!);
    const toA = amojo.managerAnswer(a.id, { text: 'Могу уступить 500 ₽' }, { hook: false });
    const toB = amojo.managerAnswer(b.id, { text: 'Да, Авито Доставка' }, { hook: false });
    await syncOnce(rt!);
    expect(amojo.statuses.get(toA)).toEqual([{ delivery_status: 1 }]);
    const readAt = avito.buyerReads(a.id);
    const before = avito.count('getMessagesV3');
    const pass = await syncOnce(rt!);
    expect(pass.reads[0]?.report).toMatchObject({ read: 1, reported: 1 });
    expect(amojo.statuses.get(toA)).toEqual([{ delivery_status: 1 }, { delivery_status: 2 }]);
    expect(amojo.statuses.get(toB)).toEqual([{ delivery_status: 1 }]);
    expect(avito.count('getMessagesV3') - before).toBeGreaterThanOrEqual(2); // both chats were looked at
    // Told once: later passes do not repeat it, and B turns read when its buyer answers.
    avito.addMessage(b.id, { text: 'Отлично, беру' });
    await syncOnce(rt!);
    await syncOnce(rt!);
    expect(amojo.statuses.get(toA)).toEqual([{ delivery_status: 1 }, { delivery_status: 2 }]);
    expect(amojo.statuses.get(toB)).toEqual([{ delivery_status: 1 }, { delivery_status: 2 }]);
    expect(readAt).toBeGreaterThan(0);
  });

  it('read receipts are off in notes mode: no chat is read again to look for them', async () => {
    await setup({ AMOCRM_MODE: 'notes' });
    const a = avito.addChat();
    avito.addMessage(a.id, { text: 'Можно дешевле?' });
    await syncOnce(rt!);
    const lead = [...amo.leads.values()][0]!;
    amo.managerNote(lead.id, '/avito Могу уступить 500 ₽');
    const pass = await syncOnce(rt!);
    expect(sellerTexts(a)).toEqual(['Могу уступить 500 ₽']);
    avito.buyerReads(a.id);
    const again = await syncOnce(rt!);
    expect(pass.reads).toEqual([]);
    expect(again.reads).toEqual([]);
  });

  it('invariant 3: long answers are split at 1,000 characters, pictures go as Avito images, files as their link', async () => {
    await setup();
    const a = avito.addChat();
    avito.addMessage(a.id, { text: 'Фото есть?' });
    await syncOnce(rt!);
    amojo.managerAnswer(a.id, { text: 'слово '.repeat(300).trim() }, { hook: false });
    amojo.managerAnswer(a.id, { picture: { url: `${amojo.url}/media/photo.jpg`, name: 'photo.jpg' } }, { hook: false });
    amojo.managerAnswer(a.id, { file: { url: `${amojo.url}/media/price.pdf`, name: 'price.pdf' } }, { hook: false });
    await syncOnce(rt!);
    const sent = avito.chats.get(a.id)!.messages.filter((m) => m.author_id === avito.userId);
    expect(sent.map((m) => m.type)).toEqual(['text', 'text', 'image', 'text']);
    expect(sent.slice(0, 2).every((m) => String(m.content.text).length <= 1000)).toBe(true);
    expect(String(sent[3]!.content.text)).toContain(`${amojo.url}/media/price.pdf`);
  });

  it('an answer Avito refuses for good goes back as an error status with the reason', async () => {
    await setup();
    const a = avito.addChat();
    avito.addMessage(a.id, { text: 'Алло' });
    await syncOnce(rt!);
    avito.chats.delete(a.id); // the buyer deleted the chat: Avito answers 404 for good
    const msgid = amojo.managerAnswer(a.id, { text: 'Ответ' }, { hook: false });
    await syncOnce(rt!);
    const st = amojo.statuses.get(msgid)!;
    expect(st).toHaveLength(1);
    expect(st[0]).toMatchObject({ delivery_status: -1, error_code: 905 });
    expect(st[0]!.error).toMatch(/^Avito: /);
  });

  it('invariant 3: SIGKILL between the Avito send and the ledger write: the answer is not sent twice', async () => {
    await setup({}, { runtime: false });
    const a = avito.addChat();
    avito.addMessage(a.id, { text: 'Можно дешевле?' });
    expect((await runCli(['sync', '--once'], env)).code).toBe(0);
    amojo.managerAnswer(a.id, { text: 'Нет, цена окончательная' }, { hook: false });
    let child: import('node:child_process').ChildProcess | undefined;
    avito.stall = { op: 'postSendMessage', onStall: () => child?.kill('SIGKILL') };
    const first = await runCli(['sync', '--once'], env, { onSpawn: (c) => (child = c) });
    expect(first.signal).toBe('SIGKILL');
    const second = await runCli(['sync', '--once'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(sellerTexts(a)).toEqual(['Нет, цена окончательная']);
    expect(avito.count('postSendMessage')).toBe(1);
    expect([...amojo.statuses.values()].flat()).toEqual([{ delivery_status: 1 }]);
  });

  it('the hook is checked by its signature: forged refused, a manager message becomes a reply; typing is acknowledged', async () => {
    await setup();
    const a = avito.addChat();
    avito.addMessage(a.id, { text: 'Привет' });
    await syncOnce(rt!);
    const chat = amojo.chat(a.id)!;
    const m = { id: 'amojo-msg-1', clientId: null, timestamp: Math.floor(Date.now() / 1000), silent: false, sender: { id: MANAGER_AMOJO_ID }, message: { type: 'text', text: 'Здравствуйте!' } };
    const body = Buffer.from(amojo.hookBody(chat, m));
    const req = (sig: string, pathToken = amojo.scopes.get(amo.amojoId)!) => ({ body, headers: { 'x-signature': sig, 'content-type': 'application/json' }, contentType: 'application/json', pathToken });
    expect(await connector().webhook(req(hookSignature('1'.repeat(40), body)))).toMatchObject({ accepted: false, status: 401 });
    expect(await connector().webhook(req(hookSignature(amojo.channel.secret, body), 'other_scope'))).toMatchObject({ accepted: false, status: 404 });
    const ok = await connector().webhook(req(hookSignature(amojo.channel.secret, body)));
    expect(ok).toMatchObject({ accepted: true, replies: [{ remoteId: 'amojo-msg-1', chatId: a.id, conversationId: a.id, text: 'Здравствуйте!' }] });
    expect(connector().matchesWebhook(req(''))).toBe(true);
    const typing = Buffer.from(JSON.stringify({ account_id: amo.amojoId, time: 1, action: { typing: { user: { id: 'x' }, conversation: { id: chat.id, client_id: a.id }, expired_at: 2 } } }));
    expect(await connector().webhook({ body: typing, headers: { 'x-signature': hookSignature(amojo.channel.secret, typing) }, contentType: 'application/json' })).toEqual({ accepted: true });
  });
});

describe('chats mode through the running daemon: POST /webhooks/amojo/<scope_id>', () => {
  it('invariant 4: a forged hook is 401 and stores nothing; duplicate hooks send the answer once; its status goes back; the echo is linked', async () => {
    const port = await freePort();
    await setup({ PUBLIC_URL: `http://127.0.0.1:${port}`, PORT: String(port), WEBHOOK_SECRET: 'test-secret-0123456789', CRM_POLL_INTERVAL_WITH_WEBHOOKS_SECONDS: '3600', POLL_INTERVAL_WITH_WEBHOOKS_SECONDS: '3600' });
    amojo.hookUrl = `http://127.0.0.1:${port}/webhooks/amojo/:scope_id`;
    const a = avito.addChat();
    avito.addMessage(a.id, { text: 'Ещё продаётся?' });
    const daemon = await startDaemon(rt!, { host: '127.0.0.1', initialPoll: true });
    try {
      await waitFor(() => amojo.clientIds(a.id).length === 1 && [...daemon.replyJobs.values()].every((j) => j.runs > 0 && !j.busy), 30_000, 'message in the chat and the first reply poll');
      const repliesCount = async () => Number((await rt!.ledger.db.selectFrom('replies').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      amojo.managerAnswer(a.id, { text: 'поддельный' }, { forge: true });
      expect(await Promise.all(amojo.hookCalls.splice(0))).toEqual([401]);
      expect(await repliesCount()).toBe(0);
      const wrongScope = await fetch(`http://127.0.0.1:${port}/webhooks/amojo/${amojo.channel.id}_other`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-signature': hookSignature(amojo.channel.secret, '{}') }, body: '{}' });
      expect(wrongScope.status).toBeGreaterThanOrEqual(400);
      // The same connector on the core route: WEBHOOK_SECRET right, but amojo's signature still checked.
      const unsigned = await fetch(`http://127.0.0.1:${port}/webhooks/amocrm/test-secret-0123456789`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(unsigned.status).toBe(401);
      expect(await repliesCount()).toBe(0);
      const msgid = amojo.managerAnswer(a.id, { text: 'Да, продаётся' }, { copies: 3 });
      expect(await Promise.all(amojo.hookCalls.splice(0))).toEqual([200, 200, 200]);
      await waitFor(() => sellerTexts(a).length === 1 && amojo.statuses.get(msgid)?.length === 1, 30_000, 'answer sent and its status back');
      expect(sellerTexts(a)).toEqual(['Да, продаётся']);
      expect(amojo.statuses.get(msgid)).toEqual([{ delivery_status: 1 }]);
      const echo = avito.chats.get(a.id)!.messages.at(-1)!;
      expect((await avito.pushWebhook(a.id, echo))).toEqual([200]);
      await daemon.dispatchJobs.get('default/amocrm')!.trigger();
      expect(amojo.clientIds(a.id)).toEqual([ids(a)[0]]);
    } finally {
      await daemon.stop();
      rt = undefined;
    }
  });
});

describe("chats mode: a chat whose details come after its first message (capability updateConversations)", () => {
  const SECRET = 'test-secret-0123456789';
  let daemon: Daemon | undefined;
  let release: (() => void) | undefined;
  afterEach(async () => {
    release?.(); // a failed test must not leave the daemon's request held
    await daemon?.stop();
    daemon = undefined;
    rt = undefined; // closed by the daemon
  });
  const hook = (chatId: string, msg: { id: string }) => fetch(`http://127.0.0.1:${daemon!.port}/webhooks/avito/${SECRET}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(avito.webhookBody(chatId, msg as never)),
  }).then((r) => expect(r.status).toBe(200));

  /**
   * A webhook brings a new chat's first message while Avito holds the chat's details; a dispatcher
   * whose wait for them is over (`stubGraceMs: 0`) puts the message into the chat panel, and amojo
   * makes the contact (and amoCRM the lead) with the placeholder names.
   */
  async function chatMadeWithoutDetails(opts: { unsortedDown?: boolean } = {}) {
    await setup({ WEBHOOK_SECRET: SECRET, POLL_INTERVAL_WITH_WEBHOOKS_SECONDS: '3600', CRM_POLL_INTERVAL_WITH_WEBHOOKS_SECONDS: '3600' });
    // amoCRM's Unsorted refuses to list: the connector cannot find the lead amojo made.
    if (opts.unsortedDown) amo.inject({ path: '/api/v4/leads/unsorted', method: 'GET', kind: '400', times: 1_000 });
    daemon = await startDaemon(rt!, { port: 0, host: '127.0.0.1', initialPoll: false });
    avito.hold('getChatByIdV2', new Promise<void>((r) => (release = r)));
    const chat = avito.addChat({ buyerName: 'Мария' });
    const first = avito.addMessage(chat.id, { text: 'Ещё продаётся?' });
    await hook(chat.id, first);
    const impatient = (o: Partial<DispatcherOptions> = {}) => impatientDispatcher(rt!, o);
    await waitFor(async () => (await impatient().run(), amojo.clientIds(chat.id).includes(first.id)), 15_000, 'the first message in the chat without the chat details');
    const contact = () => [...amo.contacts.values()].map((c) => c.name);
    expect(contact()).toEqual([`Avito ${chat.id}`]); // the placeholder: Avito gave no buyer yet
    return { chat, release: release!, impatient, contact, title: avito.items.get(chat.itemId!)!.title };
  }

  it('the lead found with the placeholder name is named after the item, and its contact after the buyer, once', async () => {
    const { chat, release, contact, title } = await chatMadeWithoutDetails();
    const lead = amojo.leadOf(chat.id)!;
    expect(await connector().leadOf(chat.id)).toBe(lead.id);
    expect(lead.name).toBe(`Чат на Авито: ${chat.id}`);
    release(); // Avito answers: the daemon fetches the details and its next dispatch renames
    await waitFor(() => lead.name === title && contact()[0] === 'Мария', 15_000, 'the lead and the contact renamed');
    const next = avito.addMessage(chat.id, { text: 'Можно посмотреть?' });
    await hook(chat.id, next);
    await waitFor(() => amojo.clientIds(chat.id).includes(next.id), 15_000, 'the next message in the chat');
    // The lead's naming when found (with the placeholder), then the rename: nothing more.
    expect(amo.count('/api/v4/leads', 'PATCH')).toBe(2);
    expect(amo.count('/api/v4/contacts', 'PATCH')).toBe(1);
    expect(amo.leads.size).toBe(1);
    expect(await countDetailUpdatesPending(rt!.ledger.db, 'default', 'amocrm')).toBe(0);
  });

  it('a lead not found yet when the details come is named after the item when it is found; its contact on the next try', async () => {
    const { chat, release, impatient, contact, title } = await chatMadeWithoutDetails({ unsortedDown: true });
    expect(await connector().leadOf(chat.id)).toBeUndefined();
    release();
    await waitFor(async () => (await rt!.ledger.db.selectFrom('conversations').select('details_attempts').executeTakeFirstOrThrow()).details_attempts === 1, 15_000, 'the rename tried while the lead is not found');
    expect(await countDetailUpdatesPending(rt!.ledger.db, 'default', 'amocrm')).toBe(1);
    amo.clearFaults();
    expect(await connector().settleLeads()).toBe(1);
    const lead = amojo.leadOf(chat.id)!;
    expect(lead.name).toBe(title); // the waiting entry was renamed: the placeholder never reached the lead
    expect(contact()).toEqual([`Avito ${chat.id}`]);
    // Its retry time come, the update names the contact, once; the lead is left as it is.
    const report = await impatient({ now: () => Date.now() + 3_600_000 }).run();
    expect(report.conversationsUpdated).toBe(1);
    expect(contact()).toEqual(['Мария']);
    expect(amo.count('/api/v4/leads', 'PATCH')).toBe(1); // the naming of the found lead only
    expect(await countDetailUpdatesPending(rt!.ledger.db, 'default', 'amocrm')).toBe(0);
  });
});
