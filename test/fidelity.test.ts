import { afterEach, describe, expect, it } from 'vitest';
import { avitoMessageSchema } from '../src/avito/schemas.js';
import type { Runtime } from '../src/runtime.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { startDaemon, type Daemon } from '../src/sync/daemon.js';
import { syncOnce } from '../src/sync/sync-once.js';
import { CAMEL_CASE_MESSAGE, LINK_WITH_PREVIEW, NOTICE_TEXT, realWebhook } from './fixtures/real-payloads.js';
import { fakeEnv, fakeEnvWithAmo, tempDir, testRuntime } from './helpers.js';

let avito: SandboxAvito;
let amo: SandboxAmo | undefined;
let rt: Runtime | undefined;
let daemon: Daemon | undefined;
let cleanup: () => void;

async function setup(env: Record<string, string> = {}) {
  avito = new SandboxAvito();
  amo = new SandboxAmo();
  await avito.start();
  await amo.start();
  const t = tempDir();
  cleanup = t.cleanup;
  ({ rt } = await testRuntime(fakeEnvWithAmo(avito, amo, t.dir, env)));
  return rt;
}

afterEach(async () => {
  if (daemon) await daemon.stop();
  else await rt?.close().catch(() => undefined);
  daemon = undefined;
  rt = undefined;
  await avito?.stop();
  await amo?.stop();
  amo = undefined;
  cleanup?.();
});

const noteTexts = () => [...amo!.notes.values()].map((n) => String(n.params.text));

describe('fidelity of real payloads', () => {
  it('a link preview and unknown content fields are kept in the ledger and shown in the note', async () => {
    await setup();
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'Здравствуйте' });
    const link = avito.addMessage(chat.id, { type: 'link', content: { ...LINK_WITH_PREVIEW, reaction: { emoji: '👍' } } });
    await syncOnce(rt!);

    const row = await rt!.ledger.db.selectFrom('messages').select(['content', 'text']).where('message_id', '=', link.id).executeTakeFirstOrThrow();
    const content = JSON.parse(row.content) as typeof LINK_WITH_PREVIEW & { reaction: unknown };
    expect(content.link.preview).toEqual(LINK_WITH_PREVIEW.link.preview);
    expect(content.reaction).toEqual({ emoji: '👍' });

    const note = noteTexts().find((t) => t.includes(`#avito:${link.id}`))!;
    expect(note).toContain(`[Ссылка] ${LINK_WITH_PREVIEW.link.preview.title}`);
    expect(note).toContain(LINK_WITH_PREVIEW.link.url);
    expect(note).toMatch(/Ещё в сообщении: reaction: \{"emoji":"👍"\}/);
  });

  it('isRead and delivered (camelCase) are accepted like is_read', () => {
    const m = avitoMessageSchema.parse(CAMEL_CASE_MESSAGE);
    expect(m.is_read).toBe(true);
    expect(m.id).toBe(CAMEL_CASE_MESSAGE.id);
    expect(avitoMessageSchema.parse({ ...CAMEL_CASE_MESSAGE, isRead: undefined, is_read: false }).is_read).toBe(false);
  });

  it('a platform notice is labelled as an Avito notice, not as a chat-bot, and does not reopen a lead', async () => {
    await setup();
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'Ещё продаётся?' });
    const notice = avito.addMessage(chat.id, { type: 'system', fromAvito: true, content: { text: NOTICE_TEXT } });
    await syncOnce(rt!);
    const note = noteTexts().find((t) => t.includes(`#avito:${notice.id}`))!;
    expect(note.split('\n')[0]).toMatch(/^Уведомление Авито · /);
    expect(note).not.toMatch(/Чат-бот/);
    const row = await rt!.ledger.db.selectFrom('messages').select(['bot_name', 'flow_id']).where('message_id', '=', notice.id).executeTakeFirstOrThrow();
    expect(row).toEqual({ bot_name: null, flow_id: null });

    // A notice in a chat whose lead was won does not open a new lead: only a buyer does.
    const lead = [...amo!.leads.values()][0]!;
    lead.status_id = 142; // won
    avito.addMessage(chat.id, { type: 'system', fromAvito: true, content: { text: NOTICE_TEXT } });
    await syncOnce(rt!);
    expect(amo!.leads.size).toBe(1);
  });

  it('a chat whose only messages are Avito notices opens no lead unless AVITO_NOTICE_CHATS=open', async () => {
    await setup();
    const quiet = avito.addChat();
    avito.addMessage(quiet.id, { type: 'system', fromAvito: true, content: { text: NOTICE_TEXT } });
    const report = await syncOnce(rt!);
    expect(amo!.leads.size).toBe(0);
    expect(report.deliveries[0]!.report).toMatchObject({ delivered: 0, skipped: 1, dead: 0 });
    await rt!.close();
    rt = undefined;
    await avito.stop();
    await amo!.stop();
    cleanup();

    await setup({ AVITO_NOTICE_CHATS: 'open' });
    const chat = avito.addChat();
    avito.addMessage(chat.id, { type: 'system', fromAvito: true, content: { text: NOTICE_TEXT } });
    await syncOnce(rt!);
    expect(amo!.leads.size).toBe(1);
    expect(noteTexts().some((t) => t.includes(NOTICE_TEXT))).toBe(true);
  });

  it('a webhook shaped like real ones (version "v3.0.0", no published_at or read) is stored', async () => {
    avito = new SandboxAvito();
    await avito.start();
    const t = tempDir();
    cleanup = t.cleanup;
    ({ rt } = await testRuntime(fakeEnv(avito, t.dir, { WEBHOOK_SECRET: 'test-secret-0123456789' })));
    daemon = await startDaemon(rt!, { port: 0, host: '127.0.0.1', initialPoll: false });
    const chat = avito.addChat();
    const body = realWebhook(chat.id, Number(avito.userId), 'c1348bb968650a00e693d87e0e5e7e92', 'планируется поставка?');
    const res = await fetch(`http://127.0.0.1:${daemon.port}/webhooks/avito/test-secret-0123456789`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    const row = await rt!.ledger.db.selectFrom('messages').select(['text', 'chat_id']).where('message_id', '=', 'c1348bb968650a00e693d87e0e5e7e92').executeTakeFirstOrThrow();
    expect(row).toEqual({ text: 'планируется поставка?', chat_id: chat.id });
  });
});
