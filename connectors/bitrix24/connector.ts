import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import {
  RemoteApiError, describeError,
  type AccessCheck, type ConnectorContext, type ConnectorInstance, type ConversationRef, type ConversationRequest, type ConversationUpdate, type DeliveryItem,
  type IncomingReply, type ItemResult, type ReplyOutcome, type WebhookRequest, type WebhookVerdict,
} from '../../src/connector-sdk/index.js';
import { B24Client, BATCH_LIMIT, B24_HINTS, classify, type B24Command } from './client.js';
import type { B24Config } from './config.js';
import { buyerKey, commentText, contactName, entityComments, fateText, markerOf, ORIGINATOR, placeholderNames, placeholderTitles, priceOf, titleOf } from './mappers.js';
import { COMMENT_ADD_EVENT, parseEvent, replyFromComment } from './replies.js';
import { b24CommentSchema, b24ContactSchema, b24DealSchema, b24IdSchema, b24LeadSchema, b24UserSchema, type B24BatchResult, type B24Comment } from './schemas.js';

/** Where a chat lives in Bitrix24: its lead (or deal) and the buyer's contact. `id` is the lead's (deal's) id. */
export interface B24Ref extends ConversationRef {
  entity: 'lead' | 'deal';
  entityId: number;
  contactId: number | null;
}

/** Chats per create batch: a contact and a lead each, 50 commands. */
const CREATE_CHUNK = BATCH_LIMIT / 2;
/** Store key: `{"lead:12": <epoch ms of its last Avito message>}`, the leads polled for replies. */
const ACTIVE_KEY = 'active_entities';
/** List pages followed per lead before a poll stops (50 comments each). */
const MAX_PAGES = 100;

const rowsOf = <T>(schema: z.ZodType<T>) => z.array(schema).catch([]);

/**
 * The Bitrix24 connector ("timeline mode", reference B.7): a contact per Avito buyer, a lead (or
 * deal) per chat tagged `ORIGINATOR_ID=avito`, `ORIGIN_ID=<chat id>` and found again by them; each
 * message one timeline comment ending with a marker, 50 per `batch`; replies are comments that
 * start with the prefix, found through the outbound webhook's ONCRMTIMELINECOMMENTADD event and by
 * polling the comments of recently active leads.
 */
export class B24Connector implements ConnectorInstance {
  readonly client: B24Client;
  private readonly config: B24Config;
  private pendingComments: { ids: Set<number>; done: Promise<Map<number, B24Comment>> } | undefined;

  constructor(private readonly ctx: ConnectorContext<B24Config>) {
    this.config = ctx.config;
    ctx.registerSecret(new URL(ctx.config.webhookUrl).pathname.split('/').filter(Boolean)[2]);
    ctx.registerSecret(ctx.config.webhookUrl);
    ctx.registerSecret(ctx.config.applicationToken);
    this.client = new B24Client({ config: ctx.config, log: ctx.log, pauses: ctx, retry: ctx.retry, ...(ctx.requestGate ? { gate: ctx.requestGate({ intervalMs: 1000 / ctx.config.requestsPerSecond, burst: ctx.config.burst }) } : {}) });
  }

  private get responsibleId(): number {
    return this.config.responsibleId ?? this.config.webhookUserId;
  }

  // ---- access ----------------------------------------------------------------------------------

  /** One batch: `scope`, `user.current`, `user.get` of the responsible user, `crm.settings.mode.get`. */
  async checkAccess(): Promise<AccessCheck[]> {
    const paused = await this.ctx.paused();
    if (paused) return [{ check: 'Bitrix24 webhook', verdict: 'fail', detail: paused.reason, action: B24_HINTS.banned }];
    let res: B24BatchResult;
    try {
      res = await this.client.batch({
        scope: { method: 'scope' },
        me: { method: 'user.current' },
        user: { method: 'user.get', params: { ID: this.responsibleId } },
        mode: { method: 'crm.settings.mode.get' },
      });
    } catch (err) {
      return [{ check: 'Bitrix24 webhook', verdict: 'fail', detail: describeError(err), action: err instanceof RemoteApiError ? err.hint : 'Check BITRIX24_WEBHOOK_URL.' }];
    }
    const checks: AccessCheck[] = [];
    const me = b24UserSchema.safeParse(res.result.me);
    checks.push(me.success
      ? { check: 'Bitrix24 webhook', verdict: 'ok', detail: `portal ${this.config.portal}, webhook of user #${me.data.ID}${me.data.NAME ? ` (${[me.data.NAME, me.data.LAST_NAME].filter(Boolean).join(' ')})` : ''}` }
      : { check: 'Bitrix24 webhook', verdict: 'fail', detail: errorText(res, 'me') ?? 'user.current gave no user', action: B24_HINTS.forbidden });
    const scopes = z.array(z.string()).safeParse(res.result.scope);
    const missing = ['crm', 'user'].filter((s) => !scopes.success || !scopes.data.includes(s));
    checks.push(missing.length === 0
      ? { check: 'Bitrix24 scopes', verdict: 'ok', detail: `the webhook has ${scopes.data!.join(', ')}` }
      : { check: 'Bitrix24 scopes', verdict: 'fail', detail: `the webhook lacks the scope${missing.length > 1 ? 's' : ''} ${missing.join(' and ')}`, action: 'Edit the incoming webhook in Bitrix24 (Developer resources → Integrations) and tick CRM (crm) and Users (user); the URL stays the same.' });
    const user = rowsOf(b24UserSchema).parse(res.result.user)[0];
    const active = user && user.ACTIVE !== false && user.ACTIVE !== 'N';
    checks.push(active
      ? { check: 'Bitrix24 responsible user', verdict: 'ok', detail: `new ${this.config.entity}s go to user #${user.ID}${user.NAME ? ` (${[user.NAME, user.LAST_NAME].filter(Boolean).join(' ')})` : ''}` }
      : { check: 'Bitrix24 responsible user', verdict: 'fail', detail: `user #${this.responsibleId} ${user ? 'is not active' : 'does not exist'} in Bitrix24`, action: 'Set BITRIX24_RESPONSIBLE_ID to an active employee\'s id (Employees → profile URL /company/personal/user/<id>/), or leave it empty to use the webhook\'s user.' });
    if (res.result.mode !== undefined) {
      const simple = Number(res.result.mode) === 2;
      checks.push(simple && this.config.entity === 'lead'
        ? { check: 'Bitrix24 CRM mode', verdict: 'warn', detail: 'the portal runs the simple CRM (no leads): a new lead is converted to a deal at once', action: 'Set BITRIX24_ENTITY=deal.' }
        : { check: 'Bitrix24 CRM mode', verdict: 'ok', detail: `${simple ? 'simple' : 'classic'} CRM; Avito chats become ${this.config.entity}s` });
    }
    checks.push(this.config.applicationToken
      ? { check: 'Bitrix24 events', verdict: 'ok', detail: 'ONCRMTIMELINECOMMENTADD events are checked against BITRIX24_APPLICATION_TOKEN' }
      : { check: 'Bitrix24 events', verdict: 'warn', detail: 'BITRIX24_APPLICATION_TOKEN is not set: events are refused and replies are found by polling only (slower)', action: 'Create an outbound webhook for ONCRMTIMELINECOMMENTADD pointing at PUBLIC_URL/webhooks/bitrix24/<WEBHOOK_SECRET> and set BITRIX24_APPLICATION_TOKEN to its token.' });
    return checks;
  }

  // ---- conversations ---------------------------------------------------------------------------

  async ensureConversations(requests: readonly ConversationRequest[]): Promise<ItemResult<ConversationRef>[]> {
    const entity = this.config.entity;
    const results = new Map<number, ItemResult<ConversationRef>>();
    const need: { i: number; req: ConversationRequest; contactId: number | null }[] = [];

    // A chat we may have created before (the ledger has it, or an intent was recorded before a
    // crash) is looked up by ORIGINATOR_ID/ORIGIN_ID; the newest open lead (deal) is the one.
    const lookups: { i: number; req: ConversationRequest }[] = [];
    for (const [i, req] of requests.entries()) {
      if (req.previous && !req.buyerWrote) results.set(i, { ok: true, value: req.previous });
      else if (req.previous || (await this.ctx.store.get(`intent:${req.chat.chatId}`))) lookups.push({ i, req });
      else need.push({ i, req, contactId: null });
    }
    const closedSchema = entity === 'lead' ? b24LeadSchema : b24DealSchema;
    for (let k = 0; k < lookups.length; k += BATCH_LIMIT) {
      const part = lookups.slice(k, k + BATCH_LIMIT);
      let res: B24BatchResult;
      try {
        res = await this.client.batch(Object.fromEntries(part.map((l, j) => [`f${j}`, {
          method: `crm.${entity}.list`,
          params: { filter: { ORIGINATOR_ID: ORIGINATOR, ORIGIN_ID: l.req.chat.chatId }, select: ['ID', 'CONTACT_ID', entity === 'lead' ? 'STATUS_SEMANTIC_ID' : 'STAGE_SEMANTIC_ID', 'CLOSED'], order: { ID: 'DESC' } },
        }])));
      } catch (err) {
        if (isHalting(err)) throw err;
        for (const l of part) results.set(l.i, { ok: false, error: err });
        continue;
      }
      part.forEach((l, j) => {
        const failed = commandError(res, `f${j}`, `crm.${entity}.list`);
        if (failed) return results.set(l.i, { ok: false, error: failed });
        const rows = rowsOf(closedSchema).parse(res.result[`f${j}`]);
        const open = rows.find((r) => !isClosed(r));
        if (open) return results.set(l.i, { ok: true, value: this.ref(open.ID, open.CONTACT_ID ?? (l.req.previous?.contactId as number | null | undefined) ?? null) });
        if (rows.length && !l.req.buyerWrote) return results.set(l.i, { ok: true, value: this.ref(rows[0]!.ID, rows[0]!.CONTACT_ID ?? null) });
        // Closed (junk or converted; won or lost) and the buyer wrote again, or gone: a new one.
        need.push({ i: l.i, req: l.req, contactId: rows[0]?.CONTACT_ID ?? null });
        return undefined;
      });
    }
    if (need.length === 0) return requests.map((_, i) => results.get(i)!);

    // Contacts: remembered per buyer; one that may have been created before a crash is looked up.
    const contactOf = new Map<string, number>();
    const contactLookups: string[] = [];
    for (const n of need) {
      const key = buyerKey(n.req.chat);
      if (n.contactId) contactOf.set(key, n.contactId);
      if (contactOf.has(key) || contactLookups.includes(key)) continue;
      const known = await this.ctx.store.get(`contact:${key}`);
      if (known) contactOf.set(key, Number(known));
      else if (await this.ctx.store.get(`cintent:${key}`)) contactLookups.push(key);
    }
    for (let k = 0; k < contactLookups.length; k += BATCH_LIMIT) {
      const part = contactLookups.slice(k, k + BATCH_LIMIT);
      const res = await this.client.batch(Object.fromEntries(part.map((key, j) => [`c${j}`, { method: 'crm.contact.list', params: { filter: { ORIGINATOR_ID: ORIGINATOR, ORIGIN_ID: key }, select: ['ID'], order: { ID: 'ASC' } } }])));
      part.forEach((key, j) => {
        const row = rowsOf(b24ContactSchema).parse(res.result[`c${j}`])[0];
        if (row) contactOf.set(key, row.ID);
      });
    }

    // Intents first: a crash after Bitrix24 created these but before the ledger knew is found again.
    for (const n of need) {
      await this.ctx.store.set(`intent:${n.req.chat.chatId}`, String(Date.now()));
      if (!contactOf.has(buyerKey(n.req.chat))) await this.ctx.store.set(`cintent:${buyerKey(n.req.chat)}`, String(Date.now()));
    }
    for (let k = 0; k < need.length; k += CREATE_CHUNK) {
      const part = need.slice(k, k + CREATE_CHUNK);
      const cmds: Record<string, B24Command> = {};
      const creating = new Map<string, string>(); // buyer key → command key of its contact.add
      part.forEach((n, j) => {
        const key = buyerKey(n.req.chat);
        let contact: string | number | undefined = contactOf.get(key);
        if (contact === undefined) {
          if (!creating.has(key)) {
            cmds[`c${j}`] = { method: 'crm.contact.add', params: { fields: this.contactFields(n.req) } };
            creating.set(key, `c${j}`);
          }
          contact = `$result[${creating.get(key)!}]`;
        }
        cmds[`l${j}`] = { method: `crm.${entity}.add`, params: { fields: this.entityFields(n.req, contact) } };
      });
      let res: B24BatchResult;
      try {
        res = await this.client.batch(cmds, { write: true });
      } catch (err) {
        if (isHalting(err)) throw err;
        for (const n of part) results.set(n.i, { ok: false, error: err });
        continue;
      }
      for (const [key, cmdKey] of creating) {
        const id = b24IdSchema.safeParse(res.result[cmdKey]);
        if (id.success) {
          contactOf.set(key, id.data);
          await this.ctx.store.set(`contact:${key}`, String(id.data));
        }
      }
      const now = Date.now();
      const active: Record<string, number> = {};
      part.forEach((n, j) => {
        const id = b24IdSchema.safeParse(res.result[`l${j}`]);
        if (!id.success) {
          results.set(n.i, { ok: false, error: commandError(res, `l${j}`, `crm.${entity}.add`) ?? new Error(`Bitrix24 created no ${entity} for this chat`) });
          return;
        }
        active[`${entity}:${id.data}`] = now;
        results.set(n.i, { ok: true, value: this.ref(id.data, contactOf.get(buyerKey(n.req.chat)) ?? null) });
      });
      await this.markActive(active);
    }
    return requests.map((_, i) => results.get(i) ?? { ok: false, error: new Error('no result') });
  }

  /**
   * Leads (deals) made before their chat's details arrived, named after them now (capability
   * `updateConversations`): the TITLE (and a lead's NAME) while it still is the one this connector
   * gives a chat without details — what a manager renamed stays. One `batch` of
   * `crm.<entity>.get`, then one of `crm.<entity>.update` `{id, fields}` for those still named so
   * (reference B.7; `result: true`). Setting a title twice does no harm, so the batches are retried
   * like reads. A lead (deal) that is gone has nothing left to name.
   */
  async updateConversations(updates: readonly ConversationUpdate[]): Promise<ItemResult<void>[]> {
    const lang = this.config.language;
    const out: ItemResult<void>[] = updates.map(() => ({ ok: true, value: undefined }));
    for (let k = 0; k < updates.length; k += BATCH_LIMIT) {
      const part = updates.slice(k, k + BATCH_LIMIT);
      const target = part.map((u) => ({ entity: entityOf(u.conversation, this.config.entity), id: entityIdOf(u.conversation) }));
      const got = await this.client.batch(Object.fromEntries(part.map((_, j) => [`g${j}`, { method: `crm.${target[j]!.entity}.get`, params: { id: target[j]!.id } }])));
      const cmds: Record<string, B24Command> = {};
      part.forEach((u, j) => {
        const failed = commandError(got, `g${j}`, `crm.${target[j]!.entity}.get`);
        if (failed) {
          if (!/NOT_FOUND|not found/i.test(failed.remoteMessage ?? '')) out[k + j] = { ok: false, error: failed };
          return;
        }
        const row = b24LeadSchema.safeParse(got.result[`g${j}`]);
        if (!row.success) {
          out[k + j] = { ok: false, error: new Error(`Bitrix24 answered crm.${target[j]!.entity}.get with an unreadable ${target[j]!.entity}`) };
          return;
        }
        const fields: Record<string, string> = {};
        const title = titleOf(u.chat, lang);
        if (row.data.TITLE !== title && placeholderTitles(u.chat, lang).has(row.data.TITLE ?? '')) fields.TITLE = title;
        const name = contactName(u.chat);
        if (target[j]!.entity === 'lead' && u.chat.buyer.name?.trim() && row.data.NAME !== name && placeholderNames(u.chat).has(row.data.NAME ?? '')) fields.NAME = name;
        if (Object.keys(fields).length) cmds[`u${j}`] = { method: `crm.${target[j]!.entity}.update`, params: { id: target[j]!.id, fields } };
      });
      if (Object.keys(cmds).length === 0) continue;
      let res: B24BatchResult;
      try {
        res = await this.client.batch(cmds);
      } catch (err) {
        if (isHalting(err)) throw err;
        for (const key of Object.keys(cmds)) out[k + Number(key.slice(1))] = { ok: false, error: err };
        continue;
      }
      for (const key of Object.keys(cmds)) {
        const failed = commandError(res, key, cmds[key]!.method);
        if (failed) out[k + Number(key.slice(1))] = { ok: false, error: failed };
      }
    }
    return out;
  }

  private entityFields(req: ConversationRequest, contact: number | string): Record<string, unknown> {
    const c = req.chat;
    const price = priceOf(c.item.price);
    return {
      TITLE: titleOf(c, this.config.language),
      ...(this.config.entity === 'lead' ? { NAME: contactName(c) } : { ...(this.config.categoryId !== undefined ? { CATEGORY_ID: this.config.categoryId } : {}) }),
      ...(price !== null ? { OPPORTUNITY: price, CURRENCY_ID: this.config.currency } : {}),
      ASSIGNED_BY_ID: this.responsibleId,
      SOURCE_ID: 'OTHER',
      SOURCE_DESCRIPTION: `Avito: ${c.chatUrl}`,
      COMMENTS: entityComments(c, this.config.language),
      ORIGINATOR_ID: ORIGINATOR,
      ORIGIN_ID: c.chatId,
      CONTACT_ID: contact,
      OPENED: 'Y',
    };
  }

  private contactFields(req: ConversationRequest): Record<string, unknown> {
    const c = req.chat;
    return {
      NAME: contactName(c),
      ASSIGNED_BY_ID: this.responsibleId,
      SOURCE_ID: 'OTHER',
      SOURCE_DESCRIPTION: 'Avito',
      ORIGINATOR_ID: ORIGINATOR,
      ORIGIN_ID: buyerKey(c),
      OPENED: 'Y',
      ...(c.buyer.url ? { WEB: [{ VALUE: c.buyer.url, VALUE_TYPE: 'OTHER' }] } : {}),
    };
  }

  private ref(entityId: number, contactId: number | null): B24Ref {
    return { id: String(entityId), entity: this.config.entity, entityId, contactId };
  }

  // ---- delivery --------------------------------------------------------------------------------

  /** `crm.timeline.comment.add`, up to 50 per `batch`, in order (a batch runs its commands in order). */
  async deliver(items: readonly DeliveryItem[]): Promise<ItemResult<{ remoteId: string }>[]> {
    const out: ItemResult<{ remoteId: string }>[] = [];
    const step = this.config.commentsPerRequest;
    for (let k = 0; k < items.length; k += step) {
      const part = items.slice(k, k + step);
      let res: B24BatchResult;
      try {
        res = await this.client.batch(Object.fromEntries(part.map((d, j) => [`m${j}`, {
          method: 'crm.timeline.comment.add',
          params: { fields: { ENTITY_ID: entityIdOf(d.conversation), ENTITY_TYPE: entityOf(d.conversation, this.config.entity), COMMENT: commentText(d.message, d.chat, this.config) } },
        }])), { write: true });
      } catch (err) {
        // Nothing of this request was written; earlier requests' comments were.
        if (k === 0) throw err;
        for (let j = k; j < items.length; j++) out.push({ ok: false, error: err });
        break;
      }
      part.forEach((d, j) => {
        const id = b24IdSchema.safeParse(res.result[`m${j}`]);
        out.push(id.success ? { ok: true, value: { remoteId: String(id.data) } } : { ok: false, error: commandError(res, `m${j}`, 'crm.timeline.comment.add') ?? new Error('Bitrix24 created no comment for this message') });
      });
    }
    const now = Date.now();
    await this.markActive(Object.fromEntries(items.map((d) => [`${entityOf(d.conversation, this.config.entity)}:${entityIdOf(d.conversation)}`, now])));
    return out;
  }

  /** Comments on these leads (deals) whose marker names one of these messages. */
  async findDelivered(items: readonly DeliveryItem[]): Promise<Map<string, string>> {
    const wanted = new Set(items.map((d) => d.message.messageId));
    const entities = [...new Set(items.map((d) => `${entityOf(d.conversation, this.config.entity)}:${entityIdOf(d.conversation)}`))];
    const found = new Map<string, string>();
    for (const c of await this.listComments(entities, 0)) {
      const id = markerOf(c.COMMENT);
      if (id && wanted.has(id)) found.set(id, String(c.ID));
    }
    return found;
  }

  /**
   * `crm.timeline.comment.list` (ENTITY_ID and ENTITY_TYPE are required filters; 50 per page)
   * for many leads at once, every page, comments with ID above `sinceId` — also checked here,
   * in case a portal ignores the `>ID` filter.
   */
  private async listComments(entities: readonly string[], sinceId: number): Promise<B24Comment[]> {
    const out: B24Comment[] = [];
    let queue = entities.map((key) => ({ key, start: 0, pages: 0 }));
    while (queue.length) {
      const part = queue.slice(0, BATCH_LIMIT);
      queue = queue.slice(BATCH_LIMIT);
      const res = await this.client.batch(Object.fromEntries(part.map((q, j) => {
        const [type, id] = q.key.split(':');
        return [`q${j}`, {
          method: 'crm.timeline.comment.list',
          params: { filter: { ENTITY_TYPE: type, ENTITY_ID: Number(id), ...(sinceId > 0 ? { '>ID': sinceId } : {}) }, select: ['ID', 'ENTITY_ID', 'ENTITY_TYPE', 'CREATED', 'AUTHOR_ID', 'COMMENT'], order: { ID: 'ASC' }, ...(q.start ? { start: q.start } : {}) },
        }];
      })));
      part.forEach((q, j) => {
        const failed = commandError(res, `q${j}`, 'crm.timeline.comment.list');
        if (failed) throw failed;
        for (const c of rowsOf(b24CommentSchema).parse(res.result[`q${j}`])) if (c.ID > sinceId) out.push(c);
        const next = res.result_next[`q${j}`];
        if (next !== undefined && next > q.start && q.pages + 1 < MAX_PAGES) queue.push({ key: q.key, start: next, pages: q.pages + 1 });
      });
    }
    return out.sort((a, b) => a.ID - b.ID);
  }

  // ---- replies ---------------------------------------------------------------------------------

  /**
   * Comments with an id above the cursor on the leads (deals) that had an Avito message in the last
   * `replyPollDays`, oldest first. The cursor is the highest comment id seen. The first look starts
   * at 0: every lead polled was created by this connector, so every comment on it is looked at,
   * however early it was written (invariant 7) — never "from now".
   */
  async pollReplies(cursor: string | undefined): Promise<{ replies: IncomingReply[]; cursor: string | undefined }> {
    const since = cursor !== undefined && /^\d+$/.test(cursor) ? Number(cursor) : 0;
    const active = await this.activeEntities();
    const entities = Object.keys(active).filter((k) => k.startsWith(`${this.config.entity}:`));
    if (entities.length === 0) return { replies: [], cursor: String(since) };
    let high = since;
    const replies: IncomingReply[] = [];
    for (const c of await this.listComments(entities, since)) {
      high = Math.max(high, c.ID);
      const r = replyFromComment(c, this.config.replyPrefix, this.config.entity);
      if (r) replies.push(r);
    }
    return { replies, cursor: String(high) };
  }

  /**
   * The outbound webhook (`POST /webhooks/bitrix24/<WEBHOOK_SECRET>`): refused (401) unless its
   * `auth[application_token]` is BITRIX24_APPLICATION_TOKEN; ONCRMTIMELINECOMMENTADD carries only
   * the comment's id, so the comment is read back (`crm.timeline.comment.get`, several events'
   * comments in one batch) and returned only when it is a reply.
   */
  async webhook(req: WebhookRequest): Promise<WebhookVerdict> {
    const ev = parseEvent(req);
    if (!ev) return { accepted: false, status: 400, reason: 'not a Bitrix24 event (expected a form body with event, data[FIELDS][ID] and auth[application_token])' };
    const token = this.config.applicationToken;
    if (!token) return { accepted: false, status: 401, reason: 'BITRIX24_APPLICATION_TOKEN is not set: Bitrix24 events are refused' };
    if (!ev.applicationToken || !sameSecret(ev.applicationToken, token)) return { accepted: false, status: 401, reason: 'auth[application_token] does not match BITRIX24_APPLICATION_TOKEN' };
    if (ev.event.toUpperCase() !== COMMENT_ADD_EVENT) return { accepted: true };
    const commentId = ev.commentId;
    if (!commentId) return { accepted: false, status: 400, reason: 'the event carries no data[FIELDS][ID]' };
    return {
      accepted: true,
      later: async () => {
        const c = (await this.readComments(commentId)).get(commentId);
        const r = c && replyFromComment(c, this.config.replyPrefix, this.config.entity);
        return r ? [r] : [];
      },
    };
  }

  /** An event for this instance's portal: its `auth[domain]`, or its application token. */
  matchesWebhook(req: WebhookRequest): boolean {
    const ev = parseEvent(req);
    if (!ev) return false;
    if (ev.domain && ev.domain === this.config.portal) return true;
    return Boolean(ev.applicationToken && this.config.applicationToken && sameSecret(ev.applicationToken, this.config.applicationToken));
  }

  /** Reads comments by id; ids asked for in the same tick share one batch. */
  private readComments(id: number): Promise<Map<number, B24Comment>> {
    if (!this.pendingComments) {
      const ids = new Set<number>();
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.pendingComments = undefined;
        const all = [...ids];
        const out = new Map<number, B24Comment>();
        for (let k = 0; k < all.length; k += BATCH_LIMIT) {
          const part = all.slice(k, k + BATCH_LIMIT);
          const res = await this.client.batch(Object.fromEntries(part.map((x) => [`g${x}`, { method: 'crm.timeline.comment.get', params: { id: x } }])));
          for (const x of part) {
            const c = b24CommentSchema.safeParse(res.result[`g${x}`]);
            if (c.success) out.set(x, c.data);
          }
        }
        return out;
      });
      this.pendingComments = { ids, done };
    }
    this.pendingComments.ids.add(id);
    return this.pendingComments.done;
  }

  /** One short comment per reply: sent, or not sent and why — never the reply's text. */
  async reportReplies(items: readonly { conversation: ConversationRef; remoteId: string; outcome: ReplyOutcome }[]): Promise<void> {
    for (let k = 0; k < items.length; k += BATCH_LIMIT) {
      const part = items.slice(k, k + BATCH_LIMIT);
      const res = await this.client.batch(Object.fromEntries(part.map((i, j) => [`r${j}`, {
        method: 'crm.timeline.comment.add',
        params: { fields: { ENTITY_ID: entityIdOf(i.conversation), ENTITY_TYPE: entityOf(i.conversation, this.config.entity), COMMENT: `${fateText(i.outcome, this.config.language)}\n#avito:reply-${i.remoteId}` } },
      }])), { write: true });
      const failed = part.map((_, j) => commandError(res, `r${j}`, 'crm.timeline.comment.add')).find(Boolean);
      if (failed) throw failed;
    }
  }

  // ---- bookkeeping -----------------------------------------------------------------------------

  private async activeEntities(): Promise<Record<string, number>> {
    try {
      return JSON.parse((await this.ctx.store.get(ACTIVE_KEY)) ?? '{}') as Record<string, number>;
    } catch {
      return {};
    }
  }

  /** Remembers when each lead (deal) last had an Avito message; forgets those past the poll window. */
  private async markActive(seen: Record<string, number>): Promise<void> {
    if (Object.keys(seen).length === 0) return;
    const horizon = Date.now() - this.config.replyPollDays * 86_400_000;
    const all = { ...(await this.activeEntities()), ...seen };
    for (const [k, at] of Object.entries(all)) if (at < horizon) delete all[k];
    await this.ctx.store.set(ACTIVE_KEY, JSON.stringify(all));
  }

  async forgetCrmObjects(): Promise<void> {
    for (const prefix of ['contact:', 'intent:', 'cintent:', ACTIVE_KEY]) await this.ctx.store.deletePrefix(prefix);
  }

  async close(): Promise<void> {
    /* fetch keeps no state of ours */
  }
}

function entityIdOf(ref: ConversationRef): number {
  return typeof ref.entityId === 'number' ? ref.entityId : Number(ref.id);
}

function entityOf(ref: ConversationRef, fallback: 'lead' | 'deal'): 'lead' | 'deal' {
  return ref.entity === 'lead' || ref.entity === 'deal' ? ref.entity : fallback;
}

/** A lead is closed when junk or converted (semantic F or S); a deal when won or lost. */
function isClosed(row: { STATUS_SEMANTIC_ID?: string | null; STAGE_SEMANTIC_ID?: string | null; CLOSED?: string | null }): boolean {
  const sem = row.STATUS_SEMANTIC_ID ?? row.STAGE_SEMANTIC_ID;
  return sem === 'S' || sem === 'F' || row.CLOSED === 'Y';
}

/** A failure the whole run must stop for (credentials, overload): not one item's problem. */
function isHalting(err: unknown): boolean {
  return err instanceof RemoteApiError && ['banned', 'bad_credentials', 'token_expired', 'forbidden', 'tariff'].includes(err.kind);
}

function errorText(res: B24BatchResult, key: string): string | undefined {
  const e = res.result_error[key];
  return e ? [e.error, e.error_description].filter(Boolean).join(': ') : undefined;
}

/** A command's own error inside a batch, as a RemoteApiError (the request itself succeeded). */
function commandError(res: B24BatchResult, key: string, method: string): RemoteApiError | undefined {
  const e = res.result_error[key];
  if (!e) return undefined;
  const kind = classify(400, e.error);
  return new RemoteApiError({ provider: 'Bitrix24', kind, status: 400, remoteMessage: [e.error, e.error_description].filter(Boolean).join(': '), hint: B24_HINTS[kind], operation: `batch ${method}` });
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
