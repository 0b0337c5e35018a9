import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { loadConfig } from '../config/load-config.js';
import type { Logger } from '../log/logger.js';
import { createRuntime } from '../runtime.js';
import { startDaemon } from '../sync/daemon.js';
import { SandboxAmo } from './sandbox-amocrm.js';
import { SandboxAvito } from './sandbox-avito.js';
import { freePort } from './net.js';

export interface DemoOptions {
  log: Logger;
  /** Prints a line of the demo's story. */
  say: (line: string) => void;
  /** Keep everything running after the story, until the returned stop is called. */
  keep?: boolean;
  /** Turn the console on with a fresh password (printed); implies keep. */
  console?: boolean;
}


async function until<T>(check: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`the demo waited ${timeoutMs / 1000} s for ${what}`);
    await delay(20);
  }
}

/**
 * `avito-sync demo`: a sandbox Avito and a sandbox amoCRM on loopback, the real daemon between
 * them (webhooks both ways), and a short story: buyers write, leads and notes appear, a manager
 * replies from the CRM and the buyer gets it on Avito. Avito has no sandbox; this one does.
 */
export interface DemoActions {
  /** The buyer (Иван) writes on Avito; resolves with what happened in the CRM. */
  buyer(text: string): Promise<string>;
  /** The manager answers on the lead (the reply prefix is added when missing); resolves when Avito has it. */
  manager(text: string): Promise<string>;
}

export interface DemoHandle {
  stop: () => Promise<void>;
  urls: Record<string, string>;
  /** Variables that point `doctor`, `status`, `chats list`, `reconcile` at the sandboxes. */
  env: Record<string, string>;
  act: DemoActions;
}

export async function runDemo(o: DemoOptions): Promise<DemoHandle> {
  const avito = new SandboxAvito();
  const amo = new SandboxAmo();
  await avito.start();
  await amo.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-sync-demo-'));
  const port = await freePort();
  const daemonUrl = `http://127.0.0.1:${port}`;
  // The console's connect buttons go to the sandbox Avito's consent page, which sends the code back here.
  const consolePassword = o.console ? randomBytes(9).toString('base64url') : undefined;
  avito.oauthRedirectUri = `${daemonUrl}/oauth/avito/callback`;
  const config = loadConfig({
    env: {
      AVITO_CLIENT_ID: avito.clientId, AVITO_CLIENT_SECRET: avito.clientSecret, AVITO_API_URL: avito.url,
      AMOCRM_BASE_URL: amo.url, AMOCRM_ACCESS_TOKEN: amo.token, AVITO_SYNC_DB: path.join(dir, 'demo.db'),
      PUBLIC_URL: daemonUrl, PORT: String(port), LOG_LEVEL: 'warn',
      ...(consolePassword ? { CONSOLE_PASSWORD: consolePassword, AVITO_OAUTH_URL: `${avito.url}/oauth` } : {}),
    },
  });
  const rt = await createRuntime(config, o.log);
  const daemon = await startDaemon(rt, { host: '127.0.0.1' });
  const stop = async () => {
    await daemon.stop();
    await avito.stop();
    await amo.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  const urls: Record<string, string> = { 'sandbox Avito': avito.url, 'sandbox amoCRM': amo.url, daemon: daemonUrl, ledger: rt.ledger.file };
  if (consolePassword) Object.assign(urls, { console: `${daemonUrl}/console`, 'console password': consolePassword });
  const env: Record<string, string> = {
    AVITO_CLIENT_ID: avito.clientId, AVITO_CLIENT_SECRET: avito.clientSecret, AVITO_API_URL: avito.url,
    AMOCRM_BASE_URL: amo.url, AMOCRM_ACCESS_TOKEN: amo.token, AVITO_SYNC_DB: rt.ledger.file,
  };
  let act: DemoActions = {
    buyer: () => Promise.reject(new Error('the demo story has not finished yet')),
    manager: () => Promise.reject(new Error('the demo story has not finished yet')),
  };
  const t0 = Date.now();
  const at = () => `+${((Date.now() - t0) / 1000).toFixed(1).padStart(4)} s`;
  const { say } = o;
  try {
    say('avito-sync demo — a sandbox Avito and a sandbox amoCRM on 127.0.0.1, the real daemon between them.');
    say(`  daemon ${urls.daemon}  ·  Avito ${avito.url}  ·  amoCRM ${amo.url}`);
    say('');
    await until(() => avito.subscriptions.size > 0 && amo.webhooks.size > 0, 'webhook subscriptions');
    say(`${at()}  the daemon subscribed to Avito webhooks and to amoCRM note_lead webhooks`);

    const bike = avito.addItem({ id: 4_100_000_001, title: 'Велосипед Stels Navigator 500', price: 12_500 });
    const phone = avito.addItem({ id: 4_100_000_002, title: 'iPhone 13, 128 ГБ', price: 45_000 });
    const ivanChat = avito.addChat({ itemId: bike.id, buyerName: 'Иван' });
    const mariaChat = avito.addChat({ itemId: phone.id, buyerName: 'Мария' });

    const buyerWrites = async (chat: typeof ivanChat, text: string, extra: Parameters<SandboxAvito['addMessage']>[1] = {}) => {
      const m = avito.addMessage(chat.id, { text, ...extra });
      const started = Date.now();
      await avito.pushWebhook(chat.id, m);
      const note = await until(() => [...amo.notes.values()].find((n) => String(n.params.text).endsWith(`#avito:${m.id}`)), 'the note in amoCRM');
      return { m, note, ms: Date.now() - started };
    };

    say(`${at()}  Avito: Иван asks about «${bike.title}»: «Здравствуйте! Велосипед ещё продаётся?»`);
    const first = await buyerWrites(ivanChat, 'Здравствуйте! Велосипед ещё продаётся?');
    const ivanLead = amo.leads.get(first.note.entity_id)!;
    const contact = amo.contacts.get(ivanLead.contacts[0]!);
    say(`${at()}  amoCRM: lead #${ivanLead.id} «${ivanLead.name}», ${ivanLead.price.toLocaleString('ru-RU')} ₽, tag ${ivanLead.tags.join(', ')}, contact «${contact?.name}», first note in ${first.ms} ms`);

    say(`${at()}  Avito: Мария asks about «${phone.title}» and sends a photo`);
    await buyerWrites(mariaChat, 'Добрый день, торг возможен?');
    const photo = await buyerWrites(mariaChat, '', { type: 'image', content: { image: { sizes: { '140x105': `${avito.url}/img/140x105/p.jpg`, '1280x960': `${avito.url}/img/1280x960/p.jpg` } } } });
    say(`${at()}  amoCRM: lead #${photo.note.entity_id} «${amo.leads.get(photo.note.entity_id)!.name}»; the photo is a note with a link to the largest size`);

    say(`${at()}  amoCRM: the manager writes an internal note «проверить комплектацию» — it stays in the CRM`);
    amo.managerNote(ivanLead.id, 'проверить комплектацию');
    const reply = 'Да, продаётся! Можно посмотреть сегодня после 18:00.';
    say(`${at()}  amoCRM: the manager answers with a note «/avito ${reply}»`);
    const replyStarted = Date.now();
    amo.managerNote(ivanLead.id, `/avito ${reply}`);
    const sent = await until(() => avito.chats.get(ivanChat.id)!.messages.find((m) => m.author_id === avito.userId && m.content.text === reply), 'the reply at Avito');
    say(`${at()}  Avito: Иван gets «${String(sent.content.text)}» — ${Date.now() - replyStarted} ms after the note`);
    await until(() => amo.leadNotes(ivanLead.id, 'service_message').some((n) => String(n.params.text).startsWith('Ответ отправлен')), 'the outcome note');
    say(`${at()}  amoCRM: a short note on the lead says the reply was sent (it does not repeat it)`);

    await avito.pushWebhook(ivanChat.id, sent); // Avito echoes our own message back
    await daemon.dispatchJobs.get('default/amocrm')?.trigger();
    const echoed = [...amo.notes.values()].some((n) => String(n.params.text).endsWith(`#avito:${sent.id}`));
    say(`${at()}  Avito echoed the reply back by webhook: ${echoed ? 'DELIVERED AGAIN (unexpected)' : 'recognised as our own, not a new note'}`);

    const again = await buyerWrites(ivanChat, 'Отлично, приеду в 19:00');
    say(`${at()}  Avito: Иван answers «Отлично, приеду в 19:00» → note on the same lead #${again.note.entity_id} in ${again.ms} ms`);

    act = {
      async buyer(text) {
        const r = await buyerWrites(ivanChat, text);
        return `Иван wrote «${text}» on Avito → note on lead #${r.note.entity_id} in amoCRM after ${r.ms} ms`;
      },
      async manager(text) {
        const body = text.startsWith('/avito') ? text : `/avito ${text}`;
        const reply = body.replace(/^\/avito\s*/, '');
        const started = Date.now();
        const before = avito.chats.get(ivanChat.id)!.messages.length;
        amo.managerNote(ivanLead.id, body);
        await until(() => avito.chats.get(ivanChat.id)!.messages.slice(before).find((m) => m.author_id === avito.userId && m.content.text === reply), 'the reply at Avito');
        return `the manager wrote «${body}» on lead #${ivanLead.id} → Иван got «${reply}» on Avito after ${Date.now() - started} ms`;
      },
    };
    const internalSent = avito.chats.get(ivanChat.id)!.messages.some((m) => String(m.content.text ?? '').includes('комплектацию'));
    say('');
    say(`Done in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${amo.leads.size} leads, ${amo.contacts.size} contacts, ${amo.notes.size} notes in amoCRM; 1 reply sent to Avito; internal note sent: ${internalSent ? 'YES (unexpected)' : 'no'}.`);
    say('Next: set AVITO_CLIENT_ID, AVITO_CLIENT_SECRET, AMOCRM_BASE_URL and AMOCRM_ACCESS_TOKEN, then `npx avito-sync doctor` and `npx avito-sync run`.');
  } catch (err) {
    await stop();
    throw err;
  }
  if (!o.keep && !o.console) {
    await stop();
    return { stop: async () => undefined, urls, env, act };
  }
  return { stop, urls, env, act };
}
