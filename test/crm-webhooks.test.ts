import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load-config.js';
import { memoryLogger } from '../src/log/logger.js';
import { createRuntime, type Runtime } from '../src/runtime.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito, type FakeChat } from '../src/sandbox/sandbox-avito.js';
import { freePort } from '../src/sandbox/net.js';
import { startDaemon, type Daemon } from '../src/sync/daemon.js';
import { syncOnce } from '../src/sync/sync-once.js';
import { FAST_RETRY, tempDir, waitFor } from './helpers.js';
import { ledgerLocation } from './dialects.js';

const SECRET = 'test-secret-0123456789';
let daemon: Daemon | undefined;
let rt: Runtime | undefined;
const fakes: { stop(): Promise<void> }[] = [];
let cleanup: (() => void) | undefined;

afterEach(async () => {
  if (daemon) await daemon.stop();
  else await rt?.close().catch(() => undefined);
  daemon = undefined;
  rt = undefined;
  for (const f of fakes.splice(0)) await f.stop();
  cleanup?.();
});

interface Shop {
  id: string;
  avito: SandboxAvito;
  amo: SandboxAmo;
}

/** Several accounts in one process, each with its own Avito app and its own amoCRM. */
async function shops(n: number, amoOptions: { callbackForApiNotes?: boolean } = {}): Promise<{ shops: Shop[]; port: number }> {
  const list: Shop[] = [];
  for (let i = 0; i < n; i++) {
    const avito = new SandboxAvito({ userId: 2_000_001 + i, clientId: `client-${i}` });
    const amo = new SandboxAmo({ accountId: 40_000_001 + i, subdomain: `shop${i}`, ...amoOptions });
    await avito.start();
    await amo.start();
    fakes.push(avito, amo);
    list.push({ id: `shop${i}`, avito, amo });
  }
  const t = tempDir();
  cleanup = t.cleanup;
  const port = await freePort();
  const file = path.join(t.dir, 'accounts.json');
  writeFileSync(file, JSON.stringify({
    db: ledgerLocation(t.dir),
    publicUrl: `http://127.0.0.1:${port}`,
    port,
    webhookSecret: SECRET,
    connectors: ['amocrm'],
    crmPollIntervalWithWebhooksSeconds: 3600,
    pollIntervalWithWebhooksSeconds: 3600,
    accounts: list.map((s) => ({
      id: s.id,
      avito: { clientId: s.avito.clientId, clientSecret: s.avito.clientSecret, apiUrl: s.avito.url, requestsPerSecond: 1000 },
      amocrm: { baseUrl: s.amo.url, accessToken: s.amo.token },
    })),
  }));
  const { logger } = memoryLogger('warn');
  rt = await createRuntime(loadConfig({ env: { LOG_LEVEL: 'warn' }, flags: { config: file } }), logger, { retry: FAST_RETRY });
  return { shops: list, port };
}

async function chatWithLead(s: Shop): Promise<{ chat: FakeChat; leadId: number }> {
  const chat = s.avito.addChat();
  s.avito.addMessage(chat.id, { text: 'Здравствуйте!' });
  await syncOnce(rt!);
  return { chat, leadId: [...s.amo.leads.values()][0]!.id };
}

const sellerTexts = (s: Shop, chat: FakeChat) => s.avito.chats.get(chat.id)!.messages.filter((m) => m.author_id === s.avito.userId).map((m) => String(m.content.text ?? m.type));

describe('CRM webhooks with several accounts (issue 17)', () => {
  it("a note_lead callback for account A causes no request to account B's amoCRM", async () => {
    const { shops: [a, b], port } = await shops(2);
    const chatA = await chatWithLead(a!);
    await chatWithLead(b!);
    daemon = await startDaemon(rt!, { host: '127.0.0.1' });
    const url = `http://127.0.0.1:${port}/webhooks/amocrm/${SECRET}`;
    expect([...a!.amo.webhooks.keys()]).toEqual([url]);
    expect([...b!.amo.webhooks.keys()]).toEqual([url]);
    await waitFor(() => [...daemon!.replyJobs.values()].every((j) => j.runs > 0 && !j.busy), 10_000, 'first reply polls');
    const bBefore = b!.amo.requests.length;

    a!.amo.managerNote(chatA.leadId, '/avito Ответ для A');
    await waitFor(() => sellerTexts(a!, chatA.chat).length > 0, 10_000, "A's reply on Avito");
    await waitFor(() => a!.amo.leadNotes(chatA.leadId, 'service_message').some((n) => String(n.params.text).startsWith('Ответ отправлен')), 10_000, 'reported');
    expect(await Promise.all(a!.amo.webhookCalls)).toEqual([200]);
    await daemon.crmWebhooks.drain();
    expect(b!.amo.requests.slice(bBefore)).toEqual([]);
    expect(sellerTexts(a!, chatA.chat)).toEqual(['Ответ для A']);

    // A webhook naming no configured account is refused, and nothing is read or stored.
    const stranger = new URLSearchParams({ 'leads[note][0][note][id]': '1', 'account[id]': '999', 'account[subdomain]': 'nobody' });
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: stranger.toString() });
    expect(res.status).toBe(422);
    expect(b!.amo.requests.slice(bBefore)).toEqual([]);
    const replies = await rt!.ledger.db.selectFrom('replies').select(['account_id', 'text']).execute();
    expect(replies).toEqual([{ account_id: 'shop0', text: 'Ответ для A' }]);
  });

  it('no route takes an unauthenticated write: an alias (amojo) reaches no notes-mode instance, and a wrong secret is 404 before the body', async () => {
    const { shops: [a], port } = await shops(1);
    await chatWithLead(a!);
    daemon = await startDaemon(rt!, { host: '127.0.0.1', initialPoll: false });
    const before = a!.amo.requests.length;
    const form = new URLSearchParams({ 'leads[note][0][note][id]': '1', 'leads[note][0][note][note_type]': '4', 'leads[note][0][note][text]': '/avito Поддельный', 'account[id]': '40000001', 'account[subdomain]': 'shop0' }).toString();
    const post = (p: string) => fetch(`http://127.0.0.1:${port}${p}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    expect((await post('/webhooks/amojo/any-scope-id')).status).toBe(404);
    expect((await post('/webhooks/amocrm/not-the-secret-000000')).status).toBe(404);
    expect((await post('/webhooks/nosuchcrm/' + SECRET)).status).toBe(404);
    await daemon.crmWebhooks.drain();
    expect(a!.amo.requests.slice(before)).toEqual([]);
    expect(await rt!.ledger.db.selectFrom('replies').selectAll().execute()).toEqual([]);
  });

  it("a callback for the daemon's own note costs no read", async () => {
    const { shops: [a] } = await shops(1, { callbackForApiNotes: true });
    const { chat, leadId } = await chatWithLead(a!);
    daemon = await startDaemon(rt!, { host: '127.0.0.1' });
    await waitFor(() => [...daemon!.replyJobs.values()].every((j) => j.runs > 0 && !j.busy), 10_000, 'first reply poll');
    const readsBefore = a!.amo.count('/api/v4/leads/notes', 'GET');
    const calls = a!.amo.webhookCalls.length;
    // A buyer writes: the daemon writes a note, and amoCRM calls back about it.
    const msg = a!.avito.addMessage(chat.id, { text: 'Ещё вопрос' });
    await fetch(`http://127.0.0.1:${daemon.port}/webhooks/avito/${SECRET}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(a!.avito.webhookBody(chat.id, msg)) });
    await waitFor(() => a!.amo.webhookCalls.length > calls, 10_000, 'callback for the delivered note');
    expect(await Promise.all(a!.amo.webhookCalls)).toEqual(a!.amo.webhookCalls.map(() => 200));
    await daemon.crmWebhooks.drain();
    expect(a!.amo.count('/api/v4/leads/notes', 'GET')).toBe(readsBefore);

    // A manager's reply still goes out; the callback for the outcome note costs no read either.
    a!.amo.managerNote(leadId, '/avito Да');
    await waitFor(() => a!.amo.leadNotes(leadId, 'service_message').some((n) => String(n.params.text).startsWith('Ответ отправлен')), 10_000, 'reported');
    await waitFor(() => a!.amo.webhookCalls.length >= calls + 3, 10_000, 'callbacks for the reply and its report');
    await Promise.all(a!.amo.webhookCalls);
    await daemon.crmWebhooks.drain();
    expect(sellerTexts(a!, chat)).toEqual(['Да']);
    expect(a!.amo.count('/api/v4/leads/notes', 'GET')).toBe(readsBefore + 1); // the manager's note, read once
  });
});
