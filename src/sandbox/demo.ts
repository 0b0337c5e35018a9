import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ConnectorDefinition } from '../connector-sdk/contract.js';
import { BUILT_IN_CONNECTORS } from '../connector/built-ins.js';
import { loadConfig } from '../config/load-config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { createRuntime } from '../runtime.js';
import { startDaemon } from '../sync/daemon.js';
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
  /** The connector whose sandbox CRM the demo uses (`--crm`). Default: the first known one that has a sandbox. */
  connector?: string;
  /** One of the connector's `sandboxModes` (`--mode`). Default: its first. */
  mode?: string;
  /** The connectors to choose from. Default: the built-ins. */
  known?: readonly ConnectorDefinition[];
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
 * `avito-sync demo`: a sandbox Avito and the connector's sandbox CRM (its definition's `sandbox`)
 * on loopback, the real daemon between them (webhooks both ways), and a short story: buyers
 * write, conversations and messages appear in the CRM, a manager replies from the CRM and the
 * buyer gets it on Avito. Avito has no sandbox; this one does.
 */
export interface DemoActions {
  /** The buyer (Иван) writes on Avito; resolves with what happened in the CRM. */
  buyer(text: string): Promise<string>;
  /** The manager answers in Иван's conversation; resolves when Avito has it. */
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
  const known = o.known ?? BUILT_IN_CONNECTORS;
  const def = o.connector ? known.find((d) => d.id === o.connector) : known.find((d) => d.sandbox);
  if (!def?.sandbox) {
    const withSandbox = known.filter((d) => d.sandbox).map((d) => d.id).join(', ') || 'none';
    if (!o.connector) throw new ConfigError('No known connector has a sandbox for the demo.', '--crm');
    throw new ConfigError(def ? `--crm ${o.connector}: ${def.displayName} has no sandbox for the demo; connectors with one: ${withSandbox}.` : `--crm ${o.connector}: no such connector; connectors with a sandbox: ${withSandbox}.`, '--crm');
  }
  const modes = def.sandboxModes ?? []; // a module built against an older SDK may lack it
  if (o.mode !== undefined && !modes.includes(o.mode)) {
    throw new ConfigError(modes.length ? `--mode ${o.mode}: the ${def.displayName} sandbox has the modes ${modes.join(', ')}.` : `--mode ${o.mode}: the ${def.displayName} sandbox has no modes.`, '--mode');
  }
  const mode = o.mode ?? modes[0];
  const crmName = def.displayName;
  const port = await freePort();
  const daemonUrl = `http://127.0.0.1:${port}`;
  const webhookSecret = randomBytes(18).toString('base64url');
  const avito = new SandboxAvito();
  await avito.start();
  const crm = await def.sandbox({ publicUrl: daemonUrl, webhookSecret, mode }).catch(async (err: unknown) => {
    await avito.stop();
    throw err;
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-sync-demo-'));
  // The console's connect buttons go to the sandbox Avito's consent page, which sends the code back here.
  const consolePassword = o.console ? randomBytes(9).toString('base64url') : undefined;
  avito.oauthRedirectUri = `${daemonUrl}/oauth/avito/callback`;
  const config = loadConfig({
    known,
    env: {
      AVITO_CLIENT_ID: avito.clientId, AVITO_CLIENT_SECRET: avito.clientSecret, AVITO_API_URL: avito.url,
      ...crm.env, AVITO_SYNC_CONNECTORS: def.id, AVITO_SYNC_DB: path.join(dir, 'demo.db'),
      PUBLIC_URL: daemonUrl, PORT: String(port), LOG_LEVEL: 'warn', WEBHOOK_SECRET: webhookSecret,
      ...(consolePassword ? { CONSOLE_PASSWORD: consolePassword, AVITO_OAUTH_URL: `${avito.url}/oauth` } : {}),
    },
  });
  const rt = await createRuntime(config, o.log);
  const daemon = await startDaemon(rt, { host: '127.0.0.1' });
  const stop = async () => {
    await daemon.stop();
    await avito.stop();
    await crm.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  const urls: Record<string, string> = { 'sandbox Avito': avito.url, [`sandbox ${crmName}`]: crm.url, daemon: daemonUrl, ledger: rt.ledger.file };
  if (consolePassword) Object.assign(urls, { console: `${daemonUrl}/console`, 'console password': consolePassword });
  const env: Record<string, string> = {
    AVITO_CLIENT_ID: avito.clientId, AVITO_CLIENT_SECRET: avito.clientSecret, AVITO_API_URL: avito.url,
    ...crm.env, AVITO_SYNC_DB: rt.ledger.file, WEBHOOK_SECRET: webhookSecret,
  };
  let act: DemoActions = {
    buyer: () => Promise.reject(new Error('the demo story has not finished yet')),
    manager: () => Promise.reject(new Error('the demo story has not finished yet')),
  };
  const t0 = Date.now();
  const at = () => `+${((Date.now() - t0) / 1000).toFixed(1).padStart(4)} s`;
  const { say } = o;
  try {
    say(`avito-sync demo — a sandbox Avito and a sandbox ${crmName}${mode ? ` (${mode} mode)` : ''} on 127.0.0.1, the real daemon between them.`);
    say(`  daemon ${urls.daemon}  ·  Avito ${avito.url}  ·  ${crmName} ${crm.url}`);
    say('');
    await until(() => avito.subscriptions.size > 0 && (!def.capabilities.webhooks || crm.webhookRegistered()), 'webhook subscriptions');
    say(`${at()}  the daemon subscribed to Avito webhooks${def.capabilities.webhooks ? (crm.webhookStory ? `; ${crm.webhookStory}` : ` and to ${crmName} webhooks`) : ''}`);

    const bike = avito.addItem({ id: 4_100_000_001, title: 'Велосипед Stels Navigator 500', price: 12_500 });
    const phone = avito.addItem({ id: 4_100_000_002, title: 'iPhone 13, 128 ГБ', price: 45_000 });
    const ivanChat = avito.addChat({ itemId: bike.id, buyerName: 'Иван' });
    const mariaChat = avito.addChat({ itemId: phone.id, buyerName: 'Мария' });

    const buyerWrites = async (chat: typeof ivanChat, text: string, extra: Parameters<SandboxAvito['addMessage']>[1] = {}) => {
      const m = avito.addMessage(chat.id, { text, ...extra });
      const started = Date.now();
      await avito.pushWebhook(chat.id, m);
      const where = await until(() => crm.delivered(m.id), `the message in ${crmName}`);
      return { m, where, ms: Date.now() - started };
    };

    say(`${at()}  Avito: Иван asks about «${bike.title}»: «Здравствуйте! Велосипед ещё продаётся?»`);
    const first = await buyerWrites(ivanChat, 'Здравствуйте! Велосипед ещё продаётся?');
    say(`${at()}  ${first.where.describe}; first message there in ${first.ms} ms`);

    say(`${at()}  Avito: Мария asks about «${phone.title}» and sends a photo`);
    await buyerWrites(mariaChat, 'Добрый день, торг возможен?');
    const photo = await buyerWrites(mariaChat, '', { type: 'image', content: { image: { sizes: { '140x105': `${avito.url}/img/140x105/p.jpg`, '1280x960': `${avito.url}/img/1280x960/p.jpg` } } } });
    say(`${at()}  ${photo.where.describe}; the photo arrives as a link to the largest size`);

    if (def.capabilities.replies) {
      const conv = first.where.conversation;
      say(`${at()}  ${crmName}: the manager writes an internal note «проверить комплектацию» — it stays in the CRM`);
      crm.writeInternal(conv, 'проверить комплектацию');
      const reply = 'Да, продаётся! Можно посмотреть сегодня после 18:00.';
      const replyStarted = Date.now();
      say(`${at()}  ${crm.writeReply(conv, reply).story}`);
      const sent = await until(() => avito.chats.get(ivanChat.id)!.messages.find((m) => m.author_id === avito.userId && m.content.text === reply), 'the reply at Avito');
      say(`${at()}  Avito: Иван gets «${String(sent.content.text)}» — ${Date.now() - replyStarted} ms after the manager wrote it`);
      await until(() => crm.replyOutcomeWritten(conv), 'the outcome in the CRM');
      say(`${at()}  ${crmName}: a short note in the conversation says the reply was sent (it does not repeat it)`);

      await avito.pushWebhook(ivanChat.id, sent); // Avito echoes our own message back
      await daemon.dispatchJobs.get(`default/${def.id}`)?.trigger();
      const echoed = crm.delivered(sent.id) !== undefined;
      say(`${at()}  Avito echoed the reply back by webhook: ${echoed ? 'DELIVERED AGAIN (unexpected)' : 'recognised as our own, not delivered again'}`);
    }

    const again = await buyerWrites(ivanChat, 'Отлично, приеду в 19:00');
    say(`${at()}  Avito: Иван answers «Отлично, приеду в 19:00» → the same conversation (${again.where.conversation === first.where.conversation ? 'yes' : 'NO, unexpected'}) in ${again.ms} ms`);

    act = {
      async buyer(text) {
        const r = await buyerWrites(ivanChat, text);
        return `Иван wrote «${text}» on Avito → ${r.where.where} after ${r.ms} ms`;
      },
      async manager(text) {
        if (!def.capabilities.replies) throw new Error(`${crmName} has no replies in this connector`);
        const started = Date.now();
        const before = avito.chats.get(ivanChat.id)!.messages.length;
        const written = crm.writeReply(first.where.conversation, text);
        await until(() => avito.chats.get(ivanChat.id)!.messages.slice(before).find((m) => m.author_id === avito.userId && m.content.text === written.reply), 'the reply at Avito');
        return `${written.story} → Иван got «${written.reply}» on Avito after ${Date.now() - started} ms`;
      },
    };
    const internalSent = avito.chats.get(ivanChat.id)!.messages.some((m) => String(m.content.text ?? '').includes('комплектацию'));
    say('');
    say(`Done in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${crm.summary()}; ${def.capabilities.replies ? '1 reply' : 'no replies'} sent to Avito; internal note sent: ${internalSent ? 'YES (unexpected)' : 'no'}.`);
    const needed = ['AVITO_CLIENT_ID', 'AVITO_CLIENT_SECRET', ...Object.keys(crm.env)];
    say(`Next: set ${needed.slice(0, -1).join(', ')} and ${needed.at(-1)}, then \`npx avito-sync doctor\` and \`npx avito-sync run\`.`);
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
