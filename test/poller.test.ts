import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { getCursor } from '../src/ledger/cursors.js';
import { countMessages } from '../src/ledger/messages.js';
import type { Runtime } from '../src/runtime.js';
import { pollAccount, type PollReport } from '../src/sync/poller.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { fakeEnv, tempDir, testRuntime } from './helpers.js';

let fake: SandboxAvito;
let rt: Runtime;
let cleanup: () => void;

async function setup(opts: ConstructorParameters<typeof SandboxAvito>[0] = {}) {
  fake = new SandboxAvito(opts);
  await fake.start();
  const t = tempDir();
  cleanup = t.cleanup;
  ({ rt } = await testRuntime(fakeEnv(fake, t.dir)));
}

function poll(extra: Partial<Parameters<typeof pollAccount>[1]> = {}): Promise<PollReport> {
  const acc = rt.accounts[0]!;
  return pollAccount({ ledger: rt.ledger, client: acc.client, log: rt.log, voice: rt.voice }, { chatTypes: ['u2i', 'u2u'], ...extra });
}

afterEach(async () => {
  await rt?.close();
  await fake?.stop();
  cleanup?.();
});

describe('polling sync', () => {
  it('fills the ledger with chats (item, buyer) and messages on the first pass', async () => {
    await setup();
    fake.seed(3, 5);
    const report = await poll();
    expect(report.chatsFetched).toBe(3);
    expect(report.messagesNew).toBe(15);
    const chats = await rt.ledger.db.selectFrom('chats').selectAll().execute();
    expect(chats).toHaveLength(3);
    const chat = chats[0]!;
    expect(chat.item_title).toMatch(/^Item /);
    expect(chat.item_price).toMatch(/₽/);
    expect(chat.buyer_name).toMatch(/^Buyer /);
    expect(chat.chat_type).toBe('u2i');
    const own = await rt.ledger.db.selectFrom('messages').select('is_own').where('is_own', '=', 1).execute();
    expect(own.length).toBe(3); // every third seeded message is the seller's
  });

  it('an incremental pass asks only for what changed', async () => {
    await setup();
    const chats = fake.seed(150, 3);
    await poll();
    const before = fake.requests.length;
    fake.addMessage(chats[10]!.id, { text: 'new one' });
    const report = await poll();
    expect(report.messagesNew).toBe(1);
    expect(report.chatsFetched).toBe(1);
    const ops = fake.requests.slice(before).map((r) => r.op);
    // One chat page (stops at the cursor) and one message page of the changed chat.
    expect(ops.filter((o) => o === 'getChatsV2')).toHaveLength(1);
    expect(ops.filter((o) => o === 'getMessagesV3')).toHaveLength(1);
  });

  it('chats updated in the cursor\'s own second are looked at again and deduped by id', async () => {
    await setup();
    const chat = fake.addChat();
    fake.addMessage(chat.id, { text: 'a', created: fake.clock });
    await poll();
    // Same second as the cursor: a new message that does not move `updated`.
    fake.addMessage(chat.id, { text: 'b', created: fake.clock });
    fake.chats.get(chat.id)!.updated = fake.clock;
    await rt.ledger.db.updateTable('chats').set({ synced_updated: null }).execute();
    const report = await poll();
    expect(report.messagesNew).toBe(1);
    expect(await countMessages(rt.ledger.db)).toBe(2);
  });

  it('message pages stop at the first known message', async () => {
    await setup();
    const [chat] = fake.seed(1, 250);
    await poll();
    const before = fake.count('getMessagesV3');
    fake.addMessage(chat!.id, { text: 'fresh' });
    await poll();
    expect(fake.count('getMessagesV3') - before).toBe(1);
  });

  it('reports what the paging caps keep out of reach', async () => {
    await setup();
    fake.seed(1_150, 0);
    const [big] = fake.seed(1, 0);
    for (let i = 0; i < 1_120; i++) fake.addMessage(big!.id, { text: `m${i}` });
    const report = await poll();
    expect(report.unreachable.some((u) => u.startsWith('chats past 1100'))).toBe(true);
    expect(report.unreachable.some((u) => u.startsWith(`messages past 1100 in chat ${big!.id}`))).toBe(true);
    expect(fake.count('getChatsV2', 400)).toBe(0);
    expect(fake.count('getMessagesV3', 400)).toBe(0);
  });

  it('keeps system messages with flow_id and names known chat-bots', async () => {
    await setup();
    const chat = fake.addChat();
    fake.addMessage(chat.id, { type: 'system', content: { text: 'Скидка 10%', flow_id: 'seller_audience_discount' } });
    fake.addMessage(chat.id, { type: 'system', content: { text: '?', flow_id: 'some_new_bot' } });
    await poll();
    const rows = await rt.ledger.db.selectFrom('messages').select(['flow_id', 'bot_name']).orderBy('created').execute();
    expect(rows[0]).toEqual({ flow_id: 'seller_audience_discount', bot_name: 'Avito: personal offer from the seller' });
    expect(rows[1]).toEqual({ flow_id: 'some_new_bot', bot_name: 'Avito bot some_new_bot' });
  });

  it('fetches a voice file while its link is valid and keeps it under the data directory', async () => {
    await setup();
    const chat = fake.addChat();
    fake.addMessage(chat.id, { type: 'voice', content: { voice: { voice_id: 'voice-123' } } });
    await poll();
    const row = await rt.ledger.db.selectFrom('voice_files').selectAll().executeTakeFirstOrThrow();
    expect(row.path).toBeTruthy();
    const file = path.join(rt.config.dataDir, row.path!);
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file, 'utf8')).toContain('voice-123');
  });

  it('records a voice link that failed and tries again next pass', async () => {
    await setup({ voiceLinkTtlMs: -1 });
    const chat = fake.addChat();
    fake.addMessage(chat.id, { type: 'voice', content: { voice: { voice_id: 'v-exp' } } });
    await poll();
    const row = await rt.ledger.db.selectFrom('voice_files').selectAll().executeTakeFirstOrThrow();
    expect(row.path).toBeNull();
    expect(row.attempts).toBe(1);
    expect(row.error).toMatch(/403/);
  });

  it('a message deleted on Avito is updated in place', async () => {
    await setup();
    const chat = fake.addChat();
    const m = fake.addMessage(chat.id, { text: 'oops', fromSeller: true });
    await poll();
    m.type = 'deleted';
    m.content = {};
    fake.chats.get(chat.id)!.updated = fake.tick();
    const report = await poll();
    expect(report.messagesDeleted).toBe(1);
    const row = await rt.ledger.db.selectFrom('messages').selectAll().executeTakeFirstOrThrow();
    expect(row.type).toBe('deleted');
    expect(await countMessages(rt.ledger.db)).toBe(1);
  });

  it('one failing chat is recorded and the pass goes on; the cursor waits for it', async () => {
    await setup();
    const chats = fake.seed(3, 2);
    fake.inject({ op: 'getMessagesV3', kind: '500', times: 5, pathIncludes: encodeURIComponent(chats[1]!.id) });
    const report = await poll();
    expect(report.errors).toBe(1);
    expect(report.messagesNew).toBe(4);
    expect(await getCursor(rt.ledger.db, 'default', 'chats:u2i,u2u')).toBeUndefined();
    const errs = await rt.ledger.db.selectFrom('item_errors').selectAll().execute();
    expect(errs).toHaveLength(1);
    const second = await poll();
    expect(second.messagesNew).toBe(2);
    expect(second.chatsFetched).toBe(1);
    expect(await getCursor(rt.ledger.db, 'default', 'chats:u2i,u2u')).toBe(String(Math.max(...chats.map((c) => fake.chats.get(c.id)!.updated))));
  });

  it('only fetches the configured chat types', async () => {
    await setup();
    fake.addChat({ type: 'u2u' });
    fake.addChat({ type: 'u2i' });
    const r = await poll({ chatTypes: ['u2i'] });
    expect(r.chatsSeen).toBe(1);
    expect(fake.requests.find((x) => x.op === 'getChatsV2')!.query).toContain('chat_types=u2i');
  });
});
