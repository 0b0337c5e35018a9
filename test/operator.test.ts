import { afterEach, describe, expect, it } from 'vitest';
import { openLedger } from '../src/ledger/database.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { deliveredIds, fakeEnvWithAmo, runCli, tempDir, waitFor } from './helpers.js';
import { freePort } from '../src/sandbox/net.js';

let avito: SandboxAvito;
let amo: SandboxAmo;
let cleanup: () => void;
let dir: string;
const stopAll: (() => Promise<void>)[] = [];

async function setup() {
  avito = new SandboxAvito();
  amo = new SandboxAmo();
  await avito.start();
  await amo.start();
  ({ dir, cleanup } = tempDir());
}

afterEach(async () => {
  for (const s of stopAll.splice(0)) await s();
  await avito?.stop();
  await amo?.stop();
  cleanup?.();
});

const fast = { AVITO_ITEMS_REQUESTS_PER_MINUTE: '6000', AVITO_REQUESTS_PER_SECOND: '2000' };
const items = (n: number, from = 3_000_000) => Array.from({ length: n }, (_, i) => from + i);

describe('backfill', () => {
  it('reaches all 2,500 chats on 300 items past the 1,100-chat cap, and says what stayed out of reach', async () => {
    await setup();
    const ids = items(300);
    for (const id of ids) avito.addItem({ id, status: id % 7 === 0 ? 'removed' : 'active' });
    avito.seed(2500, 1, { itemIds: ids });
    const [big] = avito.seed(1, 0, { itemIds: [ids[0]!] });
    for (let i = 0; i < 1_110; i++) avito.addMessage(big!.id, { text: `long ${i}` });
    const env = fakeEnvWithAmo(avito, amo, dir, fast);
    const r = await runCli(['backfill', '--ledger-only', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const [report] = JSON.parse(r.stdout) as { chatsSeen: number; messagesNew: number; items: number; partitions: { total: number }; unreachable: string[]; avitoRequests: number }[];
    expect(report!.items).toBe(300);
    expect(report!.partitions.total).toBeGreaterThanOrEqual(16);
    expect(report!.unreachable).toEqual([`messages past 1100 in chat ${big!.id}`]);
    const ledger = await openLedger(env.AVITO_SYNC_DB!);
    const chats = await ledger.db.selectFrom('chats').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const messages = await ledger.db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    await ledger.close();
    expect(Number(chats.n)).toBe(2501);
    expect(Number(messages.n)).toBe(2500 + 1100);
    expect(avito.count('getChatsV2', 400) + avito.count('getMessagesV3', 400)).toBe(0);
    expect(amo.requests).toHaveLength(0); // --ledger-only
  });

  it('a backfill killed halfway resumes without re-fetching finished partitions or duplicating notes', async () => {
    await setup();
    const ids = items(120);
    for (const id of ids) avito.addItem({ id });
    avito.seed(1300, 1, { itemIds: ids });
    const env = fakeEnvWithAmo(avito, amo, dir, { ...fast, AVITO_REQUESTS_PER_SECOND: '300' });
    let partitionPages = 0;
    let child: import('node:child_process').ChildProcess | undefined;
    avito.onRequest = (req) => {
      if (req.op === 'getChatsV2' && req.query.includes('item_ids') && ++partitionPages === 8) child?.kill('SIGKILL'); // partitions span 3 pages: two are done by then
    };
    const first = await runCli(['backfill'], env, { onSpawn: (c) => (child = c) });
    avito.onRequest = undefined;
    expect(first.signal, first.stderr).toBe('SIGKILL');
    const ledger = await openLedger(env.AVITO_SYNC_DB!);
    const done = (await ledger.db.selectFrom('cursors').select('name').where('name', 'like', 'backfill:%:items:%').execute()).map((c) => c.name);
    await ledger.close();
    expect(done.length).toBeGreaterThanOrEqual(1);
    const doneItemSets = done.map((n) => /items:(\d+)-(\d+):/.exec(n)!.slice(1, 3).join('-'));
    const before = avito.requests.length;
    const second = await runCli(['backfill'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/backfill resumed/);
    const refetched = avito.requests.slice(before).filter((q) => q.op === 'getChatsV2' && q.query.includes('item_ids')).map((q) => {
      const list = decodeURIComponent(/item_ids=([^&]+)/.exec(q.query)![1]!).split(',');
      return `${list[0]}-${list[list.length - 1]}`;
    });
    expect(refetched.filter((x) => doneItemSets.includes(x))).toEqual([]);
    const ids2 = deliveredIds(amo);
    expect(ids2).toHaveLength(1300);
    expect(new Set(ids2).size).toBe(1300);
    expect(amo.leads.size).toBe(1300);
  });

  it('delivery overlaps the fetching: notes reach the CRM while partitions are still being read (issue 13 item 3)', async () => {
    await setup();
    const ids = items(120);
    for (const id of ids) avito.addItem({ id });
    avito.seed(1300, 1, { itemIds: ids });
    const env = fakeEnvWithAmo(avito, amo, dir, fast);
    // The item partitions after the first one wait until amoCRM has a note: a backfill that
    // delivers only after the last partition would never finish (the test times out).
    let noteSeen!: () => void;
    const firstNote = new Promise<void>((resolve) => (noteSeen = resolve));
    amo.onRequest = (r) => {
      if (r.method === 'POST' && r.path.includes('/notes')) noteSeen();
    };
    let partitionPages = 0;
    avito.onRequest = (req) => {
      if (req.op === 'getChatsV2' && req.query.includes('item_ids')) partitionPages++;
    };
    avito.hold('getChatsV2', firstNote, 14); // the unfiltered pass (12 pages) and the first partition page go through
    const r = await runCli(['backfill', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const ids2 = deliveredIds(amo);
    expect(ids2).toHaveLength(1300);
    expect(new Set(ids2).size).toBe(1300);
    expect(partitionPages).toBeGreaterThan(1);
    const [report] = JSON.parse(r.stdout) as { delivery: { connector: string; report: { delivered: number } }[] }[];
    expect(report!.delivery).toEqual([{ connector: 'amocrm', report: expect.objectContaining({ delivered: 1300 }) }]);
  });

  it('--dry-run says how many contacts, leads and notes it would create, and writes nothing to the CRM', async () => {
    await setup();
    const chats = avito.seed(3, 4);
    avito.addChat({ buyerId: chats[0]!.buyer.id }); // the same buyer again: one contact, two leads
    avito.addMessage([...avito.chats.keys()].at(-1)!, { text: 'second chat of the same buyer' });
    const r = await runCli(['backfill', '--dry-run'], fakeEnvWithAmo(avito, amo, dir, fast));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/would create up to 3 contacts, 4 leads and 13 notes \(nothing was written to the CRM\)/);
    expect(amo.requests.filter((q) => q.method !== 'GET')).toHaveLength(0);
    expect(amo.leads.size).toBe(0);
  });
});

describe('replay, dead letters, reconcile', () => {
  it('replay projects the ledger into a second CRM without asking Avito again', async () => {
    await setup();
    avito.seed(3, 3);
    expect((await runCli(['sync', '--once'], fakeEnvWithAmo(avito, amo, dir))).code).toBe(0);
    const second = new SandboxAmo();
    await second.start();
    stopAll.push(() => second.stop());
    const avitoCalls = avito.requests.length;
    const r = await runCli(['replay', '--connector', 'amocrm'], fakeEnvWithAmo(avito, second, dir));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/9 of 9 messages delivered/);
    expect(avito.requests.length).toBe(avitoCalls);
    expect(second.leads.size).toBe(3);
    expect(deliveredIds(second).sort()).toEqual(deliveredIds(amo).sort());
    const unknown = await runCli(['replay', '--connector', 'bitrix'], fakeEnvWithAmo(avito, second, dir));
    expect(unknown.code).toBe(2);
  });

  it('dead-letters list shows the error and attempts; retry sends it again', async () => {
    await setup();
    avito.seed(1, 1);
    amo.inject({ path: '/api/v4/leads/notes', method: 'POST', kind: '400', times: 1 });
    const env = fakeEnvWithAmo(avito, amo, dir);
    const sync = await runCli(['sync', '--once'], env);
    expect(sync.code).toBe(0);
    const list = await runCli(['dead-letters', 'list', '--json'], env);
    const rows = JSON.parse(list.stdout) as { id: string; attempts: number; error: string }[];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ attempts: 1 });
    expect(rows[0]!.error).toMatch(/amoCRM answered 400/);
    const text = await runCli(['dead-letters', 'list'], env);
    expect(text.stdout).toMatch(new RegExp(`^${rows[0]!.id} +delivery`, 'm'));
    const retry = await runCli(['dead-letters', 'retry', rows[0]!.id], env);
    expect(retry.code, retry.stderr).toBe(0);
    expect(retry.stdout).toMatch(/1 delivered/);
    expect(deliveredIds(amo)).toHaveLength(1);
    expect((await runCli(['dead-letters', 'retry', 'x1'], env)).code).toBe(2);
    expect(JSON.parse((await runCli(['dead-letters', 'list', '--json'], env)).stdout)).toEqual([]);
  });

  it('reconcile --report finds a message deleted from the CRM, and --repair delivers it again', async () => {
    await setup();
    const [chat] = avito.seed(2, 3);
    const env = fakeEnvWithAmo(avito, amo, dir);
    expect((await runCli(['sync', '--once'], env)).code).toBe(0);
    const lost = chat!.messages[1]!.id;
    const note = [...amo.notes.values()].find((n) => String(n.params.text).endsWith(`#avito:${lost}`))!;
    amo.notes.delete(note.id);
    const silent = avito.addMessage(chat!.id, { text: 'not polled yet' });
    const r = await runCli(['reconcile', '--report'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`message ${lost}  missing in amocrm: delivered as \\d+ on .*but the CRM no longer has it`));
    expect(r.stdout).toMatch(new RegExp(`message ${silent.id}  missing in ledger: not polled yet`));
    expect(r.stdout).toMatch(/2 missing/);
    expect((await runCli(['reconcile', '--report', '--repair'], env)).code).toBe(0);
    expect((await runCli(['sync', '--once'], env)).code).toBe(0);
    expect(deliveredIds(amo)).toContain(lost);
    expect((await runCli(['reconcile', '--report'], env)).stdout).toMatch(/0 missing/);
  });
});


describe('doctor', () => {
  it('checks webhook reachability with a POST to our own public URL', async () => {
    await setup();
    const port = await freePort();
    const env = fakeEnvWithAmo(avito, amo, dir, { PUBLIC_URL: `http://127.0.0.1:${port}`, PORT: String(port), WEBHOOK_SECRET: 'test-secret-0123456789' });
    const down = await runCli(['doctor'], env);
    expect(down.stdout).toMatch(/FAIL webhook reachability: http:\/\/127\.0\.0\.1:\d+\/webhooks\/avito\/… did not answer within 2 s/);
    expect(down.stdout).not.toContain('test-secret-0123456789');
    let child: import('node:child_process').ChildProcess | undefined;
    const running = runCli(['run'], env, { onSpawn: (c) => (child = c) });
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 200, 15_000, 'the daemon to answer /healthz');
      const ok = await runCli(['doctor'], env);
      expect(ok.stdout).toMatch(/ok {3}webhook reachability: .* answered 200 in \d+ ms/);
      expect(ok.stdout).toMatch(/ok {3}Avito webhooks: subscribed to this daemon/);
    } finally {
      child?.kill('SIGTERM');
      await running;
    }
  });
});

describe('demo', () => {
  it('shows chats becoming leads and a reply going back, then exits 0', async () => {
    const r = await runCli(['demo'], {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/amoCRM: lead #\d+ «Велосипед Stels Navigator 500», 12\s500 ₽, tag avito, contact «Иван»/);
    expect(r.stdout).toMatch(/Avito: Иван gets «Да, продаётся! Можно посмотреть сегодня после 18:00\.»/);
    expect(r.stdout).toMatch(/recognised as our own, not delivered again/);
    expect(r.stdout).toMatch(/Done in [\d.]+ s: 2 leads, 2 contacts, 7 notes in amoCRM; 1 reply sent to Avito; internal note sent: no\./);
  });

  it('--crm bitrix24: leads and timeline comments in the sandbox Bitrix24, a reply by the outbound webhook', async () => {
    const r = await runCli(['demo', '--crm', 'bitrix24'], {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/a sandbox Avito and a sandbox Bitrix24 on 127\.0\.0\.1/);
    expect(r.stdout).toMatch(/Bitrix24: lead #\d+ «[^»]*Велосипед Stels Navigator 500[^»]*», 12\s500 RUB, contact «Иван»/);
    expect(r.stdout).toMatch(/Avito: Иван gets «Да, продаётся! Можно посмотреть сегодня после 18:00\.»/);
    expect(r.stdout).toMatch(/a short note in the conversation says the reply was sent/);
    expect(r.stdout).toMatch(/recognised as our own, not delivered again/);
    expect(r.stdout).toMatch(/the same conversation \(yes\)/);
    expect(r.stdout).toMatch(/Done in [\d.]+ s: 2 leads, 2 contacts, \d+ timeline comments in Bitrix24; 1 reply sent to Avito; internal note sent: no\./);
    expect(r.stdout).toMatch(/Next: set AVITO_CLIENT_ID, AVITO_CLIENT_SECRET, BITRIX24_WEBHOOK_URL and BITRIX24_APPLICATION_TOKEN/);
  });

  it('--mode chats: messages in amoCRM\'s chat panel, the manager answers there, the hook is signed', async () => {
    const r = await runCli(['demo', '--crm', 'amocrm', '--mode', 'chats'], {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/a sandbox amoCRM \(chats mode\)/);
    expect(r.stdout).toMatch(/amoCRM chat panel: «Здравствуйте! Велосипед ещё продаётся\?» from «Иван»/);
    expect(r.stdout).toMatch(/Avito: Иван gets «Да, продаётся! Можно посмотреть сегодня после 18:00\.»/);
    expect(r.stdout).toMatch(/recognised as our own, not delivered again/);
    expect(r.stdout).toMatch(/Done in [\d.]+ s: \d+ leads, \d+ contacts, 2 chats with \d+ messages in amoCRM's chat panel; 1 reply sent to Avito; internal note sent: no\./);
    expect(r.stdout).toMatch(/AMOCRM_MODE/);
  });

  it('a wrong --crm or --mode exits 2 and names the option and the choices', async () => {
    const crm = await runCli(['demo', '--crm', 'bitrix'], {});
    expect(crm.code).toBe(2);
    expect(crm.stderr).toMatch(/--crm bitrix: no such connector; connectors with a sandbox: amocrm, bitrix24/);
    const mode = await runCli(['demo', '--crm', 'bitrix24', '--mode', 'chats'], {});
    expect(mode.code).toBe(2);
    expect(mode.stderr).toMatch(/--mode chats: the Bitrix24 sandbox has no modes/);
    const amo = await runCli(['demo', '--mode', 'panel'], {});
    expect(amo.code).toBe(2);
    expect(amo.stderr).toMatch(/--mode panel: the amoCRM sandbox has the modes notes, chats/);
  });
});
