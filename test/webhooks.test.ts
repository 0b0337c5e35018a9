import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { countMessages } from '../src/ledger/messages.js';
import type { Runtime } from '../src/runtime.js';
import { startDaemon, type Daemon } from '../src/sync/daemon.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { failInserts } from './dialects.js';
import { fakeEnv, runCli, tempDir, testRuntime, waitFor } from './helpers.js';
import { freePort } from '../src/sandbox/net.js';

let fake: SandboxAvito;
let rt: Runtime;
let daemon: Daemon | undefined;
let cleanup: () => void;
let base: string;

async function setup(env: Record<string, string> = {}, opts: { initialPoll?: boolean } = {}) {
  fake = new SandboxAvito();
  await fake.start();
  const t = tempDir();
  cleanup = t.cleanup;
  ({ rt } = await testRuntime(fakeEnv(fake, t.dir, { WEBHOOK_SECRET: 'test-secret-0123456789', ...env })));
  daemon = await startDaemon(rt, { port: 0, host: '127.0.0.1', initialPoll: opts.initialPoll ?? false });
  base = `http://127.0.0.1:${daemon.port}`;
}

afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
  await fake?.stop();
  cleanup?.();
});

function deliver(body: unknown, secret = 'test-secret-0123456789', headers: Record<string, string> = { 'content-type': 'application/json' }) {
  return fetch(`${base}/webhooks/avito/${secret}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function counts() {
  const events = await rt.ledger.db.selectFrom('webhook_events').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
  return { messages: await countMessages(rt.ledger.db), events: Number(events.n) };
}

describe('Avito webhook intake', () => {
  it('stores the event and its message, then answers 200', async () => {
    await setup();
    const chat = fake.addChat();
    const msg = fake.addMessage(chat.id, { text: 'Здравствуйте! Ещё продаётся?' });
    const res = await deliver(fake.webhookBody(chat.id, msg));
    expect(res.status).toBe(200);
    expect(await counts()).toEqual({ messages: 1, events: 1 });
    const row = await rt.ledger.db.selectFrom('messages').selectAll().executeTakeFirstOrThrow();
    expect(row).toMatchObject({ message_id: msg.id, chat_id: chat.id, text: 'Здравствуйте! Ещё продаётся?', source: 'webhook', is_own: 0 });
  });

  it('a duplicate delivery answers 200 and adds nothing', async () => {
    await setup();
    const chat = fake.addChat();
    const body = fake.webhookBody(chat.id, fake.addMessage(chat.id));
    for (let i = 0; i < 3; i++) expect((await deliver(body)).status).toBe(200);
    // The same message under another event id is a duplicate too.
    expect((await deliver({ ...body, id: 'another-event-id' })).status).toBe(200);
    const c = await counts();
    expect(c.messages).toBe(1);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/avito_sync_webhooks_received_total\{source="avito",result="duplicate"\} 3/);
    expect(text).toMatch(/avito_sync_webhooks_received_total\{source="avito",result="stored"\} 1/);
  });

  it('out-of-order deliveries are all stored and read back in order', async () => {
    await setup();
    const chat = fake.addChat();
    const msgs = [1, 2, 3, 4].map((i) => fake.addMessage(chat.id, { text: `m${i}` }));
    for (const m of [msgs[3]!, msgs[1]!, msgs[0]!, msgs[2]!]) expect((await deliver(fake.webhookBody(chat.id, m))).status).toBe(200);
    const rows = await rt.ledger.db.selectFrom('messages').select('text').where('chat_id', '=', chat.id).orderBy('created').execute();
    expect(rows.map((r) => r.text)).toEqual(['m1', 'm2', 'm3', 'm4']);
  });

  it('many concurrent deliveries are all stored once', async () => {
    await setup();
    const chats = Array.from({ length: 20 }, () => fake.addChat());
    const bodies = chats.flatMap((c) => Array.from({ length: 10 }, () => fake.webhookBody(c.id, fake.addMessage(c.id))));
    const all = [...bodies, ...bodies.slice(0, 50)]; // some twice
    const statuses = await Promise.all(all.map((b) => deliver(b).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect((await counts()).messages).toBe(200);
  });

  it('a message for an unknown chat leaves a stub that a fetch of the chat fills', async () => {
    await setup();
    const chat = fake.addChat();
    fake.items.get(chat.itemId!)!.title = 'Велосипед Stels';
    await deliver(fake.webhookBody(chat.id, fake.addMessage(chat.id)));
    const filled = await waitFor(async () => {
      const row = await rt.ledger.db.selectFrom('chats').selectAll().where('chat_id', '=', chat.id).executeTakeFirst();
      return row?.needs_fetch === 0 ? row : undefined;
    }, 10_000, 'chat details');
    expect(filled!.item_title).toBe('Велосипед Stels');
    expect(filled!.buyer_name).toBe(chat.buyer.name);
  });

  it("recognises the account's own messages (author_id == user_id)", async () => {
    await setup();
    const chat = fake.addChat();
    await deliver(fake.webhookBody(chat.id, fake.addMessage(chat.id, { fromSeller: true, text: 'from the app' })));
    const row = await rt.ledger.db.selectFrom('messages').selectAll().executeTakeFirstOrThrow();
    expect(row.is_own).toBe(1);
    expect(row.direction).toBe('out');
  });

  it("answers Avito's `{}` reachability probe with 200 and stores nothing", async () => {
    await setup();
    expect((await deliver('{}')).status).toBe(200);
    expect(await counts()).toEqual({ messages: 0, events: 0 });
  });

  it('bad input gets a 4xx, stores nothing, and the daemon stays alive', async () => {
    await setup();
    const chat = fake.addChat();
    const good = fake.webhookBody(chat.id, fake.addMessage(chat.id));
    expect((await deliver(good, 'wrong-secret-0123456789')).status).toBe(404);
    expect((await deliver(good, '')).status).toBe(404);
    expect((await deliver('{"id":')).status).toBe(400);
    expect((await deliver('[1,2,3]')).status).toBe(400);
    expect((await deliver({ payload: { type: 'message', value: { chat_id: 'x' } } })).status).toBe(400);
    expect((await deliver({ id: 'e', payload: { type: 'message', value: { ...(good.payload as { value: object }).value, created: 'yesterday' } } })).status).toBe(400);
    expect((await deliver('', undefined, {})).status).toBe(400);
    expect((await deliver('x'.repeat(70_000), undefined, { 'content-type': 'text/plain' })).status).toBe(413);
    expect((await deliver({ ...good, payload: { type: 'message', value: { ...(good.payload as { value: object }).value, user_id: 424242 } } })).status).toBe(422);
    expect(await counts()).toEqual({ messages: 0, events: 0 });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await deliver(good)).status).toBe(200);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/avito_sync_webhooks_rejected_total\{source="avito",reason="wrong_secret"\} 2/);
    expect(text).toMatch(/avito_sync_webhooks_rejected_total\{source="avito",reason="too_large"\} 1/);
  });

  it('keeps unknown event types (acknowledged, not applied)', async () => {
    await setup();
    expect((await deliver({ id: 'evt-x', version: 'v3.0.0', timestamp: 1, payload: { type: 'chat_read', value: { chat_id: 'c' } } })).status).toBe(200);
    expect(await counts()).toEqual({ messages: 0, events: 1 });
  });
});

describe('invariant 4: a webhook is acknowledged only after it is stored', () => {
  it('when the ledger write fails the answer is not 200, and a redelivery after recovery is stored', async () => {
    await setup();
    const chat = fake.addChat();
    const body = fake.webhookBody(chat.id, fake.addMessage(chat.id));
    const undo = await failInserts(rt.ledger, 'webhook_events', 'disk full');
    const res = await deliver(body);
    expect(res.status).toBe(500);
    expect(await counts()).toEqual({ messages: 0, events: 0 });
    await undo();
    expect((await deliver(body)).status).toBe(200);
    expect(await counts()).toEqual({ messages: 1, events: 1 });
  });

  it('the message write failing rolls back the event too', async () => {
    await setup();
    const chat = fake.addChat();
    const body = fake.webhookBody(chat.id, fake.addMessage(chat.id));
    await failInserts(rt.ledger, 'messages', 'disk full');
    expect((await deliver(body)).status).toBe(500);
    expect(await counts()).toEqual({ messages: 0, events: 0 });
  });
});

describe('reconciliation, subscriptions, health', () => {
  it('a poll finds a message no webhook announced', async () => {
    await setup({}, { initialPoll: true });
    const job = daemon!.pollJobs.get('default')!;
    await waitFor(() => job.runs >= 1 && !job.busy, 10_000, 'first poll');
    const chat = fake.addChat();
    const silent = fake.addMessage(chat.id, { text: 'no webhook for me' });
    await job.trigger();
    const row = await rt.ledger.db.selectFrom('messages').selectAll().where('message_id', '=', silent.id).executeTakeFirst();
    expect(row?.source).toBe('poll');
    const health = (await (await fetch(`${base}/healthz`)).json()) as { status: string; accounts: { lastGoodPoll: string | null; token: { state: string } }[] };
    expect(health.status).toBe('ok');
    expect(health.accounts[0]!.lastGoodPoll).toBeTruthy();
    expect(health.accounts[0]!.token.state).toBe('valid');
  });

  it('with PUBLIC_URL, run subscribes once to PUBLIC_URL/webhooks/avito/<secret>', async () => {
    await setup({ PUBLIC_URL: 'https://sync.example.com' });
    expect([...fake.subscriptions.keys()]).toEqual(['https://sync.example.com/webhooks/avito/test-secret-0123456789']);
    await daemon!.stop();
    daemon = await startDaemon((await testRuntime(fakeEnv(fake, path.dirname(rt.ledger.file), { WEBHOOK_SECRET: 'test-secret-0123456789', PUBLIC_URL: 'https://sync.example.com' }))).rt, { port: 0, host: '127.0.0.1', initialPoll: false });
    expect(fake.count('postWebhookV3')).toBe(1);
  });

  it('without WEBHOOK_SECRET a secret is generated once and kept', async () => {
    fake = new SandboxAvito();
    await fake.start();
    const t = tempDir();
    cleanup = t.cleanup;
    ({ rt } = await testRuntime(fakeEnv(fake, t.dir)));
    daemon = await startDaemon(rt, { port: 0, host: '127.0.0.1', initialPoll: false });
    const first = daemon.webhookSecret;
    expect(first.length).toBeGreaterThanOrEqual(32);
    await daemon.stop();
    ({ rt } = await testRuntime(fakeEnv(fake, t.dir)));
    daemon = await startDaemon(rt, { port: 0, host: '127.0.0.1', initialPoll: false });
    expect(daemon.webhookSecret).toBe(first);
  });

  it('metrics expose API calls by status and queue depths', async () => {
    await setup({}, { initialPoll: true });
    await waitFor(() => daemon!.pollJobs.get('default')!.runs >= 1 && !daemon!.pollJobs.get('default')!.busy);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/avito_sync_api_calls_total\{api="avito",operation="GET \/messenger\/v2\/accounts\/\{user_id\}\/chats",status="200"\}/);
    expect(text).toMatch(/avito_sync_queue_depth\{account="default",queue="avito_requests"\} 0/);
    expect(text).toMatch(/avito_sync_token_expiry_timestamp_seconds\{account="default",provider="avito"\}/);
  });
});


describe('the run daemon as a process', () => {
  async function runUntil(env: Record<string, string>, port: number, whileUp: (url: string) => Promise<void>) {
    let ran = false;
    const result = await runCli(['run'], env, {
      onSpawn: (child) => {
        void (async () => {
          const url = `http://127.0.0.1:${port}`;
          await waitFor(async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200, 60_000, 'daemon up'); // a cold start on a loaded machine
          await whileUp(url);
          ran = true;
          child.kill('SIGTERM');
        })();
      },
    });
    return { ...result, ran };
  }

  it('SIGTERM stops intake, finishes work, closes the ledger and exits 0', async () => {
    fake = new SandboxAvito();
    await fake.start();
    const t = tempDir();
    cleanup = t.cleanup;
    fake.seed(30, 5);
    const port = await freePort();
    const env = fakeEnv(fake, t.dir, { PORT: String(port), WEBHOOK_SECRET: 'test-secret-0123456789', LOG_LEVEL: 'info' });
    const result = await runUntil(env, port, async (url) => {
      await waitFor(async () => ((await (await fetch(`${url}/healthz`)).json()) as { accounts: { lastGoodPoll: string | null }[] }).accounts[0]!.lastGoodPoll, 15_000, 'first poll');
      const chat = fake.addChat();
      base = url;
      expect((await deliver(fake.webhookBody(chat.id, fake.addMessage(chat.id)))).status).toBe(200);
    });
    expect(result.ran).toBe(true);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/"msg":"stopped"/);
    const status = await runCli(['status', '--json'], env);
    expect(JSON.parse(status.stdout).accounts[0].messages).toBe(151);
  });

  it('SIGTERM in the middle of a slow poll exits 0 within 10 s; the next run completes it without duplicates', async () => {
    fake = new SandboxAvito();
    await fake.start();
    const t = tempDir();
    cleanup = t.cleanup;
    fake.seed(60, 3);
    const port = await freePort();
    const env = fakeEnv(fake, t.dir, { PORT: String(port), WEBHOOK_SECRET: 'test-secret-0123456789', AVITO_REQUESTS_PER_SECOND: '20' });
    const result = await runUntil(env, port, async () => {
      await waitFor(() => fake.count('getMessagesV3') >= 5, 15_000, 'poll under way');
    });
    expect(result.code, result.stderr).toBe(0); // a hang past the test timeout would fail it too
    const again = await runCli(['sync', '--once'], env);
    expect(again.code, again.stderr).toBe(0);
    const status = JSON.parse((await runCli(['status', '--json'], env)).stdout) as { accounts: { messages: number }[] };
    expect(status.accounts[0]!.messages).toBe(180);
  });
});

describe('webhooks CLI', () => {
  it('list, subscribe and unsubscribe', async () => {
    fake = new SandboxAvito();
    await fake.start();
    const t = tempDir();
    cleanup = t.cleanup;
    const env = fakeEnv(fake, t.dir, { PUBLIC_URL: 'https://sync.example.com', WEBHOOK_SECRET: 'test-secret-0123456789' });
    expect((await runCli(['webhooks', 'subscribe'], env)).code).toBe(0);
    const list = await runCli(['webhooks', 'list'], env);
    expect(list.stdout).toMatch(/← this daemon/);
    expect(list.stdout).toContain('https://sync.example.com/webhooks/avito/test…');
    expect(list.stdout).not.toContain('test-secret-0123456789');
    expect((await runCli(['webhooks', 'unsubscribe'], env)).code).toBe(0);
    expect(fake.subscriptions.size).toBe(0);
    const noUrl = await runCli(['webhooks', 'subscribe'], fakeEnv(fake, t.dir));
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toMatch(/PUBLIC_URL/);
  });
});
