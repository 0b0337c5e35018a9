import { statSync } from 'node:fs';
import type { AvitoClient } from '../avito/client.js';
import { RemoteApiError } from '../errors.js';
import type { Runtime } from '../runtime.js';

export type Verdict = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  check: string;
  verdict: Verdict;
  /** One line: what was found. */
  detail: string;
  /** What to do about it (for warn and fail). */
  action?: string;
}

function fromError(check: string, err: unknown): CheckResult {
  if (err instanceof RemoteApiError) return { check, verdict: 'fail', detail: `${err.provider} answered ${err.status || 'nothing'}${err.remoteMessage ? `: ${err.remoteMessage}` : ''}`, action: err.hint };
  return { check, verdict: 'fail', detail: err instanceof Error ? err.message : String(err) };
}

/** The ledger: opened (migrations ran), and readable by its owner only (invariant 6). */
export function ledgerChecks(rt: Runtime): CheckResult[] {
  const out: CheckResult[] = [{ check: 'ledger', verdict: 'ok', detail: `${rt.ledger.file} opened, migrations current` }];
  // A PostgreSQL ledger's access is the server's business (its roles); a file's is its mode.
  if (rt.ledger.dialect === 'sqlite' && rt.ledger.file !== ':memory:') {
    const mode = statSync(rt.ledger.file).mode & 0o777;
    out.push(mode & 0o077
      ? { check: 'ledger permissions', verdict: 'fail', detail: `mode ${mode.toString(8)}: others can read the ledger`, action: `chmod 600 ${rt.ledger.file}` }
      : { check: 'ledger permissions', verdict: 'ok', detail: 'readable by its owner only (0600)' });
  }
  return out;
}

/**
 * The Avito half of `doctor`: credentials, the account, Messenger access (402 = tariff),
 * chat access (403 on a chat with a good token = an employee's key), webhook subscriptions.
 */
export async function avitoChecks(client: AvitoClient, opts: { configuredUserId?: string | undefined; publicWebhookUrl?: string | undefined; knownChatId?: string | undefined }): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  try {
    await client.tokens.refresh('doctor');
    results.push({ check: 'Avito credentials', verdict: 'ok', detail: `token issued, valid until ${new Date(client.tokens.expiresAt ?? 0).toISOString()}` });
  } catch (err) {
    results.push(fromError('Avito credentials', err));
    return results;
  }
  try {
    const self = await client.getSelf();
    if (opts.configuredUserId && opts.configuredUserId !== self.id) {
      results.push({ check: 'Avito account', verdict: 'fail', detail: `the key belongs to user ${self.id}, AVITO_USER_ID says ${opts.configuredUserId}`, action: `Set AVITO_USER_ID=${self.id} or remove it (it is read from the key).` });
    } else {
      results.push({ check: 'Avito account', verdict: 'ok', detail: `user ${self.id}${self.name ? ` (${self.name})` : ''}` });
    }
  } catch (err) {
    results.push(fromError('Avito account', err));
    return results;
  }
  let firstChat: string | undefined;
  try {
    const chats = await client.listChats({ limit: 1, chatTypes: ['u2i', 'u2u'] });
    // A chat the ledger already knows is the better probe: an employee's key does not even list the company's chats.
    firstChat = opts.knownChatId ?? chats[0]?.id;
    results.push({ check: 'Avito Messenger API', verdict: 'ok', detail: firstChat ? 'chats can be listed' : 'chats can be listed (none yet)' });
  } catch (err) {
    results.push(fromError('Avito Messenger API', err));
    return results;
  }
  if (firstChat) {
    try {
      await client.listMessages(firstChat, { limit: 1 });
      results.push({ check: 'Avito chat access', verdict: 'ok', detail: 'messages can be read (the key is not an employee key)' });
    } catch (err) {
      results.push(fromError('Avito chat access', err));
    }
  } else {
    results.push({ check: 'Avito chat access', verdict: 'warn', detail: 'no chat to try: employee-key symptoms cannot be checked yet', action: "Make sure the key is the company's main account key, not an employee's." });
  }
  try {
    const subs = await client.listSubscriptions();
    if (!opts.publicWebhookUrl) {
      results.push({ check: 'Avito webhooks', verdict: 'warn', detail: `PUBLIC_URL is not set: polling only (${subs.length} subscription(s) exist)`, action: 'Set PUBLIC_URL to receive messages within seconds instead of at the next poll.' });
    } else if (subs.some((s) => s.url === opts.publicWebhookUrl)) {
      results.push({ check: 'Avito webhooks', verdict: 'ok', detail: 'subscribed to this daemon' });
    } else {
      results.push({ check: 'Avito webhooks', verdict: 'warn', detail: 'not subscribed to this daemon yet', action: '`avito-sync run` subscribes at start, or run `avito-sync webhooks subscribe`.' });
    }
  } catch (err) {
    results.push(fromError('Avito webhooks', err));
  }
  return results;
}

/**
 * Webhook reachability: a POST of `{}` (Avito's own probe) to our public URL, 2 s to answer, as
 * Avito requires. It passes only when a running daemon answers there.
 */
export async function webhookReachability(publicWebhookUrl: string | undefined): Promise<CheckResult> {
  const check = 'webhook reachability';
  if (!publicWebhookUrl) return { check, verdict: 'warn', detail: 'PUBLIC_URL is not set: no webhooks, polling only', action: 'Set PUBLIC_URL to the address where Avito reaches this daemon (HTTPS).' };
  const shown = publicWebhookUrl.replace(/\/[^/]+$/, '/…');
  const started = Date.now();
  try {
    const res = await fetch(publicWebhookUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(2000) });
    const ms = Date.now() - started;
    if (res.status === 200) return { check, verdict: 'ok', detail: `${shown} answered 200 in ${ms} ms (Avito allows 2 s)` };
    return { check, verdict: 'fail', detail: `${shown} answered ${res.status}`, action: res.status === 404 ? 'Something else answers at PUBLIC_URL, or WEBHOOK_SECRET differs from the running daemon’s.' : 'Check the reverse proxy in front of `avito-sync run`.' };
  } catch (err) {
    return { check, verdict: 'fail', detail: `${shown} did not answer within 2 s (${(err as Error).name === 'TimeoutError' ? 'timeout' : (err as Error).message})`, action: 'Start `avito-sync run` and make PUBLIC_URL reach it from the internet (HTTPS), or unset PUBLIC_URL to poll only.' };
  }
}
