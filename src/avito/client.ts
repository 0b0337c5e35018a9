import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { z } from 'zod';
import { RemoteApiError } from '../errors.js';
import { READ_POLICY, WRITE_POLICY, withRetry, type RetryPolicy } from '../http/retry-policy.js';
import { SpacingGate } from '../http/spacing-gate.js';
import { Transport, type TransportResponse } from '../http/transport.js';
import { recordItemError } from '../ledger/item-errors.js';
import type { LedgerDb } from '../ledger/database.js';
import type { TokenLock } from '../ledger/tokens.js';
import { getAccount, setAvitoUserId } from '../ledger/accounts.js';
import { avitoHttpError, avitoNetworkError, withKind } from './errors.js';
import {
  avitoChatListSchema, avitoChatSchema, avitoItemListSchema, avitoItemSchema, avitoMessageListSchema,
  avitoMessageSchema, avitoSelfSchema, avitoSubscriptionsSchema, avitoTokenSchema, avitoUploadSchema,
  avitoVoiceFilesSchema, readAvitoChat, readAvitoMessage, readChatList, readMessageList, type AvitoChat, type AvitoItem, type AvitoMessage, type AvitoSelf, type AvitoToken,
} from './schemas.js';
import { AvitoTokenProvider, type TokenGrant } from './token-provider.js';

export interface AvitoClientOptions {
  accountId: string;
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  authCode?: string | undefined;
  /** Known user id; otherwise read from the ledger or `GET /core/v1/accounts/self`. */
  userId?: string | undefined;
  db: LedgerDb;
  /** Refreshes the token with its ledger row locked (PostgreSQL: one refresh across processes). */
  lockToken?: TokenLock;
  log: Logger;
  /** Default 10. */
  requestsPerSecond?: number;
  /** Default 4. */
  concurrency?: number;
  /** Per attempt; default 30 s. */
  timeoutMs?: number;
  /** Overrides for the read and write policies (tests shorten the backoff). */
  retry?: Partial<RetryPolicy>;
  /** Default 25 (items.json: 25 requests per minute). */
  itemsRequestsPerMinute?: number;
}

/** One call's telemetry, for metrics and benchmarks. */
export interface AvitoCallEvent {
  operation: string;
  status: number;
  durationMs: number;
}

interface CallSpec<T> {
  method: 'GET' | 'POST';
  /** The spec's path template, e.g. `/messenger/v2/accounts/{user_id}/chats`: names the call in logs and errors. */
  template: string;
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  form?: FormData;
  schema: z.ZodType<T>;
  /** A cheaper reader giving the schema's result, or undefined to let the schema decide. */
  fast?: (data: unknown) => T | undefined;
  policy: RetryPolicy;
  /** A 403 that survives a token refresh on a chat operation is the employee-key symptom (Messenger guide). */
  chatScoped?: boolean;
  /** For /token: no Authorization header, form-encoded body. */
  tokenRequest?: URLSearchParams;
}

/** Messages per page and the offset cap (messenger.json `limit` 1..100, `offset` 0..1000). */
export const AVITO_PAGE_LIMIT = 100;
export const AVITO_MAX_OFFSET = 1000;
/** Send text: at most 1,000 characters (sendMessageRequestBody.message.text.maxLength). */
export const AVITO_MAX_TEXT = 1000;

/**
 * The typed Avito client: every Messenger operation of the guide plus /token, accounts/self and
 * items. One queue per account keeps the request rate; every call has a declared retry policy.
 */
export class AvitoClient {
  readonly accountId: string;
  readonly tokens: AvitoTokenProvider;
  private readonly queue: PQueue;
  private readonly log: Logger;
  private readonly readPolicy: RetryPolicy;
  private readonly writePolicy: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly transport: Transport;
  private readonly itemsGate: SpacingGate;
  /** Aborted by `stop()`: calls not finished give up at once. */
  private readonly stopper = new AbortController();
  /**
   * How each call not finished yet (waiting in the queue or in flight) is failed by `stop()`. One
   * set rather than an abort listener per call (p-queue's `signal`): an import queues a whole chat
   * page at once, and adding and removing hundreds of listeners on one signal cost ≈ 20 ms of a
   * 20,000-message pass.
   */
  private readonly unfinished = new Set<(reason: unknown) => void>();
  private userIdValue: string | undefined;
  private listShapeLogged = false;
  private readonly listeners: ((e: AvitoCallEvent) => void)[] = [];
  /** Requests sent (every attempt), for `status` and benchmarks. */
  requestCount = 0;

  constructor(private readonly opts: AvitoClientOptions) {
    this.accountId = opts.accountId;
    this.log = opts.log.child({ account: opts.accountId, api: 'avito' });
    this.userIdValue = opts.userId;
    const rps = opts.requestsPerSecond ?? 10;
    this.queue = new PQueue({ concurrency: opts.concurrency ?? 4, intervalCap: rps, interval: 1000 });
    this.transport = new Transport(opts.concurrency ?? 4);
    this.itemsGate = new SpacingGate(Math.ceil(60_000 / (opts.itemsRequestsPerMinute ?? 25)));
    this.readPolicy = { ...READ_POLICY, ...opts.retry, retryOn: 'transient' };
    this.writePolicy = { ...WRITE_POLICY, ...opts.retry, retryOn: 'undelivered' };
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.tokens = new AvitoTokenProvider({
      db: opts.db,
      accountId: opts.accountId,
      authCode: opts.authCode,
      log: this.log,
      requestToken: (grant) => this.requestToken(grant),
      ...(opts.lockToken ? { lockToken: opts.lockToken } : {}),
    });
  }

  onCall(listener: (e: AvitoCallEvent) => void): void {
    this.listeners.push(listener);
  }

  /** Requests waiting for their turn in this account's queue. */
  get queueDepth(): number {
    return this.queue.size + this.queue.pending;
  }

  // ---- identity -------------------------------------------------------------------------

  /** The account's Avito user id: config, then ledger, then `GET /core/v1/accounts/self`. */
  async userId(): Promise<string> {
    if (this.userIdValue) return this.userIdValue;
    const row = await getAccount(this.opts.db, this.accountId);
    if (row?.avito_user_id) {
      this.userIdValue = row.avito_user_id;
      return row.avito_user_id;
    }
    const self = await this.getSelf();
    this.userIdValue = self.id;
    await setAvitoUserId(this.opts.db, this.accountId, self.id, self.name);
    return self.id;
  }

  /**
   * Connect Avito (console): exchanges an authorization code, then learns whose account it is
   * (`GET /core/v1/accounts/self`) unless AVITO_USER_ID fixes it — the seller who consented may
   * not be the app's owner that client_credentials acted as.
   */
  async connect(code: string): Promise<{ userId: string; name: string | null }> {
    await this.tokens.connect(code);
    const self = await this.getSelf();
    if (!this.opts.userId) {
      this.userIdValue = self.id;
      await setAvitoUserId(this.opts.db, this.accountId, self.id, self.name);
    }
    return { userId: this.opts.userId ?? self.id, name: self.name ?? null };
  }

  /** GET /core/v1/accounts/self (user-info.json). */
  getSelf(): Promise<AvitoSelf> {
    return this.call({ method: 'GET', template: '/core/v1/accounts/self', path: '/core/v1/accounts/self', schema: avitoSelfSchema, policy: this.readPolicy });
  }

  // ---- chats and messages ---------------------------------------------------------------

  /** GET /messenger/v2/accounts/{user_id}/chats (messenger.json getChatsV2). */
  async listChats(params: { chatTypes?: readonly string[]; itemIds?: readonly string[]; unreadOnly?: boolean; limit?: number; offset?: number } = {}): Promise<AvitoChat[]> {
    const uid = await this.userId();
    const res = await this.call({
      method: 'GET',
      template: '/messenger/v2/accounts/{user_id}/chats',
      path: `/messenger/v2/accounts/${uid}/chats`,
      query: {
        chat_types: params.chatTypes?.join(','),
        item_ids: params.itemIds?.length ? params.itemIds.join(',') : undefined,
        unread_only: params.unreadOnly ? true : undefined,
        limit: params.limit ?? AVITO_PAGE_LIMIT,
        offset: params.offset ?? 0,
      },
      schema: avitoChatListSchema,
      fast: readChatList,
      policy: this.readPolicy,
    });
    return this.parseEach(res.chats, avitoChatSchema, 'chat', readAvitoChat);
  }

  /** GET /messenger/v2/accounts/{user_id}/chats/{chat_id} (getChatByIdV2). */
  async getChat(chatId: string): Promise<AvitoChat> {
    const uid = await this.userId();
    return this.call({
      method: 'GET',
      template: '/messenger/v2/accounts/{user_id}/chats/{chat_id}',
      path: `/messenger/v2/accounts/${uid}/chats/${encodeURIComponent(chatId)}`,
      schema: avitoChatSchema,
      policy: this.readPolicy,
      chatScoped: true,
    });
  }

  /**
   * GET /messenger/v3/accounts/{user_id}/chats/{chat_id}/messages/ (getMessagesV3). Accepts the
   * documented bare array and the `{messages:[…]}` clients actually see. Does not mark read.
   */
  async listMessages(chatId: string, params: { limit?: number; offset?: number } = {}): Promise<AvitoMessage[]> {
    const uid = await this.userId();
    const res = await this.call({
      method: 'GET',
      template: '/messenger/v3/accounts/{user_id}/chats/{chat_id}/messages/',
      path: `/messenger/v3/accounts/${uid}/chats/${encodeURIComponent(chatId)}/messages/`,
      query: { limit: params.limit ?? AVITO_PAGE_LIMIT, offset: params.offset ?? 0 },
      schema: avitoMessageListSchema,
      fast: readMessageList,
      policy: this.readPolicy,
      chatScoped: true,
    });
    if (res.shape === 'object' && !this.listShapeLogged) {
      this.listShapeLogged = true;
      this.log.debug('Avito answered the messages list as {messages:[…]}, not the documented bare array; both are accepted');
    }
    return this.parseEach(res.messages, avitoMessageSchema, 'message', readAvitoMessage);
  }

  /** POST /messenger/v1/accounts/{user_id}/chats/{chat_id}/messages (postSendMessage). Not idempotent. */
  async sendText(chatId: string, text: string): Promise<AvitoMessage> {
    if (text.length === 0 || text.length > AVITO_MAX_TEXT) {
      throw new RangeError(`An Avito message holds 1 to ${AVITO_MAX_TEXT} characters; this one has ${text.length}.`);
    }
    const uid = await this.userId();
    return this.call({
      method: 'POST',
      template: '/messenger/v1/accounts/{user_id}/chats/{chat_id}/messages',
      path: `/messenger/v1/accounts/${uid}/chats/${encodeURIComponent(chatId)}/messages`,
      json: { message: { text }, type: 'text' },
      schema: avitoMessageSchema,
      policy: this.writePolicy,
      chatScoped: true,
    });
  }

  /** POST /messenger/v1/accounts/{user_id}/uploadImages: one image, field `uploadfile[]`, ≤ 24 MB. Returns the image id and its sizes. */
  async uploadImage(data: Uint8Array, filename: string, mime: string): Promise<{ imageId: string; sizes: Record<string, string> }> {
    const uid = await this.userId();
    const form = new FormData();
    form.append('uploadfile[]', new Blob([data], { type: mime }), filename);
    const res = await this.call({
      method: 'POST',
      template: '/messenger/v1/accounts/{user_id}/uploadImages',
      path: `/messenger/v1/accounts/${uid}/uploadImages`,
      form,
      schema: avitoUploadSchema,
      policy: this.writePolicy,
      chatScoped: true,
    });
    const [imageId, sizes] = Object.entries(res)[0] ?? [];
    if (!imageId) throw this.badResponse('/messenger/v1/accounts/{user_id}/uploadImages', 'no image id in the answer');
    return { imageId, sizes: sizes ?? {} };
  }

  /** POST /messenger/v1/accounts/{user_id}/chats/{chat_id}/messages/image (postSendImageMessage). Not idempotent. */
  async sendImage(chatId: string, imageId: string): Promise<AvitoMessage> {
    const uid = await this.userId();
    return this.call({
      method: 'POST',
      template: '/messenger/v1/accounts/{user_id}/chats/{chat_id}/messages/image',
      path: `/messenger/v1/accounts/${uid}/chats/${encodeURIComponent(chatId)}/messages/image`,
      json: { image_id: imageId },
      schema: avitoMessageSchema,
      policy: this.writePolicy,
      chatScoped: true,
    });
  }

  /** POST /messenger/v1/accounts/{user_id}/chats/{chat_id}/messages/{message_id} (deleteMessage; within an hour of sending). */
  async deleteMessage(chatId: string, messageId: string): Promise<void> {
    const uid = await this.userId();
    await this.call({
      method: 'POST',
      template: '/messenger/v1/accounts/{user_id}/chats/{chat_id}/messages/{message_id}',
      path: `/messenger/v1/accounts/${uid}/chats/${encodeURIComponent(chatId)}/messages/${encodeURIComponent(messageId)}`,
      schema: anyJson,
      policy: this.readPolicy, // deleting twice is harmless
      chatScoped: true,
    });
  }

  /** POST /messenger/v1/accounts/{user_id}/chats/{chat_id}/read (chatRead). */
  async markRead(chatId: string): Promise<void> {
    const uid = await this.userId();
    await this.call({
      method: 'POST',
      template: '/messenger/v1/accounts/{user_id}/chats/{chat_id}/read',
      path: `/messenger/v1/accounts/${uid}/chats/${encodeURIComponent(chatId)}/read`,
      schema: anyJson,
      policy: this.readPolicy,
      chatScoped: true,
    });
  }

  /** GET /messenger/v1/accounts/{user_id}/getVoiceFiles: links live one hour. */
  async getVoiceFiles(voiceIds: readonly string[]): Promise<Record<string, string>> {
    if (voiceIds.length === 0) return {};
    const uid = await this.userId();
    const res = await this.call({
      method: 'GET',
      template: '/messenger/v1/accounts/{user_id}/getVoiceFiles',
      path: `/messenger/v1/accounts/${uid}/getVoiceFiles`,
      query: { voice_ids: voiceIds.join(',') },
      schema: avitoVoiceFilesSchema,
      policy: this.readPolicy,
      chatScoped: true,
    });
    return res.voices_urls;
  }

  /** POST /messenger/v2/accounts/{user_id}/blacklist (postBlacklistV2). */
  async blacklist(userId: string, context: { itemId?: string; reasonId?: 1 | 2 | 3 | 4 } = {}): Promise<void> {
    const uid = await this.userId();
    const ctx: Record<string, number> = {};
    if (context.itemId) ctx.item_id = Number(context.itemId);
    if (context.reasonId) ctx.reason_id = context.reasonId;
    await this.call({
      method: 'POST',
      template: '/messenger/v2/accounts/{user_id}/blacklist',
      path: `/messenger/v2/accounts/${uid}/blacklist`,
      json: { users: [{ user_id: Number(userId), ...(Object.keys(ctx).length ? { context: ctx } : {}) }] },
      schema: anyJson,
      policy: this.readPolicy, // blacklisting twice is harmless
      chatScoped: true,
    });
  }

  // ---- webhooks -------------------------------------------------------------------------

  /** POST /messenger/v3/webhook (postWebhookV3). */
  async subscribeWebhook(url: string): Promise<void> {
    await this.call({ method: 'POST', template: '/messenger/v3/webhook', path: '/messenger/v3/webhook', json: { url }, schema: anyJson, policy: this.readPolicy });
  }

  /** POST /messenger/v1/subscriptions (getSubscriptions: a POST, there is no GET). */
  async listSubscriptions(): Promise<{ url: string; version?: string | undefined }[]> {
    const res = await this.call({ method: 'POST', template: '/messenger/v1/subscriptions', path: '/messenger/v1/subscriptions', schema: avitoSubscriptionsSchema, policy: this.readPolicy });
    return res.subscriptions;
  }

  /** POST /messenger/v1/webhook/unsubscribe (postWebhookUnsubscribe). */
  async unsubscribeWebhook(url: string): Promise<void> {
    await this.call({ method: 'POST', template: '/messenger/v1/webhook/unsubscribe', path: '/messenger/v1/webhook/unsubscribe', json: { url }, schema: anyJson, policy: this.readPolicy });
  }

  // ---- items ----------------------------------------------------------------------------

  /** GET /core/v1/items (items.json getItemsInfo; `per_page` ≤ 100, 25 requests/min). */
  async listItems(params: { page?: number; perPage?: number; status?: string } = {}): Promise<AvitoItem[]> {
    await this.itemsGate.wait();
    const res = await this.call({
      method: 'GET',
      template: '/core/v1/items',
      path: '/core/v1/items',
      query: { page: params.page ?? 1, per_page: params.perPage ?? 100, status: params.status },
      schema: avitoItemListSchema,
      policy: this.readPolicy,
    });
    return this.parseEach(res.resources, avitoItemSchema, 'item');
  }

  // ---- files ----------------------------------------------------------------------------

  /** Downloads a file Avito linked to (a voice message): no Authorization header goes to it. */
  async download(url: string): Promise<Uint8Array> {
    const operation = 'GET voice file';
    return withRetry(this.readPolicy, () =>
      this.enqueue(async () => {
        const res = await this.send(operation, { method: 'GET', url: new URL(url), headers: {}, timeoutMs: this.timeoutMs });
        if (res.status < 200 || res.status >= 300) {
          throw avitoHttpError({ status: res.status, body: res.text, contentType: res.header('content-type'), retryAfter: res.header('retry-after'), operation });
        }
        return new Uint8Array(res.bytes);
      }),
    );
  }

  /**
   * Shutdown: every call not finished fails at once, so no caller waits for Avito past the daemon's
   * stop budget. The waiting ones leave the queue; a request in flight is cut by `close()`.
   */
  stop(): void {
    this.stopper.abort(new Error('avito-sync is stopping'));
    const reason: unknown = this.stopper.signal.reason;
    for (const fail of this.unfinished) fail(reason);
    this.unfinished.clear();
    this.queue.clear();
  }

  get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  /** Finishes queued work and closes kept-alive connections; after `stop()`, cuts the requests in flight first. */
  async close(): Promise<void> {
    if (this.stopped) this.transport.close();
    await this.queue.onIdle();
    this.transport.close();
  }

  // ---- plumbing -------------------------------------------------------------------------

  /** POST /token (authorization.json): form-encoded, never with an Authorization header. */
  private requestToken(grant: TokenGrant): Promise<AvitoToken> {
    const body = new URLSearchParams({ client_id: this.opts.clientId, client_secret: this.opts.clientSecret, ...grant });
    return this.call({ method: 'POST', template: '/token', path: '/token', tokenRequest: body, schema: avitoTokenSchema, policy: this.readPolicy });
  }

  private async call<T>(spec: CallSpec<T>): Promise<T> {
    const operation = `${spec.method} ${spec.template}`;
    if (spec.tokenRequest) return this.attemptWithRetry(spec, operation, undefined);
    const token = await this.tokens.get();
    try {
      return await this.attemptWithRetry(spec, operation, token);
    } catch (err) {
      if (!(err instanceof RemoteApiError) || (err.status !== 401 && err.status !== 403)) throw err;
      // Expired token: the guide says 403, other specs 401. Refresh once, then fail.
      this.tokens.invalidate(token);
      const fresh = await this.tokens.refresh(`${err.status} on ${spec.template}`);
      try {
        return await this.attemptWithRetry(spec, operation, fresh);
      } catch (again) {
        if (again instanceof RemoteApiError && again.status === 403) throw withKind(again, spec.chatScoped ? 'employee_key' : 'forbidden');
        if (again instanceof RemoteApiError && again.status === 401) throw withKind(again, 'token_expired');
        throw again;
      }
    }
  }

  private attemptWithRetry<T>(spec: CallSpec<T>, operation: string, token: string | undefined): Promise<T> {
    return withRetry(
      spec.policy,
      () => this.enqueue(() => this.attempt(spec, operation, token)),
      {
        onRetry: ({ error, attempt, waitMs }) =>
          this.log.warn({ op: operation, status: error.status, attempt, waitMs, remote: error.remoteMessage }, 'Avito call failed, retrying'),
      },
    );
  }

  private async attempt<T>(spec: CallSpec<T>, operation: string, token: string | undefined): Promise<T> {
    const url = new URL(this.opts.apiUrl + spec.path);
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json' };
    let body: string | Buffer | undefined;
    if (token) headers.authorization = `Bearer ${token}`;
    if (spec.tokenRequest) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = spec.tokenRequest.toString();
    } else if (spec.form) {
      // Let the platform encode the multipart body (boundary included), then send its bytes.
      const encoded = new Response(spec.form);
      headers['content-type'] = encoded.headers.get('content-type') ?? 'multipart/form-data';
      body = Buffer.from(await encoded.arrayBuffer());
    } else if (spec.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(spec.json);
    }
    const res = await this.send(operation, { method: spec.method, url, headers, body, timeoutMs: this.timeoutMs });
    this.adaptRate(res);
    if (res.status < 200 || res.status >= 300) {
      throw avitoHttpError({ status: res.status, body: res.text, contentType: res.header('content-type'), retryAfter: res.header('retry-after'), operation });
    }
    const text = res.text;
    let data: unknown = {};
    if (text.trim()) {
      try {
        data = JSON.parse(text);
      } catch (err) {
        throw this.badResponse(spec.template, `not JSON: ${text.slice(0, 80)}`, err);
      }
    }
    const quick = spec.fast?.(data);
    if (quick !== undefined) return quick;
    const parsed = spec.schema.safeParse(data);
    if (!parsed.success) {
      this.log.warn({ op: operation, issues: parsed.error.issues.slice(0, 3) }, 'Avito answer did not match the expected shape');
      throw this.badResponse(spec.template, parsed.error.issues[0]?.message ?? 'unexpected shape');
    }
    return parsed.data;
  }

  /** Runs `fn` in its turn of the account's queue; fails at once when the client stops before it is done. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    if (this.stopper.signal.aborted) return Promise.reject(this.stopper.signal.reason as Error);
    return new Promise<T>((resolve, reject) => {
      this.unfinished.add(reject);
      void this.queue.add(async () => {
        if (!this.unfinished.has(reject)) return; // failed by stop() meanwhile
        try {
          resolve(await fn());
        } catch (err) {
          reject(err);
        } finally {
          this.unfinished.delete(reject);
        }
      });
    });
  }

  /** One HTTP exchange, counted and timed; network failures become RemoteApiError. */
  private async send(operation: string, req: Parameters<Transport['request']>[0]): Promise<TransportResponse> {
    const started = performance.now();
    this.requestCount++;
    let res: TransportResponse;
    try {
      res = await this.transport.request(req);
    } catch (err) {
      this.emit({ operation, status: 0, durationMs: performance.now() - started });
      throw avitoNetworkError(operation, err);
    }
    const durationMs = performance.now() - started;
    this.emit({ operation, status: res.status, durationMs });
    if (this.log.isLevelEnabled('debug')) this.log.debug({ op: operation, status: res.status, ms: Math.round(durationMs) }, 'avito call');
    return res;
  }

  /** `X-RateLimit-Remaining` running low: slow down until the window has room again. */
  private adaptRate(res: TransportResponse): void {
    const rawRemaining = res.header('x-ratelimit-remaining');
    if (rawRemaining === null) return;
    const limit = Number(res.header('x-ratelimit-limit'));
    const remaining = Number(rawRemaining);
    if (!Number.isFinite(remaining) || !(limit > 0)) return;
    if (remaining > Math.max(1, Math.floor(limit * 0.05))) return;
    if (this.queue.isPaused) return;
    const pauseMs = Math.ceil(60_000 / limit);
    this.log.debug({ remaining, limit, pauseMs }, 'Avito rate limit running low, slowing down');
    this.queue.pause();
    setTimeout(() => this.queue.start(), pauseMs).unref();
  }

  /** `fast`: a cheaper reader giving the schema's result, or undefined to let the schema decide. */
  private parseEach<T>(items: readonly unknown[], schema: z.ZodType<T>, what: string, fast?: (item: unknown) => T | undefined): T[] {
    const out: T[] = [];
    for (const item of items) {
      const quick = fast?.(item);
      if (quick !== undefined) {
        out.push(quick);
        continue;
      }
      const parsed = schema.safeParse(item);
      if (parsed.success) out.push(parsed.data);
      else {
        // One unreadable item never stops its page (invariant 8): recorded with its reason
        // (`status`, `/metrics`), skipped, and the pass goes on.
        const issue = parsed.error.issues[0];
        const reason = `${issue?.path.map(String).join('.') || what}: ${issue?.message ?? 'unreadable'}`;
        const ref = typeof item === 'object' && item !== null && 'id' in item ? String((item as { id: unknown }).id).slice(0, 100) : null;
        this.log.warn({ what, issue: reason, item: JSON.stringify(item).slice(0, 300) }, `skipped an Avito ${what} that could not be read`);
        void recordItemError(this.opts.db, { accountId: this.accountId, scope: `avito.${what}`, ref, error: reason }).catch(() => undefined);
      }
    }
    return out;
  }

  private badResponse(template: string, detail: string, cause?: unknown): RemoteApiError {
    return new RemoteApiError({
      provider: 'Avito', kind: 'bad_response', status: 200, remoteMessage: detail,
      hint: 'Avito answered in a shape avito-sync does not understand; it was logged. Please report it if it persists.',
      operation: template, cause,
    });
  }

  private emit(e: AvitoCallEvent): void {
    for (const l of this.listeners) l(e);
  }
}

const anyJson: z.ZodType<unknown> = z.unknown();
