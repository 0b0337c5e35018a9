import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebhookVerdict } from '../../../src/connector-sdk/index.js';
import type { Runtime } from '../../../src/runtime.js';
import { SandboxAvito, type FakeChat } from '../../../src/sandbox/sandbox-avito.js';
import { startDaemon, type Daemon } from '../../../src/sync/daemon.js';
import { freePort } from '../../../src/sandbox/net.js';
import { Delivery } from '../../../src/sync/delivery.js';
import { pollAccount } from '../../../src/sync/poller.js';
import { syncOnce } from '../../../src/sync/sync-once.js';
import { afterSigkill, fakeEnv, runCli, tempDir, testRuntime, waitFor } from '../../helpers.js';
import type { B24Connector } from '../../../connectors/bitrix24/connector.js';
import { markerOf } from '../../../connectors/bitrix24/mappers.js';
import { SandboxB24 } from '../../../connectors/bitrix24/sandbox.js';

/**
 * The Bitrix24 connector end to end over real HTTP: the sandbox Avito → ledger → dispatcher →
 * the sandbox Bitrix24, and replies back.
 */

let avito: SandboxAvito;
let b24: SandboxB24;
let rt: Runtime | undefined;
let cleanup: () => void;
let dir: string;

/** BITRIX24_* variables and, until the config loader reads connectors' own variables, the same in a config file. */
function b24Env(extra: Record<string, string> = {}): Record<string, string> {
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ accounts: [{ id: 'default', bitrix24: { webhookUrl: b24.webhookUrl, applicationToken: b24.applicationToken } }] }));
  return fakeEnv(avito, dir, { AVITO_SYNC_CONFIG: file, AVITO_SYNC_CONNECTORS: 'bitrix24', BITRIX24_WEBHOOK_URL: b24.webhookUrl, BITRIX24_APPLICATION_TOKEN: b24.applicationToken, ...extra });
}

async function setup() {
  avito = new SandboxAvito();
  b24 = new SandboxB24();
  await avito.start();
  await b24.start();
  ({ dir, cleanup } = tempDir());
  ({ rt } = await testRuntime(b24Env()));
}

afterEach(async () => {
  await rt?.close().catch(() => undefined);
  rt = undefined;
  await avito?.stop();
  await b24?.stop();
  cleanup?.();
});

const delivered = () => [...b24.comments.values()].map((c) => markerOf(String(c.COMMENT))).filter((x): x is string => Boolean(x) && !x!.startsWith('reply-'));
const dupes = (ids: string[]) => ids.filter((id, i) => ids.indexOf(id) !== i);
const leadOf = (chat: FakeChat) => [...b24.leads.values()].find((l) => l.ORIGIN_ID === chat.id)!;
const sellerTexts = (chat: FakeChat) => avito.chats.get(chat.id)!.messages.filter((m) => m.author_id === avito.userId).map((m) => String(m.content.text ?? m.type));
const unit = () => new Delivery(rt!).units.find((u) => u.connectorId === 'bitrix24')!;
const connector = () => rt!.connectors.find((c) => c.definition.id === 'bitrix24')!.instance as B24Connector;

describe('Bitrix24 end to end', () => {
  it('sync --once: chats become leads with contacts, messages become comments in order, exactly once, through batch', async () => {
    await setup();
    const chats = avito.seed(6, 5);
    const report = await syncOnce(rt!);
    expect(report.deliveries[0]!.report).toMatchObject({ delivered: 30, conversationsCreated: 6, dead: 0 });
    expect(b24.leads.size).toBe(6);
    for (const c of chats) {
      const lead = leadOf(c);
      expect(lead.TITLE).toBe(avito.items.get(c.itemId!)!.title);
      expect(b24.entityComments('lead', lead.ID).map((x) => markerOf(String(x.COMMENT)))).toEqual(c.messages.map((m) => m.id));
    }
    // Leads and contacts in one request, 30 comments in one more.
    expect(b24.requests.filter((r) => r.method === 'batch' && r.status === 200).map((r) => r.commands).slice(0, 2)).toEqual([12, 30]);
    avito.addMessage(chats[0]!.id, { text: 'one more' });
    expect((await syncOnce(rt!)).deliveries[0]!.report!.delivered).toBe(1);
    expect(b24.leads.size).toBe(6);
    expect(delivered()).toHaveLength(31);
    expect(dupes(delivered())).toEqual([]);
  });

  it('replies by polling: a /avito comment reaches the buyer once, its fate comes back without its text; internal comments stay', async () => {
    await setup();
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'Здравствуйте, ещё продаётся?' });
    await syncOnce(rt!);
    const lead = leadOf(chat);
    b24.managerComment('lead', lead.ID, 'внутренняя заметка: перезвонить');
    b24.managerComment('lead', lead.ID, '/avito Да, продаётся. Приезжайте завтра.');
    await syncOnce(rt!);
    expect(sellerTexts(chat)).toEqual(['Да, продаётся. Приезжайте завтра.']);
    const texts = b24.entityComments('lead', lead.ID).map((c) => String(c.COMMENT));
    const fate = texts.find((t) => t.startsWith('Ответ отправлен покупателю на Авито'))!;
    expect(fate).toBeDefined();
    expect(fate).not.toContain('Приезжайте');
    await syncOnce(rt!);
    await syncOnce(rt!);
    expect(sellerTexts(chat)).toHaveLength(1); // at most once; its echo is not delivered back either
    expect(delivered().filter((id) => avito.chats.get(chat.id)!.messages.find((m) => m.id === id)?.author_id === avito.userId)).toEqual([]);
  });

  it('invariant 7: a reply written before the first look for replies is sent', async () => {
    await setup();
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'Добрый день' });
    // Deliver only (no reply poll yet), then a manager answers before the daemon ever looks.
    await pollAccount({ ledger: rt!.ledger, client: rt!.accounts[0]!.client, log: rt!.log, voice: rt!.voice }, { chatTypes: rt!.accounts[0]!.config.avito.chatTypes });
    await unit().dispatcher.run();
    b24.managerComment('lead', leadOf(chat).ID, '/avito Ответ до первого опроса');
    await syncOnce(rt!);
    expect(sellerTexts(chat)).toEqual(['Ответ до первого опроса']);
  });

  it('replies by event: ONCRMTIMELINECOMMENTADD is read back and sent once; a duplicate sends nothing; a forged token is refused with 401 and nothing is sent', async () => {
    await setup();
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'Можно фото?' });
    await syncOnce(rt!);
    const lead = leadOf(chat);
    const c = connector();
    const u = unit();
    const id = b24.managerComment('lead', lead.ID, `/avito Вот фото\n${b24.url}/files/photo.jpg`);
    const body = (token = b24.applicationToken) => Buffer.from(new URLSearchParams({ event: 'ONCRMTIMELINECOMMENTADD', 'data[FIELDS][ID]': String(id), ts: '1', 'auth[domain]': b24.domain, 'auth[member_id]': b24.memberId, 'auth[application_token]': token }).toString());
    const req = (token?: string) => ({ body: body(token), headers: { 'content-type': 'application/x-www-form-urlencoded' }, contentType: 'application/x-www-form-urlencoded' });

    const forged = await c.webhook(req('forged-token'));
    expect(forged).toMatchObject({ accepted: false, status: 401 });
    expect(c.matchesWebhook(req())).toBe(true);
    expect(c.matchesWebhook({ ...req('x'), body: Buffer.from('event=ONCRMTIMELINECOMMENTADD&auth[domain]=other.bitrix24.ru&auth[application_token]=x') })).toBe(false);

    const before = b24.requests.length;
    const [v1, v2] = await Promise.all([c.webhook(req()), c.webhook(req())]);
    expect(v1!.accepted && v2!.accepted).toBe(true);
    const later = (v: WebhookVerdict | undefined) => (v?.accepted && v.later ? v.later() : Promise.resolve([]));
    const [r1, r2] = await Promise.all([later(v1), later(v2)]);
    expect(b24.requests.length - before).toBe(1); // both events' comments read in one batch
    expect(r1).toHaveLength(1);
    expect(r1[0]).toMatchObject({ remoteId: String(id), conversationId: String(lead.ID), text: 'Вот фото', attachments: [{ url: `${b24.url}/files/photo.jpg`, mime: 'image/jpeg' }] });
    expect(await u.replies!.intake(r1, undefined)).toBe(1);
    expect(await u.replies!.intake(r2, undefined)).toBe(0); // the duplicate event
    const report = await u.replies!.run();
    expect(report.sent).toBe(1);
    expect(sellerTexts(chat)).toEqual(['Вот фото', 'image']);
    await u.replies!.run();
    expect(sellerTexts(chat)).toHaveLength(2);
    // The comment's own event (Bitrix24 fires for API comments too) is not a reply.
    const fateId = b24.entityComments('lead', lead.ID).find((x) => String(x.COMMENT).startsWith('Ответ отправлен'))!.ID;
    const echo = await c.webhook({ ...req(), body: Buffer.from(body().toString().replace(`%5BID%5D=${id}`, `%5BID%5D=${fateId}`).replace(`[ID]=${id}`, `[ID]=${fateId}`)) });
    expect(await later(echo)).toEqual([]);
  });

  it('no BITRIX24_APPLICATION_TOKEN: every event is refused', async () => {
    await setup();
    await rt!.close();
    const file = path.join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ accounts: [{ id: 'default', bitrix24: { webhookUrl: b24.webhookUrl } }] }));
    ({ rt } = await testRuntime({ ...fakeEnv(avito, dir, { AVITO_SYNC_CONFIG: file, AVITO_SYNC_CONNECTORS: 'bitrix24', BITRIX24_WEBHOOK_URL: b24.webhookUrl }) }));
    const v = await connector().webhook({ body: Buffer.from(`event=ONCRMTIMELINECOMMENTADD&data[FIELDS][ID]=5&auth[application_token]=${b24.applicationToken}`), headers: {}, contentType: 'application/x-www-form-urlencoded' });
    expect(v).toMatchObject({ accepted: false, status: 401, reason: expect.stringMatching(/BITRIX24_APPLICATION_TOKEN/) });
  });

  it('invariant 2: a process SIGKILLed between the Bitrix24 batch and the ledger write writes no comment twice after restart', async () => {
    avito = new SandboxAvito();
    b24 = new SandboxB24();
    await avito.start();
    await b24.start();
    ({ dir, cleanup } = tempDir());
    avito.seed(30, 10);
    const env = b24Env();
    let child: import('node:child_process').ChildProcess | undefined;
    let commentBatches = 0;
    b24.onRequest = (r) => {
      if (r.method === 'batch' && r.status === 200 && r.commandMethod === 'crm.timeline.comment.add' && ++commentBatches === 1) {
        // The second comments batch is run by Bitrix24 but never answered: the process dies there.
        b24.stall = { method: 'crm.timeline.comment.add', onStall: () => child?.kill('SIGKILL') };
      }
    };
    const first = await runCli(['sync', '--once'], env, { onSpawn: (c) => (child = c) });
    b24.onRequest = undefined;
    expect(first.signal).toBe('SIGKILL');
    expect(delivered()).toHaveLength(100); // two batches of 50 reached Bitrix24; the ledger knows none
    await afterSigkill(env.AVITO_SYNC_DB!, child!.pid!);
    const second = await runCli(['sync', '--once'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/bitrix24: 200 delivered/);
    const ids = delivered();
    expect(ids).toHaveLength(300);
    expect(dupes(ids)).toEqual([]);
    expect(b24.leads.size).toBe(30);
    expect(b24.contacts.size).toBe(30);
  });
});

describe('Bitrix24 events through the running daemon: POST /webhooks/bitrix24/<WEBHOOK_SECRET>', () => {
  it('invariant 4: a forged or unsigned outbound event is 401 and stores nothing, reads nothing; the real one is sent once', async () => {
    const SECRET = 'test-secret-0123456789';
    avito = new SandboxAvito();
    b24 = new SandboxB24();
    await avito.start();
    await b24.start();
    ({ dir, cleanup } = tempDir());
    const port = await freePort();
    ({ rt } = await testRuntime(b24Env({ WEBHOOK_SECRET: SECRET, CRM_POLL_INTERVAL_SECONDS: '3600', POLL_INTERVAL_SECONDS: '3600' })));
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'Есть в наличии?' });
    await syncOnce(rt!);
    const lead = leadOf(chat);
    let daemon: Daemon | undefined = await startDaemon(rt!, { port, host: '127.0.0.1', initialPoll: false });
    try {
      const url = `http://127.0.0.1:${port}/webhooks/bitrix24/${SECRET}`;
      const replies = async () => Number((await rt!.ledger.db.selectFrom('replies').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      const reads = () => b24.requests.length; // every call into Bitrix24
      const id = b24.managerComment('lead', lead.ID, '/avito Да, в наличии');
      b24.eventHandler = url;
      const readsBefore = reads();
      // Forged: another application token. Unsigned: no auth[application_token] at all.
      expect(await b24.fireEvent(id, { token: 'forged-token-000' })).toBe(401);
      const unsigned = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ event: 'ONCRMTIMELINECOMMENTADD', 'data[FIELDS][ID]': String(id), 'auth[domain]': b24.domain }).toString() });
      expect(unsigned.status).toBe(401);
      // The right token without WEBHOOK_SECRET in the path: not even read.
      b24.eventHandler = `http://127.0.0.1:${port}/webhooks/bitrix24/wrong-secret-0123456789`;
      expect(await b24.fireEvent(id)).toBe(404);
      await daemon.crmWebhooks.drain();
      expect(await replies()).toBe(0);
      expect(reads()).toBe(readsBefore);
      expect(sellerTexts(chat)).toEqual([]);

      b24.eventHandler = url;
      expect(await b24.fireEvent(id)).toBe(200);
      await daemon.crmWebhooks.drain();
      await waitFor(() => sellerTexts(chat).length === 1, 15_000, 'the reply at Avito');
      expect(await replies()).toBe(1);
      expect(await b24.fireEvent(id)).toBe(200); // Bitrix24 firing twice sends nothing again
      await daemon.crmWebhooks.drain();
      expect(await replies()).toBe(1);
      expect(sellerTexts(chat)).toEqual(['Да, в наличии']);
    } finally {
      await daemon.stop();
      daemon = undefined;
      rt = undefined;
    }
  });
});
