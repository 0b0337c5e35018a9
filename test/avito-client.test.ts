import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RemoteApiError } from '../src/errors.js';
import { getToken } from '../src/ledger/tokens.js';
import type { Runtime } from '../src/runtime.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { fakeEnv, tempDir, testRuntime, waitFor } from './helpers.js';

let fake: SandboxAvito;
let rt: Runtime;
let cleanup: () => void;

let lines: string[] = [];

async function setup(options: ConstructorParameters<typeof SandboxAvito>[0] = {}, extraEnv: Record<string, string> = {}) {
  fake = new SandboxAvito(options);
  await fake.start();
  const t = tempDir();
  cleanup = t.cleanup;
  ({ rt, lines } = await testRuntime(fakeEnv(fake, t.dir, extraEnv)));
  return rt.accounts[0]!.client;
}

afterEach(async () => {
  await rt?.close();
  await fake?.stop();
  cleanup?.();
});

describe('Avito client: auth', () => {
  it('gets a client_credentials token once, caches it in the ledger, and reads the user id from accounts/self', async () => {
    const client = await setup();
    expect(await client.userId()).toBe(String(fake.userId));
    await client.listChats();
    await client.listChats();
    expect(fake.count('getAccessToken')).toBe(1);
    expect(fake.count('getUserInfoSelf')).toBe(1);
    const row = await getToken(rt.ledger.db, 'default', 'avito');
    expect(row?.access_token).toMatch(/^tok-/);
    expect(row!.expires_at! > Date.now()).toBe(true);
  });

  it('refreshes once on 403 for an expired token (as the guide says) and goes on', async () => {
    const client = await setup({ expiredTokenStatus: 403 });
    await client.listChats();
    fake.expireTokens();
    await client.listChats();
    expect(fake.count('getAccessToken')).toBe(2);
    expect(fake.count('getChatsV2', 403)).toBe(1);
  });

  it('refreshes once on 401 for an expired token (as other specs say)', async () => {
    const client = await setup({ expiredTokenStatus: 401 });
    await client.listChats();
    fake.expireTokens();
    await client.listChats();
    expect(fake.count('getAccessToken')).toBe(2);
  });

  it('explains bad credentials and names the keys to fix', async () => {
    const client = await setup({}, { AVITO_CLIENT_SECRET: 'wrong-secret-value' });
    const err = await client.listChats().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteApiError);
    expect((err as RemoteApiError).kind).toBe('bad_credentials');
    expect((err as RemoteApiError).message).toMatch(/AVITO_CLIENT_ID and AVITO_CLIENT_SECRET/);
    expect((err as RemoteApiError).message).toMatch(/Client authentication failed/);
  });

  it('authorization_code: the rotated refresh token is saved before the new token is used', async () => {
    fake = new SandboxAvito();
    await fake.start();
    const code = fake.issueAuthCode();
    const t = tempDir();
    cleanup = t.cleanup;
    ({ rt } = await testRuntime(fakeEnv(fake, t.dir, { AVITO_AUTH_CODE: code })));
    const client = rt.accounts[0]!.client;
    await client.listChats();
    const first = await getToken(rt.ledger.db, 'default', 'avito');
    expect(first?.refresh_token).toMatch(/^ref-/);
    fake.expireTokens();
    await client.listChats();
    const second = await getToken(rt.ledger.db, 'default', 'avito');
    expect(second?.refresh_token).toMatch(/^ref-/);
    expect(second?.refresh_token).not.toBe(first?.refresh_token);
    // The first refresh token was used up by the rotation: only the saved one works now.
    fake.expireTokens();
    await client.listChats();
    expect(fake.count('getAccessToken', 400)).toBe(0);
  });
});

describe('Avito client: faults', () => {
  it('retries 429 with Retry-After, honouring it', async () => {
    const client = await setup();
    await client.userId();
    fake.inject({ op: 'getChatsV2', kind: '429', retryAfter: 1, times: 1 });
    await client.listChats();
    expect(fake.count('getChatsV2', 429)).toBe(1);
    expect(fake.count('getChatsV2', 200)).toBe(1);
    const retry = lines.map((l) => JSON.parse(l) as { msg: string; waitMs?: number; status?: number }).find((l) => l.msg === 'Avito call failed, retrying');
    expect(retry).toMatchObject({ status: 429, waitMs: 1000 });
  });

  it('retries 429 without Retry-After with backoff', async () => {
    const client = await setup();
    fake.inject({ op: 'getChatsV2', kind: '429', times: 2 });
    await client.listChats();
    expect(fake.count('getChatsV2', 429)).toBe(2);
    expect(fake.count('getChatsV2', 200)).toBe(1);
  });

  it('retries 5xx and dropped connections on reads', async () => {
    const client = await setup();
    fake.inject({ op: 'getChatsV2', kind: '500', times: 1 });
    fake.inject({ op: 'getChatsV2', kind: '503', times: 1 });
    fake.inject({ op: 'getChatsV2', kind: 'drop', times: 1 });
    await client.listChats();
    expect(fake.count('getChatsV2', 200)).toBe(1);
    expect(fake.count('getChatsV2')).toBe(4);
  });

  it('gives up after the policy cap and says what Avito said', async () => {
    const client = await setup();
    fake.inject({ op: 'getChatsV2', kind: '500', times: 50 });
    const err = (await client.listChats().catch((e: unknown) => e)) as RemoteApiError;
    expect(err.kind).toBe('server');
    expect(err.message).toMatch(/Avito answered 500/);
    expect(err.message).toMatch(/contact support/);
    expect(fake.count('getChatsV2', 500)).toBe(5);
  });

  it('does not retry a send after a dropped connection (it may have been delivered)', async () => {
    const client = await setup();
    const chat = fake.addChat();
    await client.userId();
    fake.inject({ op: 'postSendMessage', kind: 'drop', times: 1 });
    const err = (await client.sendText(chat.id, 'hi').catch((e: unknown) => e)) as RemoteApiError;
    expect(err.kind).toBe('network');
    expect(fake.count('postSendMessage')).toBe(1);
  });

  it('retries a send on 429 (refused, so surely not delivered)', async () => {
    const client = await setup();
    const chat = fake.addChat();
    fake.inject({ op: 'postSendMessage', kind: '429', times: 1 });
    await client.sendText(chat.id, 'hi');
    expect(fake.chats.get(chat.id)!.messages).toHaveLength(1);
  });

  it('explains 402: the tariff has no Messenger API', async () => {
    const client = await setup();
    fake.mode.tariff = true;
    const err = (await client.listChats().catch((e: unknown) => e)) as RemoteApiError;
    expect(err.kind).toBe('tariff');
    expect(err.message).toMatch(/tariff/);
    expect(err.message).toMatch(/Payment required/);
    expect(fake.count('getChatsV2', 402)).toBe(1);
  });

  it("explains the employee-key symptom: chat operations refused with a valid token", async () => {
    const client = await setup();
    const chat = fake.addChat();
    fake.mode.employeeKey = true;
    expect(await client.listChats()).toHaveLength(0);
    const err = (await client.listMessages(chat.id).catch((e: unknown) => e)) as RemoteApiError;
    expect(err.kind).toBe('employee_key');
    expect(err.message).toMatch(/main account/);
    // Refreshed once, then failed: no loop.
    expect(fake.count('getAccessToken')).toBe(2);
  });

  it('does not retry other 4xx', async () => {
    const client = await setup();
    await client.userId();
    const err = (await client.getChat('u2i-missing').catch((e: unknown) => e)) as RemoteApiError;
    expect(err.kind).toBe('not_found');
    expect(fake.count('getChatByIdV2')).toBe(1);
  });

  it('slows down when X-RateLimit-Remaining runs low', async () => {
    const client = await setup({ rateLimitPerMinute: 6000 });
    // The account's request queue: paused while the remaining budget is under 5 % of the limit.
    const queue = (client as unknown as { queue: { isPaused: boolean } }).queue;
    await client.listChats();
    expect(queue.isPaused, 'plenty left: full speed').toBe(false);
    fake.rateRemaining = 2;
    await client.listChats(); // answered with 1 of 6,000 left
    expect(queue.isPaused, 'under 5 % left: the queue pauses').toBe(true);
    await waitFor(() => !queue.isPaused, 5_000, 'the queue to start again after the pause');
    fake.rateRemaining = 6000;
    await client.listChats();
    expect(queue.isPaused).toBe(false);
  });
});

describe('Avito client: stopping', () => {
  it('stop() fails every call not finished at once, the waiting ones and the ones in flight; close() cuts the requests in flight instead of waiting for Avito', async () => {
    const client = await setup({}, { AVITO_CONCURRENCY: '2' });
    const chat = fake.addChat();
    fake.addMessage(chat.id, { text: 'one' });
    await client.userId(); // the token and user id are known: what follows are message pages only
    let release!: () => void;
    fake.hold('getMessagesV3', new Promise<void>((r) => (release = r)));
    try {
      const sentBefore = client.requestCount;
      const calls = Array.from({ length: 12 }, () => client.listMessages(chat.id).then(() => 'ok', (e: unknown) => (e as Error).message));
      // Two requests sent (AVITO_CONCURRENCY) and held by the fake; ten wait their turn.
      await waitFor(() => client.requestCount === sentBefore + 2 && client.queueDepth === 12, 5_000, 'two calls in flight, ten waiting');
      client.stop();
      expect(await Promise.all(calls)).toEqual(Array(12).fill('avito-sync is stopping'));
      expect(client.stopped).toBe(true);
      await expect(client.listMessages(chat.id)).rejects.toThrow('avito-sync is stopping');
      // The fake still holds both requests: close() does not wait for them.
      await client.close();
      expect(client.queueDepth).toBe(0);
      expect(client.requestCount).toBe(sentBefore + 2); // the ten waiting never reached Avito
    } finally {
      release();
    }
  });
});

describe('Avito client: operations', () => {
  it('accepts both message-list shapes', async () => {
    for (const shape of ['object', 'array'] as const) {
      const client = await setup({ messagesShape: shape });
      const chat = fake.addChat();
      fake.addMessage(chat.id, { text: 'one' });
      fake.addMessage(chat.id, { text: 'two' });
      const list = await client.listMessages(chat.id);
      expect(list.map((m) => m.content.text)).toEqual(['two', 'one']);
      await rt.close();
      await fake.stop();
      cleanup();
    }
  });

  it('accepts unknown message types and empty content', async () => {
    const client = await setup();
    const chat = fake.addChat();
    fake.addMessage(chat.id, { type: 'appCall', content: {} });
    fake.addMessage(chat.id, { type: 'hologram', content: { hologram: { x: 1 } } });
    const list = await client.listMessages(chat.id);
    expect(list.map((m) => m.type)).toEqual(['hologram', 'appCall']);
  });

  it('sends text, uploads and sends an image, deletes, marks read, blacklists', async () => {
    const client = await setup();
    const chat = fake.addChat();
    fake.addMessage(chat.id, { text: 'is it available?' });
    const sent = await client.sendText(chat.id, 'yes');
    expect(sent.id).toBeTruthy();
    const up = await client.uploadImage(new Uint8Array([0xff, 0xd8, 0xff]), 'photo.jpg', 'image/jpeg');
    expect(up.sizes['1280x960']).toBeTruthy();
    const img = await client.sendImage(chat.id, up.imageId);
    expect(img.type).toBe('image');
    await client.deleteMessage(chat.id, sent.id);
    expect(fake.chats.get(chat.id)!.messages.find((m) => m.id === sent.id)!.type).toBe('deleted');
    await client.markRead(chat.id);
    expect(fake.chats.get(chat.id)!.messages[0]!.read).toBeTruthy();
    await client.blacklist(String(chat.buyer.id), { itemId: String(chat.itemId), reasonId: 1 });
    expect(fake.blacklist[0]!.user_id).toBe(chat.buyer.id);
  });

  it('refuses a text over 1,000 characters before calling Avito', async () => {
    const client = await setup();
    const chat = fake.addChat();
    await expect(client.sendText(chat.id, 'x'.repeat(1001))).rejects.toThrow(/1 to 1000 characters/);
    expect(fake.count('postSendMessage')).toBe(0);
  });

  it('subscribes, lists and unsubscribes webhooks', async () => {
    const client = await setup();
    await client.subscribeWebhook('https://example.com/webhooks/avito/abc');
    expect(await client.listSubscriptions()).toEqual([{ url: 'https://example.com/webhooks/avito/abc', version: '3' }]);
    await client.unsubscribeWebhook('https://example.com/webhooks/avito/abc');
    expect(await client.listSubscriptions()).toEqual([]);
  });

  it('lists items and voice files, and downloads a voice file', async () => {
    const client = await setup();
    fake.addItem({ id: 42, title: 'Bike' });
    const items = await client.listItems({ perPage: 100 });
    expect(items.find((i) => i.id === '42')?.title).toBe('Bike');
    const urls = await client.getVoiceFiles(['v1']);
    const data = await client.download(urls.v1!);
    expect(Buffer.from(data).toString()).toContain('v1');
  });
});

describe('fake Avito follows the spec', () => {
  beforeEach(async () => {
    await setup();
    await rt.accounts[0]!.client.userId();
  });

  async function raw(path: string, init: RequestInit = {}) {
    const token = (await getToken(rt.ledger.db, 'default', 'avito'))!.access_token;
    return fetch(fake.url + path, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });
  }

  it('rejects limit > 100 and offset > 1000 with 400', async () => {
    const base = `/messenger/v2/accounts/${fake.userId}/chats`;
    expect((await raw(`${base}?limit=101`)).status).toBe(400);
    expect((await raw(`${base}?offset=1001`)).status).toBe(400);
    expect((await raw(`${base}?limit=100&offset=1000`)).status).toBe(200);
  });

  it('rejects unknown parameters, bad types and bad enums', async () => {
    const base = `/messenger/v2/accounts/${fake.userId}/chats`;
    expect((await raw(`${base}?chat_type=u2i`)).status).toBe(400);
    expect((await raw(`${base}?chat_types=u2x`)).status).toBe(400);
    expect((await raw(`${base}?item_ids=a,b`)).status).toBe(400);
    expect((await raw(`${base}?unread_only=yes`)).status).toBe(400);
    expect((await raw(`/messenger/v2/accounts/abc/chats`)).status).toBe(400);
    expect((await raw(`/messenger/v9/nothing`)).status).toBe(404);
  });

  it('rejects bodies the spec rejects', async () => {
    const chat = fake.addChat();
    const send = `/messenger/v1/accounts/${fake.userId}/chats/${chat.id}/messages`;
    const post = (body: string, type = 'application/json') => raw(send, { method: 'POST', body, headers: { 'content-type': type } });
    expect((await post('{"message":{"text":""},"type":"text"}')).status).toBe(400);
    expect((await post(JSON.stringify({ message: { text: 'x'.repeat(1001) }, type: 'text' }))).status).toBe(400);
    expect((await post('{"text":"hi"}')).status).toBe(400);
    expect((await post('not json')).status).toBe(400);
    expect((await post('{"message":{"text":"ok"},"type":"text"}', 'text/plain')).status).toBe(400);
    expect((await post('{"message":{"text":"ok"},"type":"text"}')).status).toBe(200);
  });

  it('requires a bearer token', async () => {
    expect((await fetch(`${fake.url}/core/v1/accounts/self`)).status).toBe(401);
  });
});
