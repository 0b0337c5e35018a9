import {
  RemoteApiError, describeError,
  type AccessCheck, type ChatInfo, type ConnectorContext, type ConnectorInstance, type ConversationRef, type ConversationRequest, type ConversationUpdate, type DeliveryItem,
  type IncomingReply, type ItemResult, type ReadReceipt, type ReplyOutcome, type WebhookRequest, type WebhookVerdict,
} from '../../../src/connector-sdk/index.js';
import type { AmoConfig } from '../config.js';
import { AmoConnector, LOST, WON } from '../connector.js';
import { leadName, placeholderLeadNames, priceOf } from '../mappers.js';
import { amoUserSchema } from '../schemas.js';
import { AmojoClient, type AmojoClientOptions } from './amojo-client.js';
import { buyerUser, deletedEdit, replyFromAmojo, replyFromHook, sendPayload } from './mappers.js';
import { amoAccountAmojoSchema, amoLeadStatusListSchema, amoUnsortedAcceptSchema, amoUnsortedListSchema, amojoHookSchema, anySchema } from './schemas.js';
import { verifyHookSignature } from './signing.js';

/**
 * Where a chat lives in chats mode: the Avito chat id is the amojo `conversation_id`, so it is
 * the conversation's id too (manager answers name it as `conversation.client_id`). The lead is
 * amoCRM's own (an unsorted lead on the first message); its id is kept once found.
 */
export interface ChatsRef extends ConversationRef {
  mode: 'chats';
  leadId: number | null;
  contactId: number | null;
}

/** Per-chat state in the connector store (`chats:chat:<chat id>`). */
interface ChatState {
  amojoChatId?: string;
  leadId?: number;
  /** Seconds of the last message either way (reconciliation reads recent chats only). */
  at?: number;
}

/** A chat whose amoCRM lead is to be found in Unsorted and given the item's name, price and tag. */
interface PendingLead {
  since: number;
  name: string;
  price: number | null;
  buyer: { id: string; name: string };
}

/** Messages written this long before chats mode first ran for the account are history: silent. */
export const HISTORY_GRACE_MS = 60 * 60 * 1000;
/** Reconciliation reads the history of chats active this recently (hooks are never retried). */
const RECONCILE_DAYS = 7;
/** …at most this many chats per look, most recent first. */
const RECONCILE_CHATS = 50;
/** A reconciliation look goes back this far before its cursor (reply ids dedupe what it sees twice). */
const RECONCILE_OVERLAP_S = 3600;
/** An unsorted lead not found within this time is given up on (a manager handled it first). */
const PENDING_TTL_MS = 24 * 3600 * 1000;

const K = {
  scope: 'chats:scope_id',
  amojoAccount: 'chats:amojo_account_id',
  since: 'chats:since',
  pending: 'chats:pending',
  active: 'chats:active',
  chat: (chatId: string) => `chats:chat:${chatId}`,
};

export function isChatsRef(ref: ConversationRef | undefined): ref is ChatsRef {
  return Boolean(ref && (ref as { mode?: unknown }).mode === 'chats');
}

/**
 * amoCRM chats mode (design.md §8.4): every Avito message goes into amoCRM's chat panel through
 * the Chats API, once (`msgid` = the Avito message id) and in order; amoCRM makes the contact
 * and an unsorted lead on the first message, which this connector finds, names after the item
 * and (when configured) accepts into the pipeline. Managers answer in the chat panel: the
 * signed hook brings the answer, a reconciliation over the chat history catches a lost hook,
 * and each answer's delivery status goes back into the chat.
 */
export class ChatsConnector implements ConnectorInstance {
  readonly limits = { maxBatch: 50, maxConversationBatch: 50 } as const;
  /** The REST side (account, pipelines, leads, unsorted), shared with notes mode. */
  readonly rest: AmoConnector;
  readonly amojo: AmojoClient;
  private scope: { scopeId: string; amojoAccountId: string } | undefined;
  private connecting: Promise<{ scopeId: string; amojoAccountId: string }> | undefined;
  private readonly loaded: Promise<void>;
  private since: number | undefined;
  private readonly sizes = new Map<string, number>();
  private warnedNoBot = false;

  constructor(private readonly ctx: ConnectorContext<AmoConfig>, amojoOptions: Partial<AmojoClientOptions> = {}) {
    const c = ctx.config;
    ctx.registerSecret(c.channelSecret);
    this.rest = new AmoConnector(ctx);
    this.amojo = new AmojoClient({
      amojoUrl: c.amojoUrl, channelId: c.channelId ?? '', channelSecret: c.channelSecret ?? '', log: ctx.log,
      requestsPerSecond: c.requestsPerSecond, ...(ctx.retry ? { retry: ctx.retry } : {}),
      ...(ctx.requestGate ? { gate: ctx.requestGate({ intervalMs: Math.ceil(1000 / c.requestsPerSecond), name: 'amojo' }) } : {}), ...amojoOptions,
    });
    // The scope id routes hooks (`matchesWebhook` is synchronous): known before the first hook.
    this.loaded = this.loadScope().catch(() => undefined);
  }

  private get config(): AmoConfig {
    return this.ctx.config;
  }

  private async loadScope(): Promise<void> {
    const scopeId = await this.ctx.store.get(K.scope);
    const amojoAccountId = await this.ctx.store.get(K.amojoAccount);
    if (scopeId && amojoAccountId) this.scope = { scopeId, amojoAccountId };
  }

  /** The account's scope id: connected once (`amojo_id` from REST, then `connect`), then kept. */
  async scopeId(): Promise<string> {
    await this.loaded;
    if (this.scope) return this.scope.scopeId;
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return (await this.connecting).scopeId;
  }

  private async connect(): Promise<{ scopeId: string; amojoAccountId: string }> {
    const acc = await this.rest.client.request({ method: 'GET', path: '/api/v4/account', query: { with: 'amojo_id' }, schema: amoAccountAmojoSchema });
    if (!acc?.amojo_id) {
      throw new RemoteApiError({ provider: 'amoCRM', kind: 'forbidden', status: 200, remoteMessage: 'the account has no amojo_id', hint: 'amoCRM did not give the account\'s chat id (amojo_id): the account has no chats enabled, or the token\'s user cannot see it.', operation: 'GET /api/v4/account?with=amojo_id' });
    }
    this.ctx.log.info({ amojoAccountId: acc.amojo_id }, 'connecting the amoCRM account to the chat channel');
    const scopeId = await this.amojo.connect(acc.amojo_id, 'Avito');
    await this.ctx.store.set(K.amojoAccount, acc.amojo_id);
    await this.ctx.store.set(K.scope, scopeId);
    await this.ctx.store.set('status:chat channel', `connected (amoCRM chats mode), scope_id ${scopeId}; hooks at /webhooks/amojo/${scopeId}`);
    this.scope = { scopeId, amojoAccountId: acc.amojo_id };
    this.ctx.log.info({ scopeId }, 'amoCRM chat channel connected');
    return this.scope;
  }

  /** After amoCRM forgot the connection (integration switched off and on): connect again, once. */
  private async withScope<T>(fn: (scopeId: string) => Promise<T>): Promise<T> {
    const scopeId = await this.scopeId();
    try {
      return await fn(scopeId);
    } catch (err) {
      if (!(err instanceof RemoteApiError) || err.status !== 404 || !/scope|account|channel/i.test(err.remoteMessage)) throw err;
      this.ctx.log.warn({ err: describeError(err) }, 'amoCRM no longer knows the channel connection; connecting again');
      this.scope = undefined;
      await this.ctx.store.deletePrefix(K.scope);
      return fn(await this.scopeId());
    }
  }

  /** When chats mode first ran for this account (ms): older messages are history. */
  private async chatsSince(): Promise<number> {
    if (this.since !== undefined) return this.since;
    const stored = Number((await this.ctx.store.get(K.since)) ?? 0);
    if (stored) return (this.since = stored);
    this.since = Date.now();
    await this.ctx.store.set(K.since, String(this.since));
    return this.since;
  }

  private async chatState(chatId: string): Promise<ChatState> {
    const raw = await this.ctx.store.get(K.chat(chatId));
    return raw ? (JSON.parse(raw) as ChatState) : {};
  }

  private async setChatState(chatId: string, patch: ChatState): Promise<ChatState> {
    const next = { ...(await this.chatState(chatId)), ...patch };
    await this.ctx.store.set(K.chat(chatId), JSON.stringify(next));
    return next;
  }

  private async json<T>(key: string, fallback: T): Promise<T> {
    const raw = await this.ctx.store.get(key);
    return raw ? (JSON.parse(raw) as T) : fallback;
  }

  /** Recently active chats (for reconciliation), newest first, bounded. */
  private async touch(chatIds: Iterable<string>, at: number): Promise<void> {
    const active = await this.json<Record<string, number>>(K.active, {});
    for (const id of chatIds) active[id] = Math.max(active[id] ?? 0, at);
    const kept = Object.entries(active).sort((a, b) => b[1] - a[1]).slice(0, 500);
    await this.ctx.store.set(K.active, JSON.stringify(Object.fromEntries(kept)));
  }

  // ---- access --------------------------------------------------------------------------------

  async checkAccess(): Promise<AccessCheck[]> {
    const out: AccessCheck[] = [];
    const fail = (check: string, err: unknown): AccessCheck => ({
      check, verdict: 'fail', detail: describeError(err).split('. ')[0]!, ...(err instanceof RemoteApiError ? { action: err.hint } : {}),
    });
    try {
      const acc = await this.rest.client.request({ method: 'GET', path: '/api/v4/account', query: { with: 'amojo_id' }, schema: amoAccountAmojoSchema });
      out.push(acc?.amojo_id
        ? { check: 'amoCRM access', verdict: 'ok', detail: `account ${acc.name ?? acc.id}, chat id (amojo_id) ${acc.amojo_id}` }
        : { check: 'amoCRM access', verdict: 'fail', detail: 'the account answered without an amojo_id', action: 'Chats mode needs amoCRM chats on the account; check the token\'s user is an administrator.' });
      if (!acc?.amojo_id) return out;
    } catch (err) {
      out.push(fail('amoCRM access', err));
      return out;
    }
    try {
      // A fresh connect proves the channel id, the secret (signature) and the account's approval.
      this.scope = undefined;
      await this.ctx.store.deletePrefix(K.scope);
      const scopeId = await this.scopeId();
      out.push({ check: 'amoCRM chat channel', verdict: 'ok', detail: `channel ${this.config.channelId} connected; scope_id ${scopeId}`, action: `amoCRM sends managers' answers to the URL registered with the channel: <PUBLIC_URL>/webhooks/amojo/:scope_id (for this account /webhooks/amojo/${scopeId}).` });
    } catch (err) {
      out.push(fail('amoCRM chat channel', err));
      return out;
    }
    const c = this.config;
    if (c.pipelineId || c.statusId) {
      try {
        const t = await this.rest.resolveTarget();
        out.push({ check: 'amoCRM pipeline and status', verdict: 'ok', detail: `unsorted chat leads are accepted into pipeline ${t.pipelineId}, status ${t.statusId}` });
      } catch (err) {
        out.push(fail('amoCRM pipeline and status', err));
      }
    } else {
      out.push({ check: 'amoCRM pipeline and status', verdict: 'ok', detail: 'new chat leads stay in Unsorted for a manager to accept (set AMOCRM_PIPELINE_ID/AMOCRM_STATUS_ID to accept them automatically)' });
    }
    if (c.responsibleUserId) {
      try {
        await this.rest.client.request({ method: 'GET', path: `/api/v4/users/${c.responsibleUserId}`, schema: amoUserSchema });
        out.push({ check: 'amoCRM responsible user', verdict: 'ok', detail: `user ${c.responsibleUserId} exists` });
      } catch (err) {
        out.push(fail('amoCRM responsible user', err));
      }
    }
    out.push(c.channelBotId
      ? { check: 'amoCRM channel bot', verdict: 'ok', detail: `the seller's own messages are imported as bot ${c.channelBotId}` }
      : { check: 'amoCRM channel bot', verdict: 'warn', detail: 'AMOCRM_CHANNEL_BOT_ID is not set: what the seller writes in the Avito app is not put into the chat', action: 'Set AMOCRM_CHANNEL_BOT_ID to the bot id amoCRM issued with the channel.' });
    return out;
  }

  // ---- conversations -------------------------------------------------------------------------

  /**
   * Each chat's conversation is the Avito chat itself (amoCRM makes the lead). A chat that had a
   * notes-mode lead is attached to that lead's contact, so no second lead appears; a chat whose
   * known lead is won or lost gets amoCRM's new unsorted lead named when the buyer writes again.
   */
  async ensureConversations(requests: readonly ConversationRequest[]): Promise<ItemResult<ConversationRef>[]> {
    const out: ItemResult<ConversationRef>[] = [];
    const leadIds: number[] = [];
    for (const r of requests) {
      if (!r.buyerWrote || !isChatsRef(r.previous)) continue;
      const id = (await this.chatState(r.chat.chatId)).leadId ?? r.previous.leadId;
      if (id) leadIds.push(id);
    }
    const closed = await this.closedLeads(leadIds);
    for (const req of requests) {
      try {
        const prev = req.previous;
        if (isChatsRef(prev)) {
          const known = (await this.chatState(req.chat.chatId)).leadId ?? prev.leadId;
          if (req.buyerWrote && known && closed.has(known)) await this.expectLead(req.chat);
          // The lead found since is kept on the conversation (a switch back to notes uses it).
          out.push({ ok: true, value: known && known !== prev.leadId ? { ...prev, leadId: known } : prev });
        } else if (prev) {
          out.push({ ok: true, value: await this.adopt(req.chat, prev as ConversationRef & { leadId?: number; contactId?: number | null }) });
        } else {
          out.push({ ok: true, value: { id: req.chat.chatId, mode: 'chats', leadId: null, contactId: null } satisfies ChatsRef });
        }
      } catch (err) {
        out.push({ ok: false, error: err });
      }
    }
    return out;
  }

  /**
   * Notes → chats: the chat is created without an unsorted lead and linked to the lead's contact
   * (`POST /api/v4/contacts/chats`, chat-step-by-step § "Связывание нового чата с существующим
   * контактом"), so its messages join the same lead. Linking needs an administrator's token;
   * without it amoCRM makes an unsorted lead, which is then named like any new one.
   */
  private async adopt(chat: ChatInfo, prev: { leadId?: number; contactId?: number | null }): Promise<ChatsRef> {
    const ref: ChatsRef = { id: chat.chatId, mode: 'chats', leadId: prev.leadId ?? null, contactId: prev.contactId ?? null };
    const state = await this.chatState(chat.chatId);
    if (state.amojoChatId) return ref;
    const amojoChatId = await this.withScope((s) => this.amojo.createChat(s, { conversation_id: chat.chatId, user: buyerUser(chat) }));
    let linked = false;
    if (prev.contactId) {
      try {
        await this.rest.client.request({ method: 'POST', path: '/api/v4/contacts/chats', json: [{ contact_id: prev.contactId, chat_id: amojoChatId }], schema: anySchema });
        linked = true;
      } catch (err) {
        if (err instanceof RemoteApiError && err.transient) throw err;
        this.ctx.log.warn({ chat: chat.chatId, err: describeError(err) }, 'could not link the chat to the notes-mode contact; amoCRM will make an unsorted lead, which is named as usual');
      }
    }
    await this.setChatState(chat.chatId, { amojoChatId, ...(linked && prev.leadId ? { leadId: prev.leadId } : {}) });
    if (!linked) await this.expectLead(chat);
    return ref;
  }

  /**
   * A chat whose details (item, buyer) came after its first messages (capability
   * `updateConversations`). A lead this connector has found goes through notes mode's rename,
   * which changes only placeholder names: the lead's, and its contact's (the one amojo made for
   * the buyer, which names the chat in the panel). A lead amoCRM has not made yet gets the item's
   * name in its waiting entry, and the update fails for now (transient): tried again after the
   * lead is found, it names the contact too.
   */
  async updateConversations(updates: readonly ConversationUpdate[]): Promise<ItemResult<void>[]> {
    const lang = this.config.language;
    const out: ItemResult<void>[] = [];
    const found: { at: number; update: ConversationUpdate }[] = [];
    const pending = await this.json<Record<string, PendingLead>>(K.pending, {});
    const renamed = new Map<string, Pick<PendingLead, 'name' | 'price'>>();
    for (const u of updates) {
      const chatId = u.chat.chatId;
      const ref = u.conversation as Partial<ChatsRef>;
      const leadId = (await this.chatState(chatId)).leadId ?? ref.leadId ?? undefined;
      const waiting = pending[chatId];
      if (leadId) {
        found.push({ at: out.length, update: { conversation: { ...u.conversation, leadId, contactId: ref.contactId ?? undefined }, chat: u.chat } });
        out.push({ ok: false, error: new Error('not renamed') }); // replaced below
      } else if (waiting) {
        if (placeholderLeadNames(u.chat, lang).has(waiting.name)) renamed.set(chatId, { name: leadName(u.chat, lang), price: priceOf(u.chat.item.price) });
        out.push({ ok: false, error: new Error("amoCRM has not made this chat's lead yet: it is named when found, and its contact on the next try") });
      } else {
        out.push({ ok: true, value: undefined }); // no lead expected (the buyer has not written): nothing to name
      }
    }
    if (renamed.size > 0) {
      // Read again: the reply poll's settleLeads may have found (and dropped) an entry meanwhile,
      // and a stale copy written back would bring it back.
      const now = await this.json<Record<string, PendingLead>>(K.pending, {});
      for (const [chatId, r] of renamed) if (now[chatId]) Object.assign(now[chatId], r);
      await this.ctx.store.set(K.pending, JSON.stringify(now));
    }
    if (found.length > 0) {
      const results = await this.rest.updateConversations(found.map((f) => f.update));
      found.forEach((f, k) => (out[f.at] = results[k] ?? { ok: false, error: new Error('no result for this conversation') }));
    }
    return out;
  }

  /** Which of these leads are won, lost or deleted. */
  private async closedLeads(ids: readonly number[]): Promise<Set<number>> {
    const out = new Set<number>();
    for (let k = 0; k < ids.length; k += 250) {
      const part = ids.slice(k, k + 250);
      const res = await this.rest.client.request({ method: 'GET', path: '/api/v4/leads', query: { 'filter[id][]': part, limit: 250 }, schema: amoLeadStatusListSchema });
      const found = new Map((res?._embedded.leads ?? []).map((l) => [l.id, l]));
      for (const id of part) {
        const l = found.get(id);
        if (!l || l.is_deleted || l.status_id === WON || l.status_id === LOST) out.add(id);
      }
    }
    return out;
  }

  /** Remembers that amoCRM will make (or has made) an unsorted lead for this chat. */
  private async expectLead(chat: ChatInfo): Promise<void> {
    const pending = await this.json<Record<string, PendingLead>>(K.pending, {});
    const buyer = buyerUser(chat);
    pending[chat.chatId] = { since: Date.now(), name: leadName(chat, this.config.language), price: priceOf(chat.item.price), buyer: { id: buyer.id, name: buyer.name } };
    await this.ctx.store.set(K.pending, JSON.stringify(pending));
  }

  // ---- delivery ------------------------------------------------------------------------------

  /**
   * One `new_message` per item, in order. A chat whose message failed takes no later message in
   * this call (its order holds). A repeated msgid is already in the chat: delivered.
   */
  async deliver(items: readonly DeliveryItem[]): Promise<ItemResult<{ remoteId: string }>[]> {
    const out: ItemResult<{ remoteId: string }>[] = [];
    const since = await this.chatsSince();
    const failedChats = new Map<string, unknown>();
    const needLead = new Map<string, ChatInfo>();
    const touched = new Set<string>();
    let latest = 0;
    for (const d of items) {
      const chatId = d.chat.chatId;
      if (failedChats.has(chatId)) {
        out.push({ ok: false, error: failedChats.get(chatId) });
        continue;
      }
      try {
        if (!isChatsRef(d.conversation) && (d.conversation as { leadId?: unknown }).leadId !== undefined) {
          await this.adopt(d.chat, d.conversation as { leadId?: number; contactId?: number | null });
        }
        out.push({ ok: true, value: { remoteId: await this.deliverOne(d, since, needLead) } });
        touched.add(chatId);
        latest = Math.max(latest, d.message.created);
      } catch (err) {
        failedChats.set(chatId, err);
        out.push({ ok: false, error: err });
        // Credentials, signature, a ban: nothing else will pass either.
        if (err instanceof RemoteApiError && ['forbidden', 'bad_credentials', 'banned'].includes(err.kind)) {
          if (out.length === 1) throw err;
          for (let k = out.length; k < items.length; k++) out.push({ ok: false, error: err });
          break;
        }
      }
    }
    if (touched.size) await this.touch(touched, latest || Math.floor(Date.now() / 1000));
    for (const chat of needLead.values()) await this.expectLead(chat);
    // Naming the leads is best effort here; the reply poll tries again.
    await this.settleLeads().catch((err: unknown) => this.ctx.log.warn({ err: describeError(err) }, 'could not name the chat leads yet; trying again later'));
    return out;
  }

  private async deliverOne(d: DeliveryItem, since: number, needLead: Map<string, ChatInfo>): Promise<string> {
    const m = d.message;
    const lang = this.config.language;
    if (m.type === 'deleted' && m.messageId.endsWith(':deleted')) {
      const e = deletedEdit(m, lang);
      await this.withScope((s) => this.amojo.edit(s, { msgid: e.msgid, conversation_id: d.chat.chatId, timestamp: m.created, msec_timestamp: m.created * 1000, message: { type: 'text', text: e.text } }));
      return `edit:${e.msgid}`;
    }
    const history = m.created * 1000 < since - HISTORY_GRACE_MS;
    const payload = sendPayload(d, { accountId: this.ctx.accountId, botId: this.config.channelBotId, lang, history, sizeOf: (u) => this.sizes.get(u) });
    if (!payload) {
      if (!this.warnedNoBot) this.ctx.log.warn('the seller\'s own messages are not put into the amoCRM chat: set AMOCRM_CHANNEL_BOT_ID');
      this.warnedNoBot = true;
      return 'skipped:no-channel-bot';
    }
    const media = payload.message.media;
    if (media && payload.message.type !== 'location') {
      if (!this.sizes.has(media)) {
        if (this.sizes.size > 1000) this.sizes.clear();
        this.sizes.set(media, await contentLength(media));
      }
      payload.message.file_size = this.sizes.get(media)!;
    }
    const res = await this.withScope((s) => this.amojo.send(s, payload));
    if (!payload.silent && m.author.kind === 'buyer') {
      const state = await this.chatState(d.chat.chatId);
      const ref = d.conversation as Partial<ChatsRef>;
      if (!state.leadId && !ref.leadId) needLead.set(d.chat.chatId, d.chat);
    }
    return res.msgid;
  }

  /**
   * For items that may have reached the chat before a crash: the chat history names our
   * messages by `client_id` (= msgid). Chats whose amojo id is unknown are left to the duplicate
   * answer amojo gives a repeated msgid.
   */
  async findDelivered(items: readonly DeliveryItem[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    const byChat = new Map<string, Set<string>>();
    for (const d of items) byChat.set(d.chat.chatId, (byChat.get(d.chat.chatId) ?? new Set()).add(d.message.messageId));
    for (const [chatId, wanted] of byChat) {
      const state = await this.chatState(chatId);
      if (!state.amojoChatId) continue;
      for (let offset = 0; offset < 200; offset += 50) {
        const page = await this.withScope((s) => this.amojo.history(s, state.amojoChatId!, { offset, limit: 50 }));
        for (const h of page) if (h.message.client_id && wanted.has(h.message.client_id)) found.set(h.message.client_id, h.message.id ?? h.message.client_id);
        if (page.length < 50) break;
      }
    }
    return found;
  }

  // ---- the lead ------------------------------------------------------------------------------

  /**
   * Finds amoCRM's unsorted lead of each waiting chat (`GET /api/v4/leads/unsorted`, category
   * chats, matched by `metadata.origin.chat_id` = the amojo chat id), accepts it when a pipeline,
   * status or responsible user is configured, and puts the item's name, price and tag on it.
   */
  async settleLeads(): Promise<number> {
    const pending = await this.json<Record<string, PendingLead>>(K.pending, {});
    const chatIds = Object.keys(pending);
    if (chatIds.length === 0) return 0;
    const amojoIds = new Map<string, string>();
    for (const chatId of chatIds) {
      const state = await this.chatState(chatId);
      let id = state.amojoChatId;
      if (!id) {
        // Idempotent per conversation_id: for an existing chat it only tells its id.
        const p = pending[chatId]!;
        id = await this.withScope((s) => this.amojo.createChat(s, { conversation_id: chatId, user: { id: p.buyer.id, name: p.buyer.name } }));
        await this.setChatState(chatId, { amojoChatId: id });
      }
      amojoIds.set(id, chatId);
    }
    const entries = new Map<string, { uid: string; pipelineId: number | undefined; leadId: number | undefined }>();
    for (let page = 1; page <= 4; page++) {
      const res = await this.rest.client.request({ method: 'GET', path: '/api/v4/leads/unsorted', query: { 'filter[category][]': 'chats', 'order[created_at]': 'desc', limit: 250, page }, schema: amoUnsortedListSchema });
      const list = res?._embedded.unsorted ?? [];
      for (const u of list) {
        const chatId = u.metadata?.origin?.chat_id ? amojoIds.get(u.metadata.origin.chat_id) : undefined;
        if (chatId && !entries.has(chatId)) entries.set(chatId, { uid: u.uid, pipelineId: u.pipeline_id, leadId: u._embedded?.leads?.[0]?.id });
      }
      if (list.length < 250 || !res?._links?.next) break;
    }
    let settled = 0;
    const c = this.config;
    for (const chatId of chatIds) {
      const p = pending[chatId]!;
      const e = entries.get(chatId);
      if (!e?.leadId) {
        if (Date.now() - p.since > PENDING_TTL_MS) {
          this.ctx.log.warn({ chat: chatId }, 'no unsorted lead appeared for this chat within a day; it is not named');
          delete pending[chatId];
        }
        continue;
      }
      let leadId = e.leadId;
      const patch: Record<string, unknown> = { name: p.name, ...(p.price !== null ? { price: p.price } : {}), tags_to_add: [{ name: c.tag }] };
      if (c.pipelineId || c.statusId || c.responsibleUserId) {
        const target = c.pipelineId || c.statusId ? await this.rest.resolveTarget() : undefined;
        const samePipeline = target && (e.pipelineId === undefined || e.pipelineId === target.pipelineId);
        const accepted = await this.rest.client.request({
          method: 'POST', path: `/api/v4/leads/unsorted/${encodeURIComponent(e.uid)}/accept`,
          json: { ...(c.responsibleUserId ? { user_id: c.responsibleUserId } : {}), ...(samePipeline ? { status_id: target.statusId } : {}) },
          schema: amoUnsortedAcceptSchema,
        });
        leadId = accepted?._embedded?.leads?.[0]?.id ?? leadId;
        if (target && !samePipeline) Object.assign(patch, { pipeline_id: target.pipelineId, status_id: target.statusId });
        if (c.responsibleUserId) patch.responsible_user_id = c.responsibleUserId;
      }
      await this.rest.client.request({ method: 'PATCH', path: `/api/v4/leads/${leadId}`, json: patch, schema: anySchema });
      await this.setChatState(chatId, { leadId });
      delete pending[chatId];
      settled++;
      this.ctx.log.info({ chat: chatId, lead: leadId }, 'chat lead found and named');
    }
    await this.ctx.store.set(K.pending, JSON.stringify(pending));
    await this.ctx.store.set('status:leads waiting to be named', String(Object.keys(pending).length));
    return settled;
  }

  /** The lead the connector found for a chat, if any. */
  async leadOf(chatId: string): Promise<number | undefined> {
    return (await this.chatState(chatId)).leadId;
  }

  // ---- manager answers ------------------------------------------------------------------------

  /**
   * `POST /webhooks/amojo/<scope_id>`: amoCRM signs the body (hex HMAC-SHA1 with the channel
   * secret, chat-webhooks); a bad signature is refused before anything is read. A manager's
   * message becomes a reply; typing and reactions are acknowledged and dropped.
   */
  async webhook(req: WebhookRequest): Promise<WebhookVerdict> {
    // Without a channel secret nothing can be verified (the config refuses that; never trust an empty key).
    if (!this.config.channelSecret || !verifyHookSignature(this.config.channelSecret, req.body, req.headers['x-signature'])) {
      return { accepted: false, status: 401, reason: 'X-Signature does not match the body (channel secret)' };
    }
    await this.loaded;
    const token = req.pathToken;
    if (token && this.scope && token !== this.scope.scopeId) return { accepted: false, status: 404, reason: 'unknown scope_id' };
    let body: unknown;
    try {
      body = JSON.parse(req.body.toString('utf8'));
    } catch {
      return { accepted: false, status: 400, reason: 'body is not JSON' };
    }
    const hook = amojoHookSchema.safeParse(body);
    if (!hook.success) return { accepted: false, status: 400, reason: `not an amoCRM chat hook: ${hook.error.issues[0]?.message ?? 'unknown shape'}` };
    const reply = replyFromHook(hook.data);
    if (!reply) return { accepted: true };
    const conv = hook.data.message!.conversation;
    if (conv.id && reply.chatId) {
      const state = await this.chatState(reply.chatId);
      if (state.amojoChatId !== conv.id) await this.setChatState(reply.chatId, { amojoChatId: conv.id });
      await this.touch([reply.chatId], reply.createdAt);
    }
    return { accepted: true, replies: [reply] };
  }

  /** amojo calls `/webhooks/amojo/<scope_id>`: served here, every call's X-Signature checked in `webhook`. */
  servesAlias(alias: string): boolean {
    return alias === 'amojo';
  }

  /** Routes a hook by the scope id in its path, or the amojo account id in its body. */
  matchesWebhook(req: WebhookRequest): boolean {
    const token = req.pathToken;
    if (!this.scope) return false;
    if (token) return token === this.scope.scopeId;
    try {
      return (JSON.parse(req.body.toString('utf8')) as { account_id?: unknown }).account_id === this.scope.amojoAccountId;
    } catch {
      return false;
    }
  }

  /**
   * Reconciliation: amoCRM never retries a hook, so the history of recently active chats is read
   * for managers' messages (those without our `client_id`). Without a cursor, starts from now.
   * Waiting leads are named here too.
   */
  async pollReplies(cursor: string | undefined): Promise<{ replies: IncomingReply[]; cursor: string | undefined }> {
    const now = Math.floor(Date.now() / 1000);
    await this.settleLeads().catch((err: unknown) => this.ctx.log.warn({ err: describeError(err) }, 'could not name the chat leads yet'));
    if (cursor === undefined) return { replies: [], cursor: String(now) };
    const from = Number(cursor) - RECONCILE_OVERLAP_S;
    const active = await this.json<Record<string, number>>(K.active, {});
    const recent = Object.entries(active).filter(([, at]) => at >= Number(cursor) - RECONCILE_DAYS * 86_400).sort((a, b) => b[1] - a[1]).slice(0, RECONCILE_CHATS);
    const replies: IncomingReply[] = [];
    for (const [chatId] of recent) {
      const state = await this.chatState(chatId);
      if (!state.amojoChatId) continue;
      const page = await this.withScope((s) => this.amojo.history(s, state.amojoChatId!, { limit: 50 }));
      // Oldest first, so answers are sent in the order the manager wrote them.
      const ordered = page.map((h, i) => ({ h, i })).sort((x, y) => (x.h.msec_timestamp ?? (x.h.timestamp ?? 0) * 1000) - (y.h.msec_timestamp ?? (y.h.timestamp ?? 0) * 1000) || y.i - x.i).map((x) => x.h);
      for (const h of ordered) {
        const at = h.timestamp ?? Math.floor((h.msec_timestamp ?? 0) / 1000);
        const ours = Boolean(h.message.client_id) || Boolean(h.sender?.client_id);
        if (ours || !h.message.id || at < from) continue;
        replies.push(replyFromAmojo({ ...h.message, id: h.message.id }, chatId, at));
      }
    }
    return { replies, cursor: String(now) };
  }

  /**
   * Each answer's fate goes back into the chat as its delivery status (chat-step-by-step): 1 =
   * delivered, -1 with code 905 and the reason, which amoCRM shows the manager.
   */
  async reportReplies(items: readonly { conversation: ConversationRef; remoteId: string; outcome: ReplyOutcome }[]): Promise<void> {
    for (const i of items) {
      const status = i.outcome.sent
        ? { delivery_status: 1 as const }
        : { delivery_status: -1 as const, error_code: 905, error: `Avito: ${i.outcome.reason}`.slice(0, 500) };
      try {
        await this.withScope((s) => this.amojo.deliveryStatus(s, i.remoteId, status));
      } catch (err) {
        if (err instanceof RemoteApiError && !err.transient && err.kind !== 'forbidden') {
          this.ctx.log.warn({ msgid: i.remoteId, err: describeError(err) }, 'amoCRM did not take the delivery status; skipped');
          continue;
        }
        throw err;
      }
    }
  }

  /** The buyer read our reply on Avito: delivery_status 2 ("read") on the manager's message (chat-api delivery status). */
  async markRead(items: readonly ReadReceipt[]): Promise<void> {
    for (const i of items) {
      try {
        await this.withScope((s) => this.amojo.deliveryStatus(s, i.remoteId, { delivery_status: 2 }));
      } catch (err) {
        if (err instanceof RemoteApiError && !err.transient && err.kind !== 'forbidden') {
          this.ctx.log.warn({ msgid: i.remoteId, err: describeError(err) }, 'amoCRM did not take the read status; skipped');
          continue;
        }
        throw err;
      }
    }
  }

  async forgetCrmObjects(): Promise<void> {
    await this.ctx.store.deletePrefix('chats:');
    this.scope = undefined;
    this.since = undefined;
    await this.rest.forgetCrmObjects();
  }

  async close(): Promise<void> {
    await this.rest.close();
  }
}

/** `file_size` is required for pictures: the link's Content-Length (HEAD), 0 when it will not say. */
async function contentLength(url: string): Promise<number> {
  try {
    const res = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(10_000) });
    return res.ok ? Number(res.headers.get('content-length') ?? 0) || 0 : 0;
  } catch {
    return 0;
  }
}
