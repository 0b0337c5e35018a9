import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../src/runtime.js';
import type { ConnectorCapabilities } from '../src/connector-sdk/index.js';
import { countDetailUpdatesPending } from '../src/ledger/conversations.js';
import { recentItemErrors } from '../src/ledger/item-errors.js';
import { collectStatus } from '../src/status/collect-status.js';
import { Dispatcher, type DispatcherOptions } from '../src/sync/dispatcher.js';
import { startDaemon, type Daemon } from '../src/sync/daemon.js';
import { syncOnce } from '../src/sync/sync-once.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { deliveredIds, fakeEnvWithAmo, impatientDispatcher, runCli, tempDir, testRuntime, waitFor } from './helpers.js';
import { isPostgresUrl, openLedger } from '../src/ledger/database.js';
import { LEASE_TTL_MS } from '../src/ledger/leases.js';

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
  return rt;
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

function dupes(ids: string[]): string[] {
  return ids.filter((id, i) => ids.indexOf(id) !== i);
}

describe('delivery to amoCRM', () => {
  it('sync --once: chats become leads, messages become notes in order, exactly once; a second run adds nothing', async () => {
    await setup();
    const chats = avito.seed(4, 5);
    const report = await syncOnce(rt!);
    expect(report.deliveries[0]!.report).toMatchObject({ delivered: 20, conversationsCreated: 4, dead: 0 });
    expect(amo.leads.size).toBe(4);
    for (const c of chats) {
      const lead = [...amo.leads.values()].find((l) => l.name === avito.items.get(c.itemId!)!.title)!;
      const ids = amo.leadNotes(lead.id).map((n) => String(n.params.text).split('#avito:')[1]);
      expect(ids).toEqual(c.messages.map((m) => m.id));
    }
    avito.addMessage(chats[0]!.id, { text: 'one more' });
    const again = await syncOnce(rt!);
    expect(again.deliveries[0]!.report!.delivered).toBe(1);
    expect(amo.leads.size).toBe(4);
    const ids = deliveredIds(amo);
    expect(ids).toHaveLength(21);
    expect(dupes(ids)).toEqual([]);
  });

  it('seller messages from the Avito app are delivered and marked as the seller\'s', async () => {
    await setup();
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'buyer asks' });
    avito.addMessage(chat.id, { text: 'seller answered in the app', fromSeller: true });
    await syncOnce(rt!);
    const texts = [...amo.notes.values()].map((n) => String(n.params.text));
    expect(texts.find((t) => t.includes('seller answered in the app'))).toMatch(/^Продавец \(приложение Авито\)/);
  });

  it('one bad message is dead-lettered and the rest go on', async () => {
    await setup();
    avito.seed(2, 3);
    amo.inject({ path: '/api/v4/leads/notes', method: 'POST', kind: '400', times: 2 }); // the batch, then its first item alone
    const report = await syncOnce(rt!);
    expect(report.deliveries[0]!.report).toMatchObject({ delivered: 5, dead: 1 });
    const status = await rt!.ledger.db.selectFrom('deliveries').select(['status', 'last_error']).where('status', '=', 'dead').execute();
    expect(status[0]!.last_error).toMatch(/amoCRM answered 400/);
  });

  it('a 5xx is retried later with backoff; nothing is lost or doubled', async () => {
    await setup();
    avito.seed(2, 3);
    amo.inject({ path: '/api/v4/leads/notes', method: 'POST', kind: '503', times: 1 });
    await syncOnce(rt!); // leads made, notes failed: retry later
    expect(deliveredIds(amo)).toHaveLength(0);
    const unit = rt!.connectors[0]!;
    const d = new Dispatcher({ ledger: rt!.ledger, log: rt!.log, accountId: 'default', connectorId: 'amocrm', connector: unit.instance, capabilities: unit.definition.capabilities, now: () => Date.now() + 3_600_000 });
    const report = await d.run();
    expect(report.reconciled + report.delivered).toBe(6);
    expect(deliveredIds(amo).sort()).toEqual([...new Set(deliveredIds(amo))].sort());
    expect(deliveredIds(amo)).toHaveLength(6);
  });

  it('a message deleted on Avito after delivery is noted in the CRM', async () => {
    await setup();
    const [chat] = avito.seed(1, 2);
    await syncOnce(rt!);
    const m = avito.chats.get(chat!.id)!.messages[0]!;
    m.type = 'deleted';
    m.content = {};
    avito.chats.get(chat!.id)!.updated = avito.tick();
    await syncOnce(rt!);
    const texts = [...amo.notes.values()].map((n) => String(n.params.text));
    expect(texts.filter((t) => t.endsWith(`#avito:${m.id}:deleted`))).toHaveLength(1);
    expect(texts.find((t) => t.endsWith(`#avito:${m.id}:deleted`))).toContain('[Сообщение удалено на Авито]');
    await syncOnce(rt!);
    expect(amo.notes.size).toBe(3);
  });

  it('dropped connections to amoCRM: reads are retried at once, a dropped write is reconciled before it is sent again', async () => {
    await setup();
    avito.seed(2, 3);
    amo.inject({ path: '/api/v4/leads/pipelines', kind: 'drop', times: 1 });
    amo.inject({ path: '/api/v4/leads/notes', method: 'POST', kind: 'drop', times: 1 });
    const first = await syncOnce(rt!);
    expect(amo.count('/api/v4/leads/pipelines', 'GET', 200)).toBe(1); // the dropped read was retried
    expect(first.deliveries[0]!.report!.retried).toBe(6);
    const unit = rt!.connectors[0]!;
    const d = new Dispatcher({ ledger: rt!.ledger, log: rt!.log, accountId: 'default', connectorId: 'amocrm', connector: unit.instance, capabilities: unit.definition.capabilities, now: () => Date.now() + 3_600_000 });
    const report = await d.run();
    expect(report.delivered).toBe(6);
    expect(amo.count('/api/v4/leads/notes', 'GET')).toBeGreaterThanOrEqual(1); // looked before sending again
    expect(dupes(deliveredIds(amo))).toEqual([]);
    expect(deliveredIds(amo)).toHaveLength(6);
  });

  it('a won lead gets a new lead when the buyer writes again', async () => {
    await setup();
    const [chat] = avito.seed(1, 2);
    await syncOnce(rt!);
    const first = [...amo.leads.values()][0]!;
    first.status_id = 142;
    avito.addMessage(chat!.id, { text: 'and another thing' });
    await syncOnce(rt!);
    expect(amo.leads.size).toBe(2);
    const second = [...amo.leads.values()].find((l) => l.id !== first.id)!;
    expect(second.contacts).toEqual(first.contacts);
    expect(amo.leadNotes(second.id).map((n) => String(n.params.text))[0]).toMatch(/and another thing/);
  });

  it('AVITO_MARK_READ=after-delivery marks chats read after delivery; the default never does', async () => {
    await setup();
    avito.seed(2, 2);
    await syncOnce(rt!);
    expect(avito.count('chatRead')).toBe(0);
    await rt!.close();
    rt = undefined;
    avito.seed(1, 1);
    ({ rt } = await testRuntime(fakeEnvWithAmo(avito, amo, dir, { AVITO_MARK_READ: 'after-delivery' })));
    await syncOnce(rt);
    expect(avito.count('chatRead', 200)).toBe(1);
  });

  it('a ban stops delivery for the account; status shows it paused', async () => {
    await setup();
    avito.seed(1, 2);
    amo.banned = true;
    const report = await syncOnce(rt!);
    expect(report.deliveries[0]!.report!.halted).toMatch(/paused|blocked/);
    const calls = amo.requests.length;
    await syncOnce(rt!);
    expect(amo.requests.length).toBe(calls);
    await rt!.close();
    rt = undefined;
    const status = JSON.parse((await runCli(['status', '--json'], fakeEnvWithAmo(avito, amo, dir))).stdout) as { accounts: { connectors: { connector: string; paused: { reason: string } | null; backlog: { pending: number } }[] }[] };
    const c = status.accounts[0]!.connectors[0]!;
    expect(c.connector).toBe('amocrm');
    expect(c.paused?.reason).toMatch(/blocked/);
    expect(c.backlog.pending).toBe(2);
  });

  it('a webhook message reaches amoCRM through the running daemon', async () => {
    await setup({ WEBHOOK_SECRET: 'test-secret-0123456789' });
    daemon = await startDaemon(rt!, { port: 0, host: '127.0.0.1', initialPoll: false });
    const chat = avito.addChat();
    const msg = avito.addMessage(chat.id, { text: 'via webhook' });
    const res = await fetch(`http://127.0.0.1:${daemon.port}/webhooks/avito/test-secret-0123456789`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(avito.webhookBody(chat.id, msg)) });
    expect(res.status).toBe(200);
    await waitFor(() => deliveredIds(amo).includes(msg.id), 15_000, 'note in amoCRM');
    const lead = [...amo.leads.values()][0]!;
    expect(lead.name).toBe(avito.items.get(chat.itemId!)!.title); // waited for the chat's details
  });

  it("a new chat known only from a webhook: its lead waits for the chat's details (held by Avito) and then carries the item's title and the buyer's name, while other chats go on", async () => {
    await setup({ WEBHOOK_SECRET: 'test-secret-0123456789' });
    const known = avito.seed(1, 1)[0]!;
    await syncOnce(rt!);
    daemon = await startDaemon(rt!, { port: 0, host: '127.0.0.1', initialPoll: false });
    const hook = (chatId: string, msg: { id: string }) => fetch(`http://127.0.0.1:${daemon!.port}/webhooks/avito/test-secret-0123456789`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(avito.webhookBody(chatId, msg as never)),
    }).then((r) => expect(r.status).toBe(200));
    let release!: () => void;
    avito.hold('getChatByIdV2', new Promise<void>((r) => (release = r)));
    const fresh = avito.addChat({ buyerName: 'Мария' });
    const first = avito.addMessage(fresh.id, { text: 'is it still for sale?' });
    await hook(fresh.id, first);
    // Dispatch rounds that start after the new chat's rows are committed, each kicked by a
    // message of the known chat: each of those is delivered, the new chat's message is not.
    for (let i = 0; i < 3; i++) {
      const m = avito.addMessage(known.id, { text: `known ${i}` });
      await hook(known.id, m);
      await waitFor(() => deliveredIds(amo).includes(m.id), 15_000, `known chat message ${i} delivered`);
      expect(deliveredIds(amo)).not.toContain(first.id);
      expect(amo.leads.size).toBe(1);
    }
    release();
    await waitFor(() => deliveredIds(amo).includes(first.id), 15_000, "the new chat's message delivered once its details came");
    const lead = [...amo.leads.values()].find((l) => l.name === avito.items.get(fresh.itemId!)!.title);
    expect(lead, 'the lead is named after the item, not a placeholder').toBeDefined();
    expect([...amo.contacts.values()].map((c) => c.name)).toContain('Мария');
  });

  it('a bad amoCRM setting exits 2 naming the key', async () => {
    avito = new SandboxAvito();
    amo = new SandboxAmo();
    await avito.start();
    await amo.start();
    ({ dir, cleanup } = tempDir());
    const r = await runCli(['sync', '--once'], fakeEnvWithAmo(avito, amo, dir, { AMOCRM_PIPELINE_ID: 'main' }));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/AMOCRM_PIPELINE_ID/);
    const r2 = await runCli(['sync', '--once'], fakeEnvWithAmo(avito, amo, dir, { AMOCRM_ACCESS_TOKEN: '' }));
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/AMOCRM_ACCESS_TOKEN/);
  });

  it('doctor checks amoCRM access, the pipeline and status', async () => {
    avito = new SandboxAvito();
    amo = new SandboxAmo();
    await avito.start();
    await amo.start();
    ({ dir, cleanup } = tempDir());
    const ok = await runCli(['doctor'], fakeEnvWithAmo(avito, amo, dir));
    expect(ok.stdout).toMatch(/ok {3}amoCRM access: account Fake Shop/);
    expect(ok.stdout).toMatch(/ok {3}amoCRM pipeline and status: new leads go to pipeline 1000, status 1002/);
    const bad = await runCli(['doctor'], fakeEnvWithAmo(avito, amo, dir, { AMOCRM_PIPELINE_ID: '2000', AMOCRM_STATUS_ID: '1002' }));
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/FAIL amoCRM pipeline and status/);
    expect(bad.stdout).toMatch(/AMOCRM_STATUS_ID to one of: 2001/);
  });
});

describe("a conversation made before its chat's details arrived gets them later (capability updateConversations)", () => {
  const SECRET = 'test-secret-0123456789';
  const hook = (chatId: string, msg: { id: string }) => fetch(`http://127.0.0.1:${daemon!.port}/webhooks/avito/${SECRET}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(avito.webhookBody(chatId, msg as never)),
  }).then((r) => expect(r.status).toBe(200));

  /**
   * A daemon takes a webhook for a new chat while Avito holds the chat's details; a dispatcher
   * whose wait for them is over (`stubGraceMs: 0`) makes the lead with the placeholder names.
   */
  async function leadMadeWithoutDetails(caps: Partial<ConnectorCapabilities> = {}) {
    await setup({ WEBHOOK_SECRET: SECRET });
    daemon = await startDaemon(rt!, { port: 0, host: '127.0.0.1', initialPoll: false });
    let release!: () => void;
    avito.hold('getChatByIdV2', new Promise<void>((r) => (release = r)));
    const chat = avito.addChat({ buyerName: 'Мария' });
    const first = avito.addMessage(chat.id, { text: 'is it still for sale?' });
    await hook(chat.id, first);
    const impatient = (o: Partial<DispatcherOptions> = {}) => impatientDispatcher(rt!, o, caps);
    await waitFor(async () => (await impatient().run(), deliveredIds(amo).includes(first.id)), 15_000, 'the first message delivered without the chat details');
    expect(amo.leads.size).toBe(1);
    const lead = [...amo.leads.values()][0]!;
    expect(lead.name).toBe(`Чат на Авито: ${chat.id}`); // the placeholder: Avito gave no title yet
    expect([...amo.contacts.values()].map((c) => c.name)).toEqual([`Avito ${chat.id}`]);
    return { chat, lead, release, impatient, title: avito.items.get(chat.itemId!)!.title };
  }

  it('the lead made with the placeholder is renamed after the item, and its contact after the buyer, exactly once when the details come', async () => {
    const { chat, lead, release, title } = await leadMadeWithoutDetails();
    release(); // Avito answers: the daemon fetches the details and its next dispatch renames
    await waitFor(() => lead.name === title && amo.count('/api/v4/contacts', 'PATCH') > 0, 15_000, 'the lead renamed after the item');
    expect([...amo.contacts.values()].map((c) => c.name)).toEqual(['Мария']);
    // More rounds (a new message in the chat) rename nothing again.
    const next = avito.addMessage(chat.id, { text: 'hello again' });
    await hook(chat.id, next);
    await waitFor(() => deliveredIds(amo).includes(next.id), 15_000, 'the next message delivered');
    expect(amo.count('/api/v4/leads', 'PATCH')).toBe(1);
    expect(amo.count('/api/v4/contacts', 'PATCH')).toBe(1);
    expect(amo.leads.size).toBe(1);
    expect(await countDetailUpdatesPending(rt!.ledger.db, 'default', 'amocrm')).toBe(0);
  });

  it('a connector without the capability is left alone: its lead keeps its name and nothing waits in the ledger', async () => {
    const { chat, lead, release } = await leadMadeWithoutDetails({ updateConversations: false });
    expect(await countDetailUpdatesPending(rt!.ledger.db, 'default', 'amocrm')).toBe(0);
    release();
    const next = avito.addMessage(chat.id, { text: 'hello again' });
    await hook(chat.id, next);
    await waitFor(() => deliveredIds(amo).includes(next.id), 15_000, 'the next message delivered');
    expect(lead.name).toBe(`Чат на Авито: ${chat.id}`);
    expect(amo.count('/api/v4/leads', 'PATCH')).toBe(0);
    expect(amo.count('/api/v4/contacts')).toBe(0);
  });

  it('a failing rename is retried later and does not hold up the chat\'s notes', async () => {
    const { chat, lead, release, impatient, title } = await leadMadeWithoutDetails();
    // Every attempt of the first PATCH fails (the client's own retries included).
    amo.inject({ path: '/api/v4/leads', method: 'PATCH', kind: '503', times: 5 });
    release();
    await waitFor(() => amo.count('/api/v4/leads', 'PATCH', 503) === 5, 15_000, 'the rename failed');
    await waitFor(async () => (await countDetailUpdatesPending(rt!.ledger.db, 'default', 'amocrm')) === 1 && (await rt!.ledger.db.selectFrom('conversations').select('details_attempts').executeTakeFirstOrThrow()).details_attempts === 1, 15_000, 'the failure counted');
    const next = avito.addMessage(chat.id, { text: 'hello again' });
    await hook(chat.id, next);
    await waitFor(() => deliveredIds(amo).includes(next.id), 15_000, 'the next message delivered while the rename waits');
    expect(lead.name).not.toBe(title);
    expect((await collectStatus(rt!.ledger.db, 'ledger')).accounts[0]!.connectors[0]).toMatchObject({ connector: 'amocrm', awaitingDetails: 1 });
    // Its retry time come (an hour on), the rename goes through, once.
    const report = await impatient({ now: () => Date.now() + 3_600_000 }).run();
    expect(report.conversationsUpdated).toBe(1);
    expect(lead.name).toBe(title);
    expect(amo.count('/api/v4/leads', 'PATCH', 200)).toBe(1);
    expect(await countDetailUpdatesPending(rt!.ledger.db, 'default', 'amocrm')).toBe(0);
  });

  it('invariant 8: a rename the CRM refuses for good is recorded with its reason, given up, and the notes go on', async () => {
    const { chat, lead, release } = await leadMadeWithoutDetails();
    amo.inject({ path: '/api/v4/leads', method: 'PATCH', kind: '400', times: 1 });
    release();
    await waitFor(async () => (await countDetailUpdatesPending(rt!.ledger.db, 'default', 'amocrm')) === 0, 15_000, 'the rename given up');
    const errors = await recentItemErrors(rt!.ledger.db, 10, 'default');
    expect(errors.find((e) => e.scope === 'delivery.conversation-details')).toMatchObject({ ref: `amocrm ${chat.id}`, error: expect.stringMatching(/400/) });
    expect(lead.name).toBe(`Чат на Авито: ${chat.id}`);
    const next = avito.addMessage(chat.id, { text: 'hello again' });
    await hook(chat.id, next);
    await waitFor(() => deliveredIds(amo).includes(next.id), 15_000, 'the next message delivered');
    expect(amo.count('/api/v4/leads', 'PATCH')).toBe(1); // not asked again
  });
});

describe('conversations an earlier version made (migration 008 leaves them to look at)', () => {
  it('are checked once after the upgrade: a placeholder name is renamed after the item and the buyer, a name a manager gave stays', async () => {
    await setup();
    const [a, b] = [avito.addChat({ buyerName: 'Мария' }), avito.addChat({ buyerName: 'Олег' })];
    avito.addMessage(a.id, { text: 'a' });
    avito.addMessage(b.id, { text: 'b' });
    await syncOnce(rt!); // leads made with the chats' details, after migration 007: nothing to mark
    expect(await countDetailUpdatesPending(rt!.ledger.db, 'default', 'amocrm')).toBe(0);
    const lead = (chatId: string) => [...amo.leads.values()].find((l) => l.name.includes(avito.items.get(avito.chats.get(chatId)!.itemId!)!.title))!;
    const [leadA, leadB] = [lead(a.id), lead(b.id)];
    // As an older version left them: A with the placeholder names, B renamed by a manager.
    leadA.name = `Чат на Авито: ${a.id}`;
    for (const c of amo.contacts.values()) if (c.name === 'Мария') c.name = `Avito ${a.id}`;
    leadB.name = 'Олег, диван, перезвонить';
    // The upgrade: migration 008 leaves every conversation there is to look at.
    await rt!.ledger.db.updateTable('conversations').set({ details_pending: 2 }).execute();
    expect(await countDetailUpdatesPending(rt!.ledger.db, 'default', 'amocrm')).toBe(0); // not counted as waiting
    const report = await impatientDispatcher(rt!).run();
    expect(report.conversationsUpdated).toBe(2);
    expect(leadA.name).toBe(avito.items.get(a.itemId!)!.title);
    expect([...amo.contacts.values()].map((c) => c.name).sort()).toEqual(['Мария', 'Олег']);
    expect(leadB.name).toBe('Олег, диван, перезвонить');
    expect(amo.count('/api/v4/leads', 'PATCH')).toBe(1);
    expect(amo.count('/api/v4/contacts', 'PATCH')).toBe(1);
    // Once: later runs (and a new dispatcher after a restart) mark nothing again, and read no lead.
    const reads = amo.count('/api/v4/leads', 'GET');
    await impatientDispatcher(rt!).run();
    expect(await countDetailUpdatesPending(rt!.ledger.db, 'default', 'amocrm')).toBe(0);
    expect(amo.count('/api/v4/leads', 'GET')).toBe(reads);
    expect(amo.count('/api/v4/leads', 'PATCH')).toBe(1);
  });

  it('a connector that cannot rename lets them go: nothing waits, nothing is read', async () => {
    await setup();
    const chat = avito.addChat();
    avito.addMessage(chat.id, { text: 'a' });
    await syncOnce(rt!);
    await rt!.ledger.db.updateTable('conversations').set({ details_pending: 2 }).execute();
    const reads = amo.count('/api/v4/leads', 'GET');
    await impatientDispatcher(rt!, {}, { updateConversations: false }).run();
    expect((await rt!.ledger.db.selectFrom('conversations').select('details_pending').execute()).map((r) => Number(r.details_pending))).toEqual([0]);
    expect(amo.count('/api/v4/leads', 'GET')).toBe(reads);
    expect(amo.count('/api/v4/leads', 'PATCH')).toBe(0);
  });
});

describe('invariant 2: every ledger message reaches each enabled connector exactly once in effect', () => {
  it('a process SIGKILLed between the amoCRM call and the ledger write delivers nothing twice after restart', async () => {
    avito = new SandboxAvito();
    amo = new SandboxAmo();
    await avito.start();
    await amo.start();
    ({ dir, cleanup } = tempDir());
    avito.seed(30, 10);
    const env = fakeEnvWithAmo(avito, amo, dir);
    let notesPosts = 0;
    amo.onRequest = (r) => {
      if (r.method === 'POST' && r.path === '/api/v4/leads/notes' && r.status === 200 && ++notesPosts === 1) {
        // The second notes request will be stored by amoCRM but never answered: the process dies there.
        amo.stall = { method: 'POST', path: '/api/v4/leads/notes', onStall: () => child?.kill('SIGKILL') };
      }
    };
    let child: import('node:child_process').ChildProcess | undefined;
    const first = await runCli(['sync', '--once'], env, { onSpawn: (c) => (child = c) });
    amo.onRequest = undefined;
    expect(first.signal).toBe('SIGKILL');
    const afterCrash = deliveredIds(amo);
    expect(afterCrash.length).toBe(200); // two requests of 100 notes reached amoCRM; the ledger knows one
    if (isPostgresUrl(env.AVITO_SYNC_DB!)) {
      // Several processes share a PostgreSQL ledger: the killed one's claims are free once its
      // registration runs out (no heartbeat for LEASE_TTL_MS), not on a pid check.
      const ledger = await openLedger(env.AVITO_SYNC_DB!);
      try {
        await waitFor(async () => !(await ledger.db.selectFrom('lease_owners').select('owner').where('pid', '=', child!.pid!).where('expires_at', '>=', Date.now()).executeTakeFirst()), LEASE_TTL_MS + 10_000, "the killed process's registration to run out");
      } finally {
        await ledger.close();
      }
    }
    const second = await runCli(['sync', '--once'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/amocrm: 100 delivered/);
    const ids = deliveredIds(amo);
    expect(ids).toHaveLength(300);
    expect(dupes(ids)).toEqual([]);
    expect(amo.leads.size).toBe(30);
    const status = JSON.parse((await runCli(['status', '--json'], env)).stdout) as { accounts: { connectors: { backlog: { delivered: number; pending: number } }[] }[] };
    expect(status.accounts[0]!.connectors[0]!.backlog).toMatchObject({ delivered: 300, pending: 0 });
    void path;
  });
});
