import type { Logger } from 'pino';
import type { z } from 'zod';
import {
  LocalRequestGate, RemoteApiError, READ_POLICY, WRITE_POLICY, networkCode, parseRetryAfter, withRetry, type RemoteErrorKind, type RequestGate, type RetryPolicy,
} from '../../../src/connector-sdk/index.js';
import { signRequest } from './signing.js';
import { amojoChatSchema, amojoConnectSchema, amojoHistorySchema, amojoSendResultSchema, anySchema, type AmojoHistory } from './schemas.js';

/**
 * The amoCRM Chats API (amojo) client: every request signed (signing.ts), spaced under the
 * account's request budget, errors explained in the channel's terms. Endpoints follow
 * https://www.amocrm.ru/developers/content/chats/chat-api-reference (§ per method below).
 */

export interface AmojoClientOptions {
  amojoUrl: string;
  channelId: string;
  channelSecret: string;
  log: Logger;
  /** Requests per second to amojo (no number is documented; the REST budget is used). */
  requestsPerSecond: number;
  retry?: Partial<RetryPolicy>;
  timeoutMs?: number;
  /** Replaces `new Date()` for the Date header (tests). */
  now?: () => Date;
  /** The account's amojo request gate (`ctx.requestGate`): shared by every daemon. Default: in-process. */
  gate?: RequestGate;
}

/** Who sends a message into the chat (`payload.sender` / `payload.receiver`). */
export interface AmojoUser {
  id: string;
  name: string;
  ref_id?: string;
  avatar?: string;
  profile_link?: string;
}

export interface AmojoMessage {
  type: 'text' | 'picture' | 'file' | 'voice' | 'location' | 'video' | 'audio' | 'contact' | 'sticker';
  text?: string;
  media?: string;
  file_name?: string;
  file_size?: number;
  location?: { lat: number; lon: number };
}

export interface AmojoSendPayload {
  timestamp: number;
  msec_timestamp: number;
  msgid: string;
  conversation_id: string;
  silent: boolean;
  sender: AmojoUser;
  receiver?: AmojoUser;
  message: AmojoMessage;
}

/** The send answer: a repeated `msgid` counts as already delivered (amojo refuses duplicates). */
export type SendResult = { msgid: string; duplicate: false } | { msgid: string; duplicate: true };

/** Why a request failed, in the channel's terms; `hint` says what to do. */
const HINTS = {
  signature: 'amoCRM refused the signature: check AMOCRM_CHANNEL_SECRET (the 40-hex secret issued with the channel) and this machine\'s clock (a signature is valid 15 minutes from its Date).',
  unknownChannel: 'amoCRM does not know this channel: check AMOCRM_CHANNEL_ID (the uuid amoCRM support issued) and AMOCRM_AMOJO_URL (amojo.amocrm.ru, amojo.amocrm.com or amojo.kommo.com).',
  notConnected: 'amoCRM would not connect this account to the channel: amoCRM support approves channels per account — ask them to add this account (its amojo id is in the log) to the channel, and check the integration is installed.',
  notConnectedSend: 'amoCRM does not take messages for this account on the channel: the integration was probably switched off or reinstalled; avito-sync connects it again.',
  badRequest: 'amoCRM refused the message; its answer says which field.',
  server: 'amoCRM Chats API had an internal error; it will be retried.',
  network: 'the amoCRM Chats API could not be reached: check AMOCRM_AMOJO_URL and the network.',
  rate: 'amoCRM Chats API asked to slow down; backing off.',
} as const;

export class AmojoClient {
  private readonly gate: RequestGate;
  private readonly readPolicy: RetryPolicy;
  /** amojo refuses a repeated msgid, so a send may be retried after any transient failure. */
  private readonly idempotentPolicy: RetryPolicy;
  private readonly writePolicy: RetryPolicy;
  requestCount = 0;

  constructor(private readonly o: AmojoClientOptions) {
    this.gate = o.gate ?? new LocalRequestGate(Math.ceil(1000 / o.requestsPerSecond));
    this.readPolicy = { ...READ_POLICY, ...o.retry, retryOn: 'transient' };
    this.idempotentPolicy = { ...WRITE_POLICY, ...o.retry, retryOn: 'transient' };
    this.writePolicy = { ...WRITE_POLICY, ...o.retry, retryOn: 'undelivered' };
  }

  /** `POST /v2/origin/custom/{channel_id}/connect`: the account's `scope_id` (hooks v2). */
  async connect(amojoAccountId: string, title: string): Promise<string> {
    const res = await this.call({ method: 'POST', path: `/v2/origin/custom/${this.o.channelId}/connect`, json: { account_id: amojoAccountId, title, hook_api_version: 'v2' }, schema: amojoConnectSchema, policy: this.idempotentPolicy, on: 'connect' });
    return res!.scope_id;
  }

  /** `DELETE /v2/origin/custom/{channel_id}/disconnect`. */
  async disconnect(amojoAccountId: string): Promise<void> {
    await this.call({ method: 'DELETE', path: `/v2/origin/custom/${this.o.channelId}/disconnect`, json: { account_id: amojoAccountId }, schema: anySchema, policy: this.idempotentPolicy, on: 'connect' });
  }

  /**
   * `POST /v2/origin/custom/{scope_id}` (event `new_message`). amojo does not take two messages
   * with the same msgid ("не принимает несколько сообщений с одинаковым payload[msgid]",
   * chat-step-by-step); the status it answers is undocumented, so a 400/409 that names the
   * msgid or a duplicate is read as "already there".
   */
  async send(scopeId: string, payload: AmojoSendPayload): Promise<SendResult> {
    try {
      const res = await this.call({ method: 'POST', path: `/v2/origin/custom/${scopeId}`, json: { event_type: 'new_message', payload }, schema: amojoSendResultSchema, policy: this.idempotentPolicy, on: 'scope' });
      return { msgid: res?.new_message?.msgid ?? res?.msgid ?? payload.msgid, duplicate: false };
    } catch (err) {
      if (isDuplicate(err)) return { msgid: payload.msgid, duplicate: true };
      throw err;
    }
  }

  /** `POST /v2/origin/custom/{scope_id}` (event `edit_message`): a message deleted on Avito. */
  async edit(scopeId: string, payload: { msgid: string; conversation_id: string; timestamp: number; msec_timestamp: number; message: AmojoMessage }): Promise<void> {
    await this.call({ method: 'POST', path: `/v2/origin/custom/${scopeId}`, json: { event_type: 'edit_message', payload }, schema: amojoSendResultSchema, policy: this.idempotentPolicy, on: 'scope' });
  }

  /** `POST /v2/origin/custom/{scope_id}/chats`: the amojo chat id; idempotent per conversation_id. */
  async createChat(scopeId: string, body: { conversation_id: string; user: AmojoUser }): Promise<string> {
    const res = await this.call({ method: 'POST', path: `/v2/origin/custom/${scopeId}/chats`, json: body, schema: amojoChatSchema, policy: this.idempotentPolicy, on: 'scope' });
    return res!.id;
  }

  /**
   * `POST /v2/origin/custom/{scope_id}/{msgid}/delivery_status` with the body the step-by-step
   * really signed: `{msgid, delivery_status, error_code?, error?}` (1 delivered, 2 read, -1 error;
   * 905 = other, with `error` shown to the manager).
   */
  async deliveryStatus(scopeId: string, msgid: string, status: { delivery_status: 1 | 2 | -1; error_code?: number; error?: string }): Promise<void> {
    await this.call({ method: 'POST', path: `/v2/origin/custom/${scopeId}/${encodeURIComponent(msgid)}/delivery_status`, json: { msgid, ...status }, schema: anySchema, policy: this.idempotentPolicy, on: 'scope' });
  }

  /** `POST /v2/origin/custom/{scope_id}/typing` (204): the buyer is typing. */
  async typing(scopeId: string, conversationId: string, senderId: string): Promise<void> {
    await this.call({ method: 'POST', path: `/v2/origin/custom/${scopeId}/typing`, json: { conversation_id: conversationId, sender: { id: senderId } }, schema: anySchema, policy: this.writePolicy, on: 'scope' });
  }

  /** `GET /v2/origin/custom/{scope_id}/chats/{amojo chat id}/history` (limit ≤ 50; 204 = empty). */
  async history(scopeId: string, amojoChatId: string, opts: { offset?: number; limit?: number } = {}): Promise<AmojoHistory['messages']> {
    const q = `?offset=${opts.offset ?? 0}&limit=${Math.min(opts.limit ?? 50, 50)}`;
    const res = await this.call({ method: 'GET', path: `/v2/origin/custom/${scopeId}/chats/${encodeURIComponent(amojoChatId)}/history${q}`, schema: amojoHistorySchema, policy: this.readPolicy, on: 'scope' });
    return res?.messages ?? [];
  }

  private async call<T>(r: { method: 'GET' | 'POST' | 'DELETE'; path: string; json?: unknown; schema: z.ZodType<T>; policy: RetryPolicy; on: 'connect' | 'scope' }): Promise<T | undefined> {
    return withRetry(r.policy, () => this.attempt(r), {
      onRetry: ({ error, attempt }) => this.o.log.warn({ op: opName(r.method, r.path), status: error.status, attempt }, 'amoCRM Chats API call failed, retrying'),
    });
  }

  private async attempt<T>(r: { method: 'GET' | 'POST' | 'DELETE'; path: string; json?: unknown; schema: z.ZodType<T>; on: 'connect' | 'scope' }): Promise<T | undefined> {
    await this.gate.wait();
    const body = r.json === undefined ? '' : JSON.stringify(r.json);
    const headers = signRequest({ secret: this.o.channelSecret, method: r.method, path: r.path, body, date: (this.o.now ?? (() => new Date()))() });
    const operation = opName(r.method, r.path);
    this.requestCount++;
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.o.amojoUrl + r.path, { method: r.method, headers: { ...headers, accept: 'application/json' }, body: r.method === 'GET' ? null : body, signal: AbortSignal.timeout(this.o.timeoutMs ?? 30_000) });
      text = await res.text();
    } catch (err) {
      throw new RemoteApiError({ provider: 'amoCRM Chats API', kind: 'network', status: 0, remoteMessage: networkCode(err) ?? (err as Error).message, hint: HINTS.network, operation, cause: err });
    }
    if (res.status === 204) return undefined;
    if (!res.ok) {
      const said = text.replace(/\s+/g, ' ').trim().slice(0, 300);
      let kind: RemoteErrorKind;
      let hint: string;
      if (res.status === 403) [kind, hint] = ['forbidden', HINTS.signature];
      else if (res.status === 404 && r.on === 'connect') [kind, hint] = ['bad_credentials', HINTS.unknownChannel];
      else if (res.status === 400 && r.on === 'connect') [kind, hint] = ['forbidden', HINTS.notConnected];
      else if (res.status === 404) [kind, hint] = ['not_found', /scope|account|channel/i.test(said) ? HINTS.notConnectedSend : 'amoCRM does not know this chat or message.'];
      else if (res.status === 429) [kind, hint] = ['rate_limited', HINTS.rate];
      else if (res.status >= 500) [kind, hint] = ['server', HINTS.server];
      else [kind, hint] = ['bad_request', HINTS.badRequest];
      if (res.status === 429) this.gate.holdFor(1000);
      throw new RemoteApiError({ provider: 'amoCRM Chats API', kind, status: res.status, remoteMessage: said, hint, operation, retryAfterSeconds: parseRetryAfter(res.headers.get('retry-after')) });
    }
    let data: unknown;
    try {
      data = text.trim() ? JSON.parse(text) : {};
    } catch {
      throw new RemoteApiError({ provider: 'amoCRM Chats API', kind: 'bad_response', status: res.status, remoteMessage: `not JSON: ${text.slice(0, 80)}`, hint: 'amoCRM answered in an unexpected shape; it was logged.', operation });
    }
    const parsed = r.schema.safeParse(data);
    if (!parsed.success) {
      this.o.log.warn({ op: operation, issues: parsed.error.issues.slice(0, 3) }, 'amoCRM Chats API answer did not match the expected shape');
      throw new RemoteApiError({ provider: 'amoCRM Chats API', kind: 'bad_response', status: res.status, remoteMessage: parsed.error.issues[0]?.message ?? 'unexpected shape', hint: 'amoCRM answered in an unexpected shape; it was logged.', operation });
    }
    return parsed.data;
  }
}

/** A refused repeat of a msgid (status undocumented: GUESS 400/409 naming it). */
function isDuplicate(err: unknown): boolean {
  return err instanceof RemoteApiError && (err.status === 400 || err.status === 409) && /msgid|duplicate|already/i.test(err.remoteMessage);
}

function opName(method: string, path: string): string {
  return `${method} ${path.split('?')[0]!.replace(/\/origin\/custom\/[^/]+/, '/origin/custom/{id}').replace(/\/chats\/[^/]+\/history/, '/chats/{chat}/history').replace(/\/[^/]+\/delivery_status$/, '/{msgid}/delivery_status')}`;
}
