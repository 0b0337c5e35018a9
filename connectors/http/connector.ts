import { z } from 'zod';
import {
  RemoteApiError, describeError, parseRetryAfter, withRetry,
  type AccessCheck, type ConnectorContext, type ConnectorInstance, type ConversationRef, type ConversationRequest, type DeliveryItem,
  type IncomingReply, type ItemResult, type ReplyOutcome, type RetryPolicy, type WebhookRequest, type WebhookVerdict,
} from '../../src/connector-sdk/index.js';
import type { HttpConfig } from './config.js';
import { eventId, messageCreated, replyOutcome, type HttpEvent } from './events.js';
import { secretKey, signedHeaders, verify } from './signature.js';

/**
 * Retries inside one delivery: the event carries a stable webhook-id, so sending it again is
 * safe (receivers dedupe by it); 5xx, 429 (Retry-After honoured up to a minute), timeouts and
 * dropped connections are retried twice here, then the dispatcher's backoff takes over.
 */
const DELIVERY_POLICY: RetryPolicy = { retries: 2, minTimeoutMs: 500, maxTimeoutMs: 5_000, maxRetryAfterMs: 60_000, retryOn: 'transient' };

/** An incoming reply (design.md §8.2), validated before anything is stored. */
const replyCreatedSchema = z.object({
  type: z.literal('reply.created'),
  data: z.object({
    reply_id: z.union([z.string().trim().min(1).max(200), z.number().int().refine(Number.isSafeInteger, 'too large: send ids as strings')]).transform(String),
    account_id: z.string().trim().min(1).max(64).optional(),
    chat_id: z.string().trim().min(1).max(200),
    text: z.string().max(20_000).default(''),
    images: z.array(z.string().url().refine((u) => /^https?:/i.test(u), 'must be http(s)')).max(10).default([]),
  }),
});

const MIME: Record<string, string> = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp', heic: 'image/heic', bmp: 'image/bmp' };

/**
 * The HTTP connector (design.md §8.2): every ledger message is one signed JSON event POSTed to
 * `HTTP_CONNECTOR_URL` (Standard Webhooks 1.0), in each chat's order; replies come back signed to
 * `POST /webhooks/http/<WEBHOOK_SECRET>` and their fates go out as `reply.sent` / `reply.failed`.
 * Delivery is at-least-once with a stable `webhook-id`. A 410 stops the account's events until an
 * operator points the connector elsewhere; other 4xx dead-letter the event.
 */
export class HttpConnector implements ConnectorInstance {
  private readonly key: Buffer;
  private readonly policy: RetryPolicy;
  /** Lifts a 410 pause once the configured URL is no longer the one that answered it. */
  private readonly ready: Promise<void>;

  constructor(private readonly ctx: ConnectorContext<HttpConfig>, private readonly now: () => number = Date.now) {
    this.key = secretKey(ctx.config.secret);
    ctx.registerSecret(ctx.config.secret);
    this.policy = { ...DELIVERY_POLICY, ...ctx.retry };
    this.ready = (async () => {
      const gone = await ctx.store.get('gone_url');
      if (gone && gone !== ctx.config.url && (await ctx.paused())) {
        await ctx.resume();
        await ctx.store.set('gone_url', '');
        ctx.log.info('HTTP_CONNECTOR_URL changed since the receiver answered 410: events flow again');
      }
    })().catch((err: unknown) => ctx.log.warn({ err: describeError(err) }, 'could not check an earlier 410 pause'));
  }

  async checkAccess(): Promise<AccessCheck[]> {
    const url = new URL(this.ctx.config.url);
    const out: AccessCheck[] = [];
    if (url.protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
      out.push({ check: 'HTTP receiver address', verdict: 'warn', detail: `events go to ${url.origin} without TLS`, action: 'Use an https:// URL: events carry buyers\' messages.' });
    }
    const paused = await this.ctx.paused();
    if (paused) out.push({ check: 'HTTP receiver', verdict: 'fail', detail: `paused: ${paused.reason}`, action: 'Point HTTP_CONNECTOR_URL at a receiver that accepts events, then restart.' });
    try {
      await this.post(eventId('ping', this.ctx.accountId, String(this.now())), { type: 'ping', timestamp: new Date(this.now()).toISOString(), data: { account_id: this.ctx.accountId } }, { ...this.policy, retries: 0 });
      out.push({ check: 'HTTP receiver', verdict: 'ok', detail: `${url.origin} accepted a signed ping event` });
    } catch (err) {
      out.push({ check: 'HTTP receiver', verdict: 'fail', detail: describeError(err), ...(err instanceof RemoteApiError ? { action: err.hint } : {}) });
    }
    return out;
  }

  /** The Avito chat is the conversation: the receiver keys its own records by chat id. */
  async ensureConversations(requests: readonly ConversationRequest[]): Promise<ItemResult<ConversationRef>[]> {
    return requests.map((r) => ({ ok: true, value: r.previous ?? { id: r.chat.chatId } }));
  }

  /**
   * One event per message, one at a time, in the given order. A chat whose event is to be retried
   * gets no later event in this call (its order holds: they fail with the same error and are
   * retried with it); a 410 pauses the account and stops the run.
   */
  async deliver(items: readonly DeliveryItem[]): Promise<ItemResult<{ remoteId: string }>[]> {
    await this.ready;
    const out: ItemResult<{ remoteId: string }>[] = [];
    const failedChats = new Map<string, unknown>();
    for (const item of items) {
      const id = eventId('msg', this.ctx.accountId, item.message.messageId);
      const held = failedChats.get(item.chat.chatId);
      if (held) {
        out.push({ ok: false, error: held });
        continue;
      }
      try {
        await this.post(id, messageCreated(this.ctx.accountId, item.chat, item.message));
        out.push({ ok: true, value: { remoteId: id } });
      } catch (err) {
        if (err instanceof RemoteApiError && (err.status === 410 || err.kind === 'bad_credentials')) throw err;
        // A dead letter (other 4xx) does not hold its chat; a failure to be retried does.
        if (!(err instanceof RemoteApiError) || err.transient) failedChats.set(item.chat.chatId, err);
        out.push({ ok: false, error: err });
      }
    }
    return out;
  }

  /** Capability findDelivered is false: the stable webhook-id makes a resend harmless. */
  async findDelivered(): Promise<Map<string, string>> {
    return new Map();
  }

  /**
   * `POST /webhooks/http/<secret>` with a `reply.created` event, signed with the same secret: a
   * bad or missing signature, or a timestamp more than 5 minutes off, is 401.
   */
  async webhook(req: WebhookRequest): Promise<WebhookVerdict> {
    const v = verify(this.key, req.headers, req.body, Math.floor(this.now() / 1000));
    if (!v.ok) return { accepted: false, status: 401, reason: v.reason };
    let json: unknown;
    try {
      json = JSON.parse(req.body.toString('utf8'));
    } catch {
      return { accepted: false, status: 400, reason: 'the body is not JSON' };
    }
    const parsed = replyCreatedSchema.safeParse(json);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      return { accepted: false, status: 400, reason: `not a reply.created event: ${i ? `${i.path.join('.') || 'body'}: ${i.message}` : 'unknown shape'}` };
    }
    const d = parsed.data.data;
    if (d.account_id !== undefined && d.account_id !== this.ctx.accountId) return { accepted: false, status: 422, reason: `account_id ${d.account_id} is not this daemon's account` };
    if (!d.text.trim() && d.images.length === 0) return { accepted: false, status: 400, reason: 'the reply has neither text nor images' };
    const reply: IncomingReply = {
      remoteId: d.reply_id,
      conversationId: '',
      chatId: d.chat_id,
      text: d.text.trim(),
      attachments: d.images.map((url) => {
        const name = new URL(url).pathname.split('/').pop() || 'image.jpg';
        return { url, name, mime: MIME[name.split('.').pop()?.toLowerCase() ?? ''] ?? 'image/jpeg' };
      }),
      createdAt: v.timestamp,
    };
    return { accepted: true, replies: [reply] };
  }

  /** With several accounts: the reply is this instance's when `data.account_id` names its account. */
  matchesWebhook(req: WebhookRequest): boolean {
    try {
      const body = JSON.parse(req.body.toString('utf8')) as { data?: { account_id?: unknown } };
      return body?.data?.account_id === this.ctx.accountId;
    } catch {
      return false;
    }
  }

  /** `reply.sent` / `reply.failed`, one event each, stable ids (a retry after a failure resends them). */
  async reportReplies(items: readonly { conversation: ConversationRef; remoteId: string; outcome: ReplyOutcome }[]): Promise<void> {
    await this.ready;
    for (const i of items) {
      const ev = replyOutcome(this.ctx.accountId, i.conversation.id, i.remoteId, i.outcome, new Date(this.now()));
      await this.post(eventId('rep', this.ctx.accountId, i.remoteId, ev.type), ev);
    }
  }

  async close(): Promise<void> {
    await this.ready;
  }

  /** One signed POST, retried under the policy; a fresh timestamp and signature per attempt. */
  private async post(id: string, event: HttpEvent, policy: RetryPolicy = this.policy): Promise<void> {
    const body = JSON.stringify(event);
    const url = this.ctx.config.url;
    const operation = `POST ${event.type}`;
    await withRetry(policy, async () => {
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'avito-crm-sync', ...signedHeaders(this.key, id, Math.floor(this.now() / 1000), body) },
          body,
          signal: AbortSignal.timeout(this.ctx.config.timeoutSeconds * 1000),
        });
      } catch (err) {
        throw new RemoteApiError({ provider: 'HTTP receiver', kind: 'network', status: 0, remoteMessage: describeError((err as { cause?: unknown }).cause ?? err), hint: 'The receiver did not answer (timeout or dropped connection); the event is sent again with the same webhook-id.', operation, cause: err });
      }
      const text = (await res.text().catch(() => '')).slice(0, 200);
      if (res.ok) return;
      throw await this.failure(res.status, text, parseRetryAfter(res.headers.get('retry-after')), operation);
    });
  }

  private async failure(status: number, text: string, retryAfterSeconds: number | undefined, operation: string): Promise<RemoteApiError> {
    const base = { provider: 'HTTP receiver', status, remoteMessage: text, operation, retryAfterSeconds };
    if (status === 410) {
      const reason = `the receiver answered 410 Gone at ${new URL(this.ctx.config.url).origin}: it wants no more events`;
      await this.ctx.store.set('gone_url', this.ctx.config.url);
      await this.ctx.pause(Infinity, reason);
      this.ctx.log.warn({ status }, 'HTTP receiver answered 410: events for this account stop until the URL changes');
      return new RemoteApiError({ ...base, kind: 'forbidden', hint: 'Events for this account are paused until resumed: point HTTP_CONNECTOR_URL at a receiver that wants them and restart.' });
    }
    if (status === 429) return new RemoteApiError({ ...base, kind: 'rate_limited', hint: 'The receiver is busy; the event is sent again after Retry-After.' });
    if (status >= 500 || status === 408) return new RemoteApiError({ ...base, kind: 'server', hint: 'The receiver failed; the event is sent again with the same webhook-id.' });
    if (status === 401 || status === 403) return new RemoteApiError({ ...base, kind: 'bad_credentials', hint: 'The receiver refused the signature: check that it verifies with the same key (HTTP_CONNECTOR_SECRET).' });
    return new RemoteApiError({ ...base, kind: 'bad_request', hint: 'The receiver refused this event for good; it is a dead letter (dead-letters retry sends it again).' });
  }
}
