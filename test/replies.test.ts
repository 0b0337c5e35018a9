import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../src/runtime.js';
import { startDaemon, type Daemon } from '../src/sync/daemon.js';
import { splitText } from '../src/sync/replies.js';
import { syncOnce } from '../src/sync/sync-once.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito, type FakeChat } from '../src/sandbox/sandbox-avito.js';
import { deliveredIds, fakeEnvWithAmo, runCli, tempDir, testRuntime, waitFor } from './helpers.js';
import { freePort } from '../src/sandbox/net.js';

let avito: SandboxAvito;
let amo: SandboxAmo;
let rt: Runtime | undefined;
let daemon: Daemon | undefined;
let cleanup: () => void;
let dir: string;

async function setup(env: Record<string, string> = {}) {
  avito = new SandboxAvito();
  amo = new SandboxAmo();
  await avito.start();
  await amo.start();
  ({ dir, cleanup } = tempDir());
  ({ rt } = await testRuntime(fakeEnvWithAmo(avito, amo, dir, env)));
}

afterEach(async () => {
  if (daemon) await daemon.stop();
  else await rt?.close().catch(() => undefined);
  daemon = undefined;
  rt = undefined;
  await avito?.stop();
  await amo?.stop();
  cleanup?.();
});

/** A chat with a buyer message, synced once: its lead exists and the reply cursor is set. */
async function chatWithLead(): Promise<{ chat: FakeChat; leadId: number }> {
  const chat = avito.addChat();
  avito.addMessage(chat.id, { text: 'Здравствуйте, ещё продаётся?' });
  await syncOnce(rt!);
  const leadId = [...amo.leads.values()].find((l) => l.name === avito.items.get(chat.itemId!)!.title)!.id;
  return { chat, leadId };
}

const sellerTexts = (chat: FakeChat) => avito.chats.get(chat.id)!.messages.filter((m) => m.author_id === avito.userId).map((m) => String(m.content.text ?? m.type));
const serviceNotes = (leadId: number) => amo.leadNotes(leadId, 'service_message').map((n) => String(n.params.text));

describe('splitText', () => {
  it('splits at word boundaries into parts of at most 1,000 characters', () => {
    const words = Array.from({ length: 420 }, (_, i) => `слово${i}`).join(' ');
    const parts = splitText(words);
    expect(parts.every((p) => p.length <= 1000)).toBe(true);
    expect(parts.join(' ')).toBe(words);
    expect(parts.every((p) => !p.startsWith(' ') && !p.endsWith(' '))).toBe(true);
    expect(splitText('x'.repeat(2100)).map((p) => p.length)).toEqual([1000, 1000, 100]);
  });
});

describe('replies from amoCRM to Avito', () => {
  it('a prefixed note is sent without its prefix; an internal note never leaves the CRM', async () => {
    await setup();
    const { chat, leadId } = await chatWithLead();
    amo.managerNote(leadId, 'позвонить ему завтра, торгуется');
    amo.managerNote(leadId, '/avito Да, в наличии. Приезжайте!');
    amo.managerNote(leadId, 'Без префикса /avito в начале — тоже внутренняя');
    await syncOnce(rt!);
    expect(sellerTexts(chat)).toEqual(['Да, в наличии. Приезжайте!']);
    expect(serviceNotes(leadId).at(-1)).toBe('Ответ отправлен покупателю на Авито.');
    expect(serviceNotes(leadId).join('\n')).not.toContain('Приезжайте'); // the fate, not the text
  });

  it('notes written before the daemon first looked are not sent', async () => {
    await setup();
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'hi' });
    await syncOnce(rt!);
    const leadId = [...amo.leads.values()][0]!.id;
    await rt!.ledger.db.deleteFrom('cursors').where('name', '=', 'replies:amocrm').execute();
    amo.managerNote(leadId, '/avito old reply');
    await syncOnce(rt!); // first look: only sets the cursor
    expect(sellerTexts(chat)).toEqual([]);
    amo.managerNote(leadId, '/avito new reply');
    await syncOnce(rt!);
    expect(sellerTexts(chat)).toEqual(['new reply']);
  });

  it('a 2,500-character reply goes as three messages, in order, split at words', async () => {
    await setup();
    const { chat, leadId } = await chatWithLead();
    const text = Array.from({ length: 250 }, (_, i) => `word${String(i).padStart(4, '0')}`).join(' ').slice(0, 2500);
    amo.managerNote(leadId, `/avito ${text}`);
    await syncOnce(rt!);
    const sent = sellerTexts(chat);
    expect(sent).toHaveLength(3);
    expect(sent.every((t) => t.length <= 1000)).toBe(true);
    expect(sent.join(' ')).toBe(text);
    expect(serviceNotes(leadId).at(-1)).toBe('Ответ отправлен покупателю на Авито (3 сообщения).');
  });

  it('an image linked in the reply goes as an Avito image after the text', async () => {
    await setup();
    const { chat, leadId } = await chatWithLead();
    amo.managerNote(leadId, `/avito Вот фото\n${amo.url}/files/photo-1.jpg`);
    await syncOnce(rt!);
    const mine = avito.chats.get(chat.id)!.messages.filter((m) => m.author_id === avito.userId);
    expect(mine.map((m) => m.type)).toEqual(['text', 'image']);
    expect(avito.count('uploadImages', 200)).toBe(1);
    const part = await rt!.ledger.db.selectFrom('reply_sends').selectAll().where('kind', '=', 'image').executeTakeFirstOrThrow();
    expect(part.image_id).toBeTruthy();
    expect(part.avito_message_id).toBe(mine[1]!.id);
  });

  it("the reply's echo comes back by poll and is linked, not delivered again", async () => {
    await setup();
    const { chat, leadId } = await chatWithLead();
    amo.managerNote(leadId, '/avito echo test');
    await syncOnce(rt!);
    await syncOnce(rt!); // polls Avito: the sent message is in the chat now
    const echoId = avito.chats.get(chat.id)!.messages.at(-1)!.id;
    expect(deliveredIds(amo)).not.toContain(echoId);
    const row = await rt!.ledger.db.selectFrom('deliveries').select('status').where('message_id', '=', echoId).executeTakeFirstOrThrow();
    expect(row.status).toBe('skipped');
    // A message the seller writes in the Avito app is delivered, marked as the seller's.
    avito.addMessage(chat.id, { text: 'from the app', fromSeller: true });
    await syncOnce(rt!);
    expect(amo.leadNotes(leadId, 'service_message').map((n) => String(n.params.text)).some((t) => t.startsWith('Продавец (приложение Авито)') && t.includes('from the app'))).toBe(true);
  });

  it('a failure is dead-lettered and written back to the CRM with the reason', async () => {
    await setup();
    const { chat, leadId } = await chatWithLead();
    avito.chats.delete(chat.id);
    amo.managerNote(leadId, '/avito anyone there?');
    const report = await syncOnce(rt!);
    expect(report.replies[0]!.report).toMatchObject({ dead: 1, reported: 1 });
    expect(serviceNotes(leadId).at(-1)).toMatch(/^Ответ НЕ отправлен на Авито: Avito answered 404/);
    const reply = await rt!.ledger.db.selectFrom('replies').selectAll().executeTakeFirstOrThrow();
    expect(reply.status).toBe('dead');
  });

  it('a reply on an earlier (won) lead of the chat still reaches the chat', async () => {
    await setup();
    const { chat, leadId } = await chatWithLead();
    amo.leads.get(leadId)!.status_id = 142;
    avito.addMessage(chat.id, { text: 'new question' });
    await syncOnce(rt!);
    expect(amo.leads.size).toBe(2);
    amo.managerNote(leadId, '/avito answer on the old lead');
    await syncOnce(rt!);
    expect(sellerTexts(chat)).toEqual(['answer on the old lead']);
  });

  it('the blacklist tag adds the buyer to the Avito blacklist once, and says so in the CRM', async () => {
    await setup();
    const { chat, leadId } = await chatWithLead();
    amo.tagLead(leadId, 'avito-blacklist');
    await syncOnce(rt!);
    expect(avito.blacklist.map((b) => b.user_id)).toEqual([chat.buyer.id]);
    amo.tagLead(leadId, 'something-else');
    await syncOnce(rt!);
    expect(avito.blacklist).toHaveLength(1);
    expect(serviceNotes(leadId)).toContain('Покупатель добавлен в чёрный список Авито.');
  });

  it('a blacklist that fails for a moment is done on the next look', async () => {
    await setup();
    const { chat, leadId } = await chatWithLead();
    amo.tagLead(leadId, 'avito-blacklist');
    avito.inject({ op: 'postBlacklistV2', kind: '503', times: 20 });
    await syncOnce(rt!);
    expect(avito.blacklist).toHaveLength(0);
    avito.clearFaults();
    await syncOnce(rt!);
    expect(avito.blacklist.map((b) => b.user_id)).toEqual([chat.buyer.id]);
  });
});


describe('replies through the running daemon', () => {
  it('duplicate note_lead webhooks send the reply once; the echo webhook is not delivered', async () => {
    const port = await freePort();
    await setup({ PUBLIC_URL: `http://127.0.0.1:${port}`, PORT: String(port), WEBHOOK_SECRET: 'test-secret-0123456789', CRM_POLL_INTERVAL_WITH_WEBHOOKS_SECONDS: '3600', POLL_INTERVAL_WITH_WEBHOOKS_SECONDS: '3600' });
    const { chat, leadId } = await chatWithLead();
    daemon = await startDaemon(rt!, { host: '127.0.0.1', initialPoll: true });
    expect([...amo.webhooks.keys()]).toEqual([`http://127.0.0.1:${port}/webhooks/amocrm/test-secret-0123456789`]);
    await waitFor(() => [...daemon!.replyJobs.values()].every((j) => j.runs > 0 && !j.busy), 10_000, 'first reply poll');
    amo.managerNote(leadId, '/avito via webhook', { copies: 3 });
    await waitFor(() => sellerTexts(chat).length > 0 && serviceNotes(leadId).at(-1)?.startsWith('Ответ отправлен'), 15_000, 'reply sent and reported');
    expect(await Promise.all(amo.webhookCalls)).toEqual([200, 200, 200]);
    expect(sellerTexts(chat)).toEqual(['via webhook']);
    // Avito's webhook for the echo: already linked, so nothing new reaches the CRM.
    const echo = avito.chats.get(chat.id)!.messages.at(-1)!;
    const notesBefore = amo.notes.size;
    const res = await fetch(`http://127.0.0.1:${port}/webhooks/avito/test-secret-0123456789`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(avito.webhookBody(chat.id, echo)) });
    expect(res.status).toBe(200);
    await daemon.dispatchJobs.get('default/amocrm')!.trigger();
    expect(amo.notes.size).toBe(notesBefore);
    expect(deliveredIds(amo)).not.toContain(echo.id);
  });
});

describe('invariant 3: a CRM reply is sent to Avito at most once', () => {
  it('SIGKILL between the send and the ledger write: the restart finds the message in the chat and does not send again', async () => {
    avito = new SandboxAvito();
    amo = new SandboxAmo();
    await avito.start();
    await amo.start();
    ({ dir, cleanup } = tempDir());
    const env = fakeEnvWithAmo(avito, amo, dir);
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'Можно дешевле?' });
    expect((await runCli(['sync', '--once'], env)).code).toBe(0);
    const leadId = [...amo.leads.values()][0]!.id;
    amo.managerNote(leadId, '/avito Могу уступить 500 ₽');
    let child: import('node:child_process').ChildProcess | undefined;
    avito.stall = { op: 'postSendMessage', onStall: () => child?.kill('SIGKILL') };
    const first = await runCli(['sync', '--once'], env, { onSpawn: (c) => (child = c) });
    expect(first.signal).toBe('SIGKILL');
    expect(sellerTexts(chat)).toEqual(['Могу уступить 500 ₽']); // Avito has it; the ledger does not know
    const second = await runCli(['sync', '--once'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(sellerTexts(chat)).toEqual(['Могу уступить 500 ₽']);
    expect(avito.count('postSendMessage')).toBe(1);
    expect(amo.leadNotes(leadId, 'service_message').map((n) => String(n.params.text)).at(-1)).toBe('Ответ отправлен покупателю на Авито.');
    const third = await runCli(['sync', '--once'], env);
    expect(third.code).toBe(0);
    expect(deliveredIds(amo)).not.toContain(avito.chats.get(chat.id)!.messages.at(-1)!.id);
  });
});
