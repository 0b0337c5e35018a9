import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { countMessages } from '../src/ledger/messages.js';
import { memoryLogger } from '../src/log/logger.js';
import type { Runtime } from '../src/runtime.js';
import { startDaemon, type Daemon } from '../src/sync/daemon.js';
import { Delivery } from '../src/sync/delivery.js';
import { pollAccount } from '../src/sync/poller.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { fakeEnv, fakeEnvWithAmo, tempDir, testRuntime, waitFor } from './helpers.js';
import { SUITE_DIALECT } from './dialects.js';

/** Issue 9, items 2, 3, 7 and 8: hostile input at the boundary, an honest health check, useful logs. */

let fake: SandboxAvito;
let amo: SandboxAmo | undefined;
let rt: Runtime | undefined;
let daemon: Daemon | undefined;
let cleanup: (() => void) | undefined;
let base: string;
const SECRET = 'test-secret-0123456789';

async function setup(opts: { amo?: boolean; env?: Record<string, string> } = {}) {
  fake = new SandboxAvito();
  await fake.start();
  const t = tempDir();
  cleanup = t.cleanup;
  if (opts.amo) {
    amo = new SandboxAmo();
    await amo.start();
  }
  const env = amo ? fakeEnvWithAmo(fake, amo, t.dir, { WEBHOOK_SECRET: SECRET, ...opts.env }) : fakeEnv(fake, t.dir, { WEBHOOK_SECRET: SECRET, ...opts.env });
  ({ rt } = await testRuntime(env));
}

async function withDaemon() {
  daemon = await startDaemon(rt!, { port: 0, host: '127.0.0.1', initialPoll: false });
  base = `http://127.0.0.1:${daemon.port}`;
}

afterEach(async () => {
  if (daemon) await daemon.stop();
  else await rt?.close().catch(() => undefined);
  daemon = undefined;
  rt = undefined;
  await fake?.stop();
  await amo?.stop();
  amo = undefined;
  cleanup?.();
  cleanup = undefined;
});

function deliver(body: unknown) {
  return fetch(`${base}/webhooks/avito/${SECRET}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function stored() {
  const events = await rt!.ledger.db.selectFrom('webhook_events').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
  return { messages: await countMessages(rt!.ledger.db), events: Number(events.n) };
}

const poll = () => pollAccount({ ledger: rt!.ledger, client: rt!.accounts[0]!.client, log: rt!.log, voice: rt!.voice }, { chatTypes: ['u2i', 'u2u'] });

describe('issue 9: boundaries validate what later code assumes', () => {
  it('invariant 8: content nested 5,000 levels deep gets 400, not 500, and nothing is stored', async () => {
    await setup();
    await withDaemon();
    const chat = fake.addChat();
    const body = fake.webhookBody(chat.id, fake.addMessage(chat.id));
    const deep = JSON.stringify(body).replace('"content":{', `"content":{"x":${'['.repeat(5000)}${']'.repeat(5000)},`);
    const res = await deliver(deep);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/deeper than/);
    expect(await stored()).toEqual({ messages: 0, events: 0 });
    expect((await deliver(body)).status).toBe(200);
  });

  it('ids beyond 2^53: 2^53+1 and 2^53 are refused with 400 instead of collapsing into one message', async () => {
    await setup();
    await withDaemon();
    const chat = fake.addChat();
    const a = fake.webhookBody(chat.id, fake.addMessage(chat.id, { id: 'ID-A' }));
    const b = fake.webhookBody(chat.id, fake.addMessage(chat.id, { id: 'ID-B' }));
    const asNumber = (body: unknown, id: string, n: string) => JSON.stringify(body).replace(`"id":"${id}"`, `"id":${n}`).replace(`"id":"evt-${id}"`, `"id":"evt-${n}"`);
    const r1 = await deliver(asNumber(a, 'ID-A', '9007199254740993'));
    const r2 = await deliver(asNumber(b, 'ID-B', '9007199254740992'));
    expect([r1.status, r2.status]).toEqual([400, 400]);
    expect(((await r1.json()) as { error: string }).error).toMatch(/2\^53/);
    expect(await stored()).toEqual({ messages: 0, events: 0 });
    // Safe numeric ids are fine, and ids as strings of any length too.
    expect((await deliver(asNumber(a, 'ID-A', '9007199254740991'))).status).toBe(200);
    expect((await deliver(JSON.stringify(b).replace('"id":"ID-B"', '"id":"9007199254740993"'))).status).toBe(200);
    expect((await stored()).messages).toBe(2);
  });

  it('invariant 8: created 1e308 in a webhook is refused with 400; in a poll it is recorded and skipped, and the rest is stored', async () => {
    await setup();
    await withDaemon();
    const chat = fake.addChat();
    const bad = fake.addMessage(chat.id, { text: 'from the far future' });
    const body = fake.webhookBody(chat.id, bad) as { payload: { value: Record<string, unknown> } };
    body.payload.value.created = 1e308;
    bad.created = 1e308; // Avito lists it so too
    const res = await deliver(body);
    expect(res.status).toBe(400);
    expect(await stored()).toEqual({ messages: 0, events: 0 });
    for (let i = 0; i < 15; i++) fake.addMessage(chat.id, { text: `good ${i}` });
    const report = await poll();
    expect(report.messagesNew).toBe(15);
    await waitFor(async () => (await rt!.ledger.db.selectFrom('item_errors').selectAll().where('scope', '=', 'avito.message').execute()).length === 1, 10_000, 'the bad message recorded');
    const err = await rt!.ledger.db.selectFrom('item_errors').selectAll().where('scope', '=', 'avito.message').executeTakeFirstOrThrow();
    expect(err).toMatchObject({ ref: bad.id });
    expect(err.error).toMatch(/created: timestamp after 2100/);
    expect(report.cursor).toBeGreaterThan(0);
  });

  it('invariant 8: one message with a created past any date (1e308; 9e18 in PostgreSQL\'s bigint) in the ledger is dead-lettered alone; its 15 neighbours reach amoCRM', async () => {
    await setup({ amo: true });
    const chat = fake.addChat();
    for (let i = 0; i < 16; i++) fake.addMessage(chat.id, { text: `message ${i}` });
    await poll();
    // A row stored before the boundary checked timestamps.
    const victim = fake.chats.get(chat.id)!.messages[7]!.id;
    // PostgreSQL's bigint stops at 9.2e18, which as epoch seconds is still no date.
    const farFuture = SUITE_DIALECT === 'sqlite' ? 1e308 : 9e18;
    await rt!.ledger.db.updateTable('messages').set({ created: farFuture }).where('message_id', '=', victim).execute();
    const [run] = await new Delivery(rt!).runAll();
    expect(run!.report).toMatchObject({ delivered: 15, dead: 1 });
    const dead = await rt!.ledger.db.selectFrom('deliveries').select(['message_id', 'last_error']).where('status', '=', 'dead').execute();
    expect(dead).toEqual([{ message_id: victim, last_error: expect.stringMatching(/Invalid time value/) }]);
  });
});

describe('issue 9: /healthz tells the truth', () => {
  // SQLite only: max_page_count is how a test fills SQLite's disk; PostgreSQL has no per-database equivalent.
  it.skipIf(SUITE_DIALECT !== 'sqlite')('a full disk (max_page_count): writes fail, /healthz says down (503) with the reason, then degraded after recovery', async () => {
    await setup();
    await withDaemon();
    const chat = fake.addChat();
    const pages = Number((await sql<{ page_count: number }>`PRAGMA page_count`.execute(rt!.ledger.db)).rows[0]!.page_count);
    await sql.raw(`PRAGMA max_page_count = ${pages}`).execute(rt!.ledger.db);
    const big = fake.webhookBody(chat.id, fake.addMessage(chat.id, { text: 'x'.repeat(30_000) }));
    expect((await deliver(big)).status).toBe(500);
    const down = await fetch(`${base}/healthz`);
    expect(down.status).toBe(503);
    const downBody = (await down.json()) as { status: string; reasons: string[] };
    expect(downBody.status).toBe('down');
    expect(downBody.reasons.join('\n'), downBody.reasons.join('\n')).toMatch(/SQLITE_FULL/);
    await sql.raw('PRAGMA max_page_count = 1073741823').execute(rt!.ledger.db);
    const after = (await (await fetch(`${base}/healthz`)).json()) as { status: string; reasons: string[] };
    expect(after.status).toBe('degraded');
    expect(after.reasons.join('\n')).toMatch(/a ledger write failed .*SQLITE_FULL|a ledger write failed .*full/);
    expect((await deliver(big)).status).toBe(200);
  });

  it('a loop failing 3 times in a row makes /healthz degraded with the reason; a success clears it', async () => {
    await setup();
    await withDaemon();
    const job = daemon!.pollJobs.get('default')!;
    fake.inject({ op: 'getChatsV2', kind: '500', times: 1000 });
    for (let i = 0; i < 3; i++) await job.trigger();
    const bad = (await (await fetch(`${base}/healthz`)).json()) as { status: string; reasons: string[] };
    expect(bad.status).toBe('degraded');
    expect(bad.reasons.join('\n')).toMatch(/poll for default failed 3 times in a row/);
    fake.inject({ op: 'getChatsV2', kind: '500', times: 0 });
    (fake as unknown as { faults: unknown[] }).faults.length = 0;
    await job.trigger();
    const good = (await (await fetch(`${base}/healthz`)).json()) as { status: string };
    expect(good.status).toBe('ok');
  });
});

describe('issue 9: logs keep error codes, redact secrets by exact path', () => {
  it('error codes are logged (ENOENT, SQLITE_FULL); secrets at their paths are not', () => {
    const { logger, lines } = memoryLogger('info');
    logger.error({ err: Object.assign(new Error('no such file'), { code: 'ENOENT' }) }, 'voice file missing');
    logger.warn({ code: 'SQLITE_FULL', detail: { code: 'E42' } }, 'write failed');
    logger.info({ authCode: 'oauth-code-aaaa', query: { code: 'oauth-code-bbbb' }, client: { access_token: 'tok-cccc', clientSecret: 'sec-dddd' } }, 'oauth');
    const text = lines.join('\n');
    expect(text).toContain('"code":"ENOENT"');
    expect(text).toContain('"code":"SQLITE_FULL"');
    expect(text).toContain('"code":"E42"');
    for (const s of ['oauth-code-aaaa', 'oauth-code-bbbb', 'tok-cccc', 'sec-dddd']) expect(text).not.toContain(s);
  });
});
