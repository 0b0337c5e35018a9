import {
  describeError, RemoteApiError,
  type AccessCheck, type ConnectorContext, type ConnectorInstance, type ConnectorOAuth, type ConversationRef, type ConversationRequest, type ConversationUpdate, type CrmAction, type DeliveryItem, type IncomingReply, type ItemResult, type PollStart, type ReplyOutcome, type SkippedItem,
  type WebhookRequest, type WebhookVerdict,
} from '../../src/connector-sdk/index.js';
import { fromChatsMode } from './chats/switch.js';
import { AmoClient, baseUrlFromReferer, type AmoClientOptions } from './client.js';
import type { AmoConfig } from './config.js';
import { contactName, leadName, markerOf, noteText, placeholderContactNames, placeholderLeadNames, priceOf } from './mappers.js';
import { accountOfWebhook, mayBeReply, noteHintsFromWebhook, replyFromNote } from './replies.js';
import {
  amoAccountSchema, amoComplexResultSchema, amoContactListSchema, amoCreatedListSchema, amoCustomFieldListSchema, amoLeadListSchema,
  amoNoteListSchema, amoPipelineListSchema, amoUpdatedListSchema, amoUserSchema, amoWebhookListSchema, amoWebhookSchema, type AmoLead, type AmoNote,
} from './schemas.js';

/** Status ids amoCRM gives every pipeline: 142 won, 143 lost. */
export const WON = 142;
export const LOST = 143;
/** `POST /api/v4/leads/complex`: at most 50 leads per request (facts.md). */
export const COMPLEX_BATCH = 50;
/** List pages and `filter[id]` lists: at most 250. */
export const LIST_LIMIT = 250;
/** The custom field that carries the Avito chat id on a lead: found again after a crash by `query`. */
export const CHAT_FIELD_CODE = 'AVITO_CHAT_ID';
/** The note type of delivered messages: never confused with a manager's `common` note (a reply). */
export const MESSAGE_NOTE_TYPE = 'service_message';

/** How long after the first webhook hint a burst read waits for more hints. */
const HINT_WINDOW_MS = 50;

/** `fakeshop` of `https://fakeshop.amocrm.ru` (or `.kommo.com`); undefined for other hosts. */
export function subdomainOf(baseUrl: string): string | undefined {
  try {
    const host = new URL(baseUrl).hostname.toLowerCase();
    return /\.(amocrm\.ru|amocrm\.com|kommo\.com)$/.test(host) ? host.split('.')[0] : undefined;
  } catch {
    return undefined;
  }
}

export interface AmoRef extends ConversationRef {
  leadId: number;
  contactId: number | null;
}

/**
 * The amoCRM connector (design.md §5, CRM side): a contact per Avito buyer, reused across chats;
 * a lead per chat named after the item, with its price and tag; a new lead when the chat's lead
 * is won or lost and the buyer writes again; each message one note on the chat's lead, many per
 * request, ending with a marker that `findDelivered` looks for after a crash.
 */
export class AmoConnector implements ConnectorInstance {
  readonly client: AmoClient;
  /** One dispatcher batch is one notes request. */
  // Notes mode has nowhere to show that the buyer read a reply (chats mode does).
  readonly limits: { maxBatch: number; readReceipts: false };
  private target: { pipelineId: number; statusId: number } | undefined;
  private chatFieldId: number | null | undefined;
  /** This amoCRM account's id and subdomain, once known (webhook routing). */
  private identity: { id: string; subdomain?: string } | undefined;
  private readonly hinted = new Set<number>();
  private burst: Promise<IncomingReply[]> | undefined;
  private reading: Promise<IncomingReply[]> | undefined;

  constructor(private readonly ctx: ConnectorContext<AmoConfig>, clientOptions: Partial<AmoClientOptions> = {}) {
    this.limits = { maxBatch: ctx.config.notesPerRequest, readReceipts: false };
    this.client = new AmoClient({
      config: ctx.config, store: ctx.store, pauses: ctx, log: ctx.log, registerSecret: ctx.registerSecret,
      // amoCRM counts 7 requests per second per account, whichever process sends them.
      ...(ctx.requestGate ? { gate: ctx.requestGate({ intervalMs: Math.ceil(1000 / ctx.config.requestsPerSecond), name: 'rest' }) } : {}),
      ...(ctx.retry ? { retry: ctx.retry } : {}),
      ...clientOptions,
    });
    void ctx.store.get('account_identity').then(
      (v) => {
        if (v && !this.identity) this.identity = JSON.parse(v) as { id: string; subdomain?: string };
      },
      () => undefined,
    );
  }

  /**
   * OAuth connect (console): amoCRM's consent page, then the code from the callback is exchanged
   * at AMOCRM_BASE_URL when set, else at the account host amoCRM names in `referer`.
   */
  get oauth(): ConnectorOAuth | undefined {
    const c = this.config;
    if (c.accessToken || !c.clientId) return undefined;
    return {
      authorizeUrl: ({ state }) => {
        // amoCRM sends the operator back to the redirect URI registered with the integration.
        const url = new URL(c.oauthUrl);
        url.searchParams.set('client_id', c.clientId!);
        url.searchParams.set('state', state);
        return url.toString();
      },
      exchangeCode: async ({ code, query, redirectUri }) => {
        const baseUrl = c.baseUrl ?? baseUrlFromReferer(query.referer);
        if (!baseUrl) {
          throw new RemoteApiError({ provider: 'amoCRM', kind: 'bad_request', status: 0, remoteMessage: `the callback named no amoCRM account host (referer "${query.referer ?? ''}")`, hint: 'Set AMOCRM_BASE_URL to your account, e.g. https://yourcompany.amocrm.ru, and connect again.', operation: 'connect' });
        }
        await this.client.exchangeCode(code, baseUrl, redirectUri);
        this.ctx.log.info({ host: new URL(baseUrl).host }, 'amoCRM connected');
      },
      connected: () => this.client.hasCredentials(),
    };
  }

  /** The lead's card: `<account>/leads/detail/<lead id>`. */
  async conversationUrl(ref: ConversationRef): Promise<string | undefined> {
    const leadId = (ref as Partial<AmoRef>).leadId ?? Number(ref.id);
    const base = await this.client.baseUrl().catch(() => undefined);
    return base && Number.isInteger(leadId) ? `${base}/leads/detail/${leadId}` : undefined;
  }

  private get config(): AmoConfig {
    return this.ctx.config;
  }

  // ---- access --------------------------------------------------------------------------------

  async checkAccess(): Promise<AccessCheck[]> {
    const out: AccessCheck[] = [];
    const fail = (check: string, err: unknown): AccessCheck => ({
      check, verdict: 'fail', detail: err instanceof RemoteApiError ? `amoCRM answered ${err.status || 'nothing'}${err.remoteMessage ? `: ${err.remoteMessage}` : ''}` : describeError(err),
      ...(err instanceof RemoteApiError ? { action: err.hint } : {}),
    });
    try {
      const acc = await this.client.request({ method: 'GET', path: '/api/v4/account', schema: amoAccountSchema });
      if (acc) this.identity = { id: String(acc.id), ...(acc.subdomain ? { subdomain: acc.subdomain.toLowerCase() } : {}) };
      out.push({ check: 'amoCRM access', verdict: 'ok', detail: `account ${acc?.name ?? acc?.id} (${this.config.accessToken ? 'long-lived token' : 'OAuth'})` });
    } catch (err) {
      out.push(fail('amoCRM access', err));
      return out;
    }
    try {
      const t = await this.resolveTarget();
      out.push({ check: 'amoCRM pipeline and status', verdict: 'ok', detail: `new leads go to pipeline ${t.pipelineId}, status ${t.statusId}` });
    } catch (err) {
      out.push(fail('amoCRM pipeline and status', err));
    }
    if (this.config.responsibleUserId) {
      try {
        await this.client.request({ method: 'GET', path: `/api/v4/users/${this.config.responsibleUserId}`, schema: amoUserSchema });
        out.push({ check: 'amoCRM responsible user', verdict: 'ok', detail: `user ${this.config.responsibleUserId} exists` });
      } catch (err) {
        out.push(fail('amoCRM responsible user', err));
      }
    }
    try {
      const field = await this.chatField();
      out.push(field
        ? { check: 'amoCRM chat field', verdict: 'ok', detail: `leads carry the Avito chat id (field ${field})` }
        : { check: 'amoCRM chat field', verdict: 'warn', detail: 'the lead field for the Avito chat id could not be created', action: 'Give the integration rights to add lead fields; without it, a crash between creating a lead and saving it may create a second lead.' });
    } catch (err) {
      out.push(fail('amoCRM chat field', err));
    }
    return out;
  }

  /** Pipeline and status for new leads: configured, else the main pipeline's first open status. */
  async resolveTarget(): Promise<{ pipelineId: number; statusId: number }> {
    if (this.target) return this.target;
    const list = await this.client.request({ method: 'GET', path: '/api/v4/leads/pipelines', schema: amoPipelineListSchema });
    const pipelines = list?._embedded.pipelines ?? [];
    const pipeline = this.config.pipelineId ? pipelines.find((p) => p.id === this.config.pipelineId) : pipelines.find((p) => p.is_main) ?? pipelines[0];
    if (!pipeline) {
      throw new RemoteApiError({ provider: 'amoCRM', kind: 'bad_request', status: 404, remoteMessage: this.config.pipelineId ? `no pipeline ${this.config.pipelineId}` : 'no pipelines', hint: `Set AMOCRM_PIPELINE_ID to one of: ${pipelines.map((p) => `${p.id} (${p.name ?? ''})`).join(', ') || 'none found'}.`, operation: 'GET /api/v4/leads/pipelines' });
    }
    const statuses = [...(pipeline._embedded?.statuses ?? [])].sort((a, b) => (a.sort ?? 0) - (b.sort ?? 0));
    const status = this.config.statusId ? statuses.find((s) => s.id === this.config.statusId) : statuses.find((s) => s.id !== WON && s.id !== LOST && s.type !== 1);
    if (!status) {
      throw new RemoteApiError({ provider: 'amoCRM', kind: 'bad_request', status: 404, remoteMessage: `no status ${this.config.statusId ?? '(open)'} in pipeline ${pipeline.id}`, hint: `Set AMOCRM_STATUS_ID to one of: ${statuses.map((s) => `${s.id} (${s.name ?? ''})`).join(', ')}.`, operation: 'GET /api/v4/leads/pipelines' });
    }
    this.target = { pipelineId: pipeline.id, statusId: status.id };
    return this.target;
  }

  /** The lead field holding the Avito chat id: found by code, created once; null when it cannot be. */
  private async chatField(): Promise<number | null> {
    if (this.chatFieldId !== undefined) return this.chatFieldId;
    const stored = await this.ctx.store.get('chat_field_id');
    if (stored) return (this.chatFieldId = stored === 'none' ? null : Number(stored));
    for (let page = 1; page < 20; page++) {
      const list = await this.client.request({ method: 'GET', path: '/api/v4/leads/custom_fields', query: { page, limit: LIST_LIMIT }, schema: amoCustomFieldListSchema });
      const fields = list?._embedded.custom_fields ?? [];
      const found = fields.find((f) => f.code === CHAT_FIELD_CODE);
      if (found) {
        await this.ctx.store.set('chat_field_id', String(found.id));
        return (this.chatFieldId = found.id);
      }
      if (!list?._links?.next || fields.length < LIST_LIMIT) break;
    }
    try {
      const created = await this.client.request({
        method: 'POST', path: '/api/v4/leads/custom_fields',
        json: [{ name: this.config.language === 'ru' ? 'Авито: чат' : 'Avito chat', type: 'text', code: CHAT_FIELD_CODE, sort: 510 }],
        schema: amoCustomFieldListSchema,
      });
      const id = created?._embedded.custom_fields[0]?.id;
      if (id) {
        await this.ctx.store.set('chat_field_id', String(id));
        return (this.chatFieldId = id);
      }
    } catch (err) {
      if (!(err instanceof RemoteApiError) || err.transient || err.kind === 'banned') throw err;
      this.ctx.log.warn({ err: describeError(err) }, 'amoCRM lead field for the Avito chat id could not be created');
    }
    await this.ctx.store.set('chat_field_id', 'none');
    return (this.chatFieldId = null);
  }

  // ---- conversations -------------------------------------------------------------------------

  async ensureConversations(requested: readonly ConversationRequest[]): Promise<ItemResult<ConversationRef>[]> {
    const requests = requested.map(fromChatsMode); // an account switched back from chats mode
    const results = new Map<number, ItemResult<ConversationRef>>();
    const needLead: { i: number; req: ConversationRequest; contactId: number | null }[] = [];

    // Existing leads: keep them unless won/lost (or gone) and the buyer wrote again.
    const check = requests.map((req, i) => ({ req, i })).filter(({ req }) => req.previous);
    const leads = await this.leadsById(check.filter(({ req }) => req.buyerWrote).map(({ req }) => (req.previous as AmoRef).leadId));
    for (const { req, i } of check) {
      const prev = req.previous as AmoRef;
      const lead = leads.get(prev.leadId);
      const closed = req.buyerWrote && (!lead || lead.is_deleted || lead.status_id === WON || lead.status_id === LOST);
      if (closed) needLead.push({ i, req, contactId: prev.contactId ?? lead?._embedded?.contacts?.[0]?.id ?? null });
      else results.set(i, { ok: true, value: prev });
    }

    // New chats: a crash may have left a lead behind that the ledger never saw; find it first.
    // (An intent stays recorded: until the core saves the conversation, a retry must search.)
    const fresh = requests.map((req, i) => ({ req, i })).filter(({ req }) => !req.previous);
    for (const { req, i } of fresh) {
      const intent = await this.ctx.store.get(`intent:${req.chat.chatId}`);
      const found = intent ? await this.findLeadForChat(req.chat.chatId) : undefined;
      if (found) results.set(i, { ok: true, value: found });
      else needLead.push({ i, req, contactId: req.chat.buyer.id ? Number((await this.ctx.store.get(`contact:${req.chat.buyer.id}`)) ?? 0) || null : null });
    }
    if (needLead.length === 0) return requests.map((_, i) => results.get(i)!);

    const target = await this.resolveTarget();
    const fieldId = await this.chatField();
    for (const n of needLead) if (!n.req.previous) await this.ctx.store.set(`intent:${n.req.chat.chatId}`, String(Date.now()));

    // Buyers without a contact: the first chat of each creates contact and lead (leads/complex);
    // their other chats then reuse that contact.
    const firstOfBuyer = new Set<string>();
    const complex = needLead.filter((n) => {
      if (n.contactId) return false;
      const key = n.req.chat.buyer.id ?? `chat:${n.req.chat.chatId}`;
      if (firstOfBuyer.has(key)) return false;
      firstOfBuyer.add(key);
      return true;
    });
    for (let k = 0; k < complex.length; k += COMPLEX_BATCH) {
      const part = complex.slice(k, k + COMPLEX_BATCH);
      try {
        const res = await this.client.request({
          method: 'POST', path: '/api/v4/leads/complex',
          json: part.map((n) => ({ ...this.leadBody(n.req, target, fieldId), _embedded: { tags: [{ name: this.config.tag }], contacts: [{ name: contactName(n.req.chat) }] } })),
          schema: amoComplexResultSchema,
        });
        const rows = res ?? [];
        for (let j = 0; j < part.length; j++) {
          const n = part[j]!;
          const row = rows.find((r) => (Array.isArray(r.request_id) ? r.request_id : [r.request_id]).includes(n.req.chat.chatId)) ?? rows[j];
          if (!row) {
            results.set(n.i, { ok: false, error: new Error('amoCRM created no lead for this chat') });
            continue;
          }
          n.contactId = row.contact_id ?? null;
          if (n.req.chat.buyer.id && row.contact_id) await this.ctx.store.set(`contact:${n.req.chat.buyer.id}`, String(row.contact_id));
          results.set(n.i, { ok: true, value: this.ref(row.id, row.contact_id ?? null) });
        }
      } catch (err) {
        for (const n of part) results.set(n.i, { ok: false, error: err });
      }
    }

    // Chats whose buyer has a contact: plain leads linked to it.
    const plain = needLead.filter((n) => !results.has(n.i)).map((n) => {
      if (!n.contactId && n.req.chat.buyer.id) {
        const sibling = complex.find((c) => c.req.chat.buyer.id === n.req.chat.buyer.id);
        n.contactId = sibling?.contactId ?? null;
      }
      return n;
    });
    for (let k = 0; k < plain.length; k += COMPLEX_BATCH) {
      const part = plain.slice(k, k + COMPLEX_BATCH);
      try {
        const res = await this.client.request({
          method: 'POST', path: '/api/v4/leads',
          json: part.map((n) => ({ ...this.leadBody(n.req, target, fieldId), _embedded: { tags: [{ name: this.config.tag }], ...(n.contactId ? { contacts: [{ id: n.contactId }] } : {}) } })),
          schema: amoCreatedListSchema('leads'),
        });
        const rows = (res?._embedded.leads ?? []) as { id: number; request_id?: string | number }[];
        for (let j = 0; j < part.length; j++) {
          const n = part[j]!;
          const row = rows.find((r) => String(r.request_id) === n.req.chat.chatId) ?? rows[j];
          if (!row) results.set(n.i, { ok: false, error: new Error('amoCRM created no lead for this chat') });
          else results.set(n.i, { ok: true, value: this.ref(row.id, n.contactId) });
        }
      } catch (err) {
        for (const n of part) results.set(n.i, { ok: false, error: err });
      }
    }
    return requests.map((_, i) => results.get(i) ?? { ok: false, error: new Error('no result') });
  }

  /**
   * Leads made before their chat's details arrived, named after them now (capability
   * `updateConversations`): the lead's name (and its price, when it has none) while the lead still
   * has the name this connector gives a chat without details, and its contact's name while that
   * is still the placeholder (`Avito <id>`) — what a manager renamed stays. Reads first
   * (GET /api/v4/leads?filter[id][]=…, GET /api/v4/contacts?filter[id][]=…), then one batch PATCH
   * of each (openapi.yaml Leads_update, Contacts_update): a repeat finds nothing left to change.
   * A read that fails fails the call; a PATCH that fails fails the items it carried.
   */
  async updateConversations(updates: readonly ConversationUpdate[]): Promise<ItemResult<void>[]> {
    const lang = this.config.language;
    const items = updates.map((u) => ({ chat: u.chat, ref: u.conversation as Partial<AmoRef> }));
    const leads = await this.leadsById([...new Set(items.map((i) => i.ref.leadId).filter((id): id is number => Number.isInteger(id)))]);
    const leadPatch = new Map<number, { id: number; name: string; price?: number }>();
    const contactOf = new Map<number, number>(); // item index → its contact
    items.forEach(({ chat, ref }, i) => {
      const lead = ref.leadId !== undefined ? leads.get(ref.leadId) : undefined;
      if (!lead || lead.is_deleted) return; // gone: nothing left to name
      const name = leadName(chat, lang);
      if (lead.name !== name && placeholderLeadNames(chat, lang).has(lead.name ?? '')) {
        const price = priceOf(chat.item.price);
        leadPatch.set(lead.id, { id: lead.id, name, ...(price !== null && !lead.price ? { price } : {}) });
      }
      const contactId = ref.contactId ?? lead._embedded?.contacts?.[0]?.id;
      if (contactId) contactOf.set(i, contactId);
    });
    const contacts = new Map<number, string>();
    const contactIds = [...new Set(contactOf.values())];
    for (let k = 0; k < contactIds.length; k += LIST_LIMIT) {
      const res = await this.client.request({ method: 'GET', path: '/api/v4/contacts', query: { 'filter[id][]': contactIds.slice(k, k + LIST_LIMIT), limit: LIST_LIMIT }, schema: amoContactListSchema });
      for (const c of res?._embedded.contacts ?? []) contacts.set(c.id, c.name ?? '');
    }
    const contactPatch = new Map<number, { id: number; name: string }>();
    for (const [i, contactId] of contactOf) {
      const chat = items[i]!.chat;
      const now = contacts.get(contactId);
      const name = contactName(chat);
      if (now !== undefined && now !== name && chat.buyer.name?.trim() && placeholderContactNames(chat).has(now)) contactPatch.set(contactId, { id: contactId, name });
      // The buyer's Avito id is known now: their next chats reuse this contact.
      if (chat.buyer.id && !(await this.ctx.store.get(`contact:${chat.buyer.id}`))) await this.ctx.store.set(`contact:${chat.buyer.id}`, String(contactId));
    }
    const failed = new Map<string, unknown>(); // `lead:<id>` / `contact:<id>` → why its PATCH failed
    const patch = async (kind: 'leads' | 'contacts', rows: { id: number }[]) => {
      for (let k = 0; k < rows.length; k += LIST_LIMIT) {
        const part = rows.slice(k, k + LIST_LIMIT);
        try {
          await this.client.request({ method: 'PATCH', path: `/api/v4/${kind}`, json: part, schema: amoUpdatedListSchema(kind), idempotent: true });
        } catch (err) {
          // The account as a whole is refused (a ban, credentials): the core stops the run.
          if (err instanceof RemoteApiError && ['banned', 'bad_credentials', 'token_expired', 'forbidden', 'tariff'].includes(err.kind)) throw err;
          for (const r of part) failed.set(`${kind === 'leads' ? 'lead' : 'contact'}:${r.id}`, err);
        }
      }
    };
    await patch('leads', [...leadPatch.values()]);
    await patch('contacts', [...contactPatch.values()]);
    return items.map(({ ref }, i) => {
      const error = failed.get(`lead:${ref.leadId}`) ?? failed.get(`contact:${contactOf.get(i)}`);
      return error === undefined ? { ok: true, value: undefined } : { ok: false, error };
    });
  }

  private leadBody(req: ConversationRequest, target: { pipelineId: number; statusId: number }, fieldId: number | null): Record<string, unknown> {
    const price = priceOf(req.chat.item.price);
    return {
      name: leadName(req.chat, this.config.language),
      ...(price !== null ? { price } : {}),
      pipeline_id: target.pipelineId,
      status_id: target.statusId,
      ...(this.config.responsibleUserId ? { responsible_user_id: this.config.responsibleUserId } : {}),
      ...(fieldId ? { custom_fields_values: [{ field_id: fieldId, values: [{ value: req.chat.chatId }] }] } : {}),
      request_id: req.chat.chatId,
    };
  }

  private ref(leadId: number, contactId: number | null): AmoRef {
    return { id: String(leadId), leadId, contactId };
  }

  /** GET /api/v4/leads?filter[id][]=…, 250 at a time. */
  private async leadsById(ids: readonly number[]): Promise<Map<number, AmoLead>> {
    const out = new Map<number, AmoLead>();
    for (let k = 0; k < ids.length; k += LIST_LIMIT) {
      const part = ids.slice(k, k + LIST_LIMIT);
      const res = await this.client.request({ method: 'GET', path: '/api/v4/leads', query: { 'filter[id][]': part, limit: LIST_LIMIT, with: 'contacts' }, schema: amoLeadListSchema });
      for (const l of res?._embedded.leads ?? []) out.set(l.id, l);
    }
    return out;
  }

  /** After a crash: the lead whose chat field holds this chat id (`query` is a full-text search). */
  private async findLeadForChat(chatId: string): Promise<AmoRef | undefined> {
    const fieldId = await this.chatField();
    if (!fieldId) return undefined;
    const res = await this.client.request({ method: 'GET', path: '/api/v4/leads', query: { query: chatId, with: 'contacts', limit: 50 }, schema: amoLeadListSchema });
    const lead = (res?._embedded.leads ?? []).find((l) => !l.is_deleted && l.custom_fields_values?.some((f) => f.field_id === fieldId && f.values.some((v) => v.value === chatId)));
    return lead ? this.ref(lead.id, lead._embedded?.contacts?.[0]?.id ?? null) : undefined;
  }

  // ---- delivery ------------------------------------------------------------------------------

  async deliver(items: readonly DeliveryItem[]): Promise<ItemResult<{ remoteId: string }>[]> {
    const out: ItemResult<{ remoteId: string }>[] = [];
    for (let k = 0; k < items.length; k += this.config.notesPerRequest) {
      const part = items.slice(k, k + this.config.notesPerRequest);
      let res;
      try {
        res = await this.client.request({
        method: 'POST', path: '/api/v4/leads/notes',
        json: part.map((d) => ({
          entity_id: (d.conversation as AmoRef).leadId,
          note_type: MESSAGE_NOTE_TYPE,
          params: { service: 'Avito', text: noteText(d.message, d.chat, this.config) },
          created_at: d.message.created,
          request_id: d.message.messageId,
        })),
        schema: amoCreatedListSchema('notes'),
        });
      } catch (err) {
        // Nothing of this request was created; earlier requests' notes were.
        if (k === 0) throw err;
        for (let j = k; j < items.length; j++) out.push({ ok: false, error: err });
        return out;
      }
      const notes = (res?._embedded.notes ?? []) as { id: number; request_id?: string | number }[];
      part.forEach((d, j) => {
        const note = notes.find((n) => String(n.request_id) === d.message.messageId) ?? notes[j];
        out.push(note ? { ok: true, value: { remoteId: String(note.id) } } : { ok: false, error: new Error('amoCRM created no note for this message') });
      });
    }
    return out;
  }

  /** Notes on these leads whose marker names one of these messages (GET /api/v4/leads/notes). */
  async findDelivered(items: readonly DeliveryItem[]): Promise<Map<string, string>> {
    const wanted = new Set(items.map((d) => d.message.messageId));
    const leadIds = [...new Set(items.map((d) => (d.conversation as AmoRef).leadId))];
    const found = new Map<string, string>();
    for (let k = 0; k < leadIds.length; k += 50) {
      const part = leadIds.slice(k, k + 50);
      for (let page = 1; page <= 200; page++) {
        const res = await this.client.request({
          method: 'GET', path: '/api/v4/leads/notes',
          query: { 'filter[entity_id][]': part, 'filter[note_type]': MESSAGE_NOTE_TYPE, limit: LIST_LIMIT, page },
          schema: amoNoteListSchema,
        });
        const notes = res?._embedded.notes ?? [];
        for (const n of notes) {
          const id = markerOf(n.params?.text);
          if (id && wanted.has(id)) found.set(id, String(n.id));
        }
        if (notes.length < LIST_LIMIT || !res?._links?.next) break;
      }
    }
    return found;
  }

  // ---- replies --------------------------------------------------------------------------------

  /**
   * `common` notes on leads updated since the cursor (their `updated_at`, seconds), oldest first.
   * Without a cursor, from `start.since` (the core takes it from the data: invariant 7). Only
   * without either (a caller outside the core) does it start from the newest note. A note that
   * cannot be read is skipped with its reason and the cursor moves past it (invariant 8).
   */
  async pollReplies(cursor: string | undefined, start?: PollStart): Promise<{ replies: IncomingReply[]; cursor: string | undefined; skipped: SkippedItem[] }> {
    cursor ??= start ? String(start.since) : undefined;
    if (cursor === undefined) {
      const latest = await this.client.request({ method: 'GET', path: '/api/v4/leads/notes', query: { 'filter[note_type]': 'common', 'order[updated_at]': 'desc', limit: 1 }, schema: amoNoteListSchema });
      const newest = latest?._embedded.notes[0]?.updated_at;
      return { replies: [], cursor: String(newest !== undefined ? newest + 1 : Math.floor(Date.now() / 1000)), skipped: [] };
    }
    const replies: IncomingReply[] = [];
    const skipped: SkippedItem[] = [];
    let high = Number(cursor);
    for (let page = 1; page <= 40; page++) {
      // Notes updated in the cursor's own second are read again: reply ids dedupe them.
      const res = await this.client.request({
        method: 'GET', path: '/api/v4/leads/notes',
        query: { 'filter[note_type]': 'common', 'filter[updated_at][from]': cursor, 'order[updated_at]': 'asc', limit: LIST_LIMIT, page },
        schema: amoNoteListSchema,
      });
      const notes = res?._embedded.notes ?? [];
      for (const n of notes) {
        high = Math.max(high, n.updated_at ?? 0);
        try {
          const r = replyFromNote(n, this.config.replyPrefix);
          if (r) replies.push(r);
        } catch (err) {
          skipped.push({ ref: `note ${n.id}`, reason: describeError(err) });
        }
      }
      if (notes.length < LIST_LIMIT || !res?._links?.next) break;
    }
    return { replies, cursor: String(high), skipped };
  }

  /**
   * A `note_lead` webhook (amoCRM signs nothing: the secret in the URL authenticates it). Notes
   * that cannot be replies (the daemon's own, internal notes) are dropped without a read; the
   * rest are read back in the next burst read and only real replies are returned.
   */
  async webhook(req: WebhookRequest): Promise<WebhookVerdict> {
    const text = req.body.toString('utf8');
    // Every amoCRM webhook is a form naming the account and an entity (`leads[…]`, `contacts[…]`).
    if (!/(^|&)account(%5B|\[)/i.test(text) && !/(^|&)(leads|contacts|companies|customers|tasks)(%5B|\[)/i.test(text)) {
      return { accepted: false, status: 400, reason: 'not an amoCRM webhook (no account or entity keys)' };
    }
    const hints = noteHintsFromWebhook(text).filter((h) => mayBeReply(h, this.config.replyPrefix));
    if (hints.length === 0) return { accepted: true };
    const burst = this.hint(hints.map((h) => h.id));
    return { accepted: true, later: () => burst };
  }

  /** With several accounts: a webhook is this instance's when it names this amoCRM account. */
  matchesWebhook(req: WebhookRequest): boolean {
    const named = accountOfWebhook(req.body.toString('utf8'));
    if (named.id && this.identity?.id !== undefined) return named.id === this.identity.id;
    const mine = this.identity?.subdomain ?? (this.config.baseUrl ? subdomainOf(this.config.baseUrl) : undefined);
    return Boolean(named.subdomain && mine && named.subdomain === mine);
  }

  /**
   * Note ids hinted by webhooks are read together: ids arriving while a read is running, or
   * within a short window after the first, share one read (≤ 250 ids per request). Every hint of
   * a burst gets the same promise, so the core stores its result once.
   */
  private hint(ids: readonly number[]): Promise<IncomingReply[]> {
    for (const id of ids) this.hinted.add(id);
    this.burst ??= (async () => {
      await this.reading?.catch(() => undefined);
      await new Promise((r) => setTimeout(r, HINT_WINDOW_MS));
      const batch = [...this.hinted];
      this.hinted.clear();
      this.burst = undefined;
      const read = this.readReplies(batch);
      this.reading = read;
      return read;
    })();
    return this.burst;
  }

  private async readReplies(ids: readonly number[]): Promise<IncomingReply[]> {
    const notes: AmoNote[] = [];
    for (let k = 0; k < ids.length; k += LIST_LIMIT) {
      const res = await this.client.request({ method: 'GET', path: '/api/v4/leads/notes', query: { 'filter[id][]': ids.slice(k, k + LIST_LIMIT), limit: LIST_LIMIT }, schema: amoNoteListSchema });
      notes.push(...(res?._embedded.notes ?? []));
    }
    return notes.map((n) => replyFromNote(n, this.config.replyPrefix)).filter((r): r is IncomingReply => Boolean(r));
  }

  /** Which amoCRM account this is (`GET /api/v4/account`), kept so webhooks can be routed. */
  private async learnIdentity(): Promise<void> {
    const acc = await this.client.request({ method: 'GET', path: '/api/v4/account', schema: amoAccountSchema });
    if (!acc) return;
    this.identity = { id: String(acc.id), ...(acc.subdomain ? { subdomain: acc.subdomain.toLowerCase() } : {}) };
    await this.ctx.store.set('account_identity', JSON.stringify(this.identity));
  }

  /** `POST /api/v4/webhooks` for `note_lead`, unless amoCRM already calls this URL. */
  async ensureWebhook(url: string): Promise<void> {
    await this.learnIdentity();
    const list = await this.client.request({ method: 'GET', path: '/api/v4/webhooks', query: { 'filter[destination]': url }, schema: amoWebhookListSchema });
    const existing = (list?._embedded.webhooks ?? []).find((w) => w.destination === url);
    if (existing && !existing.disabled && existing.settings?.includes('note_lead')) return;
    await this.client.request({ method: 'POST', path: '/api/v4/webhooks', json: { destination: url, settings: ['note_lead'] }, schema: amoWebhookSchema });
  }

  /** One short service note per reply: sent, or not sent and why — never the reply's text. */
  async reportReplies(items: readonly { conversation: ConversationRef; remoteId: string; outcome: ReplyOutcome }[]): Promise<void> {
    const ru = this.config.language === 'ru';
    for (let k = 0; k < items.length; k += this.config.notesPerRequest) {
      await this.client.request({
        method: 'POST', path: '/api/v4/leads/notes',
        json: items.slice(k, k + this.config.notesPerRequest).map((i) => ({
          entity_id: Number(i.conversation.id),
          note_type: MESSAGE_NOTE_TYPE,
          params: {
            service: 'Avito',
            text: i.outcome.sent
              ? (ru ? `Ответ отправлен покупателю на Авито${i.outcome.parts > 1 ? ` (${i.outcome.parts} сообщения)` : ''}.` : `Reply sent to the buyer on Avito${i.outcome.parts > 1 ? ` (${i.outcome.parts} messages)` : ''}.`)
              : (ru ? `Ответ НЕ отправлен на Авито: ${i.outcome.reason}` : `Reply NOT sent to Avito: ${i.outcome.reason}`),
          },
          request_id: `reply-${i.remoteId}`,
        })),
        schema: amoCreatedListSchema('notes'),
      });
    }
  }

  // ---- operator actions -----------------------------------------------------------------------

  /** Leads updated since the cursor (without one, since `start.since`: invariant 7) that carry the blacklist tag. */
  async pollActions(cursor: string | undefined, start?: PollStart): Promise<{ actions: CrmAction[]; cursor: string | undefined }> {
    cursor ??= start ? String(start.since) : undefined;
    if (cursor === undefined) {
      const latest = await this.client.request({ method: 'GET', path: '/api/v4/leads', query: { 'order[updated_at]': 'desc', limit: 1 }, schema: amoLeadListSchema });
      const newest = (latest?._embedded.leads[0] as { updated_at?: number } | undefined)?.updated_at;
      return { actions: [], cursor: String(newest !== undefined ? newest + 1 : Math.floor(Date.now() / 1000)) };
    }
    const actions: CrmAction[] = [];
    let high = Number(cursor);
    for (let page = 1; page <= 40; page++) {
      const res = await this.client.request({ method: 'GET', path: '/api/v4/leads', query: { 'filter[updated_at][from]': cursor, 'order[updated_at]': 'asc', limit: LIST_LIMIT, page }, schema: amoLeadListSchema });
      const leads = res?._embedded.leads ?? [];
      for (const l of leads) {
        high = Math.max(high, (l as { updated_at?: number }).updated_at ?? 0);
        if (l._embedded?.tags?.some((t) => t.name === this.config.blacklistTag)) actions.push({ conversationId: String(l.id), action: 'blacklist' });
      }
      if (leads.length < LIST_LIMIT || !res?._links?.next) break;
    }
    return { actions, cursor: String(high) };
  }

  async reportAction(conversation: ConversationRef, _action: CrmAction['action'], outcome: { done: true } | { done: false; reason: string }): Promise<void> {
    const ru = this.config.language === 'ru';
    await this.client.request({
      method: 'POST', path: '/api/v4/leads/notes',
      json: [{ entity_id: Number(conversation.id), note_type: MESSAGE_NOTE_TYPE, params: { service: 'Avito', text: outcome.done ? (ru ? 'Покупатель добавлен в чёрный список Авито.' : 'The buyer was added to the Avito blacklist.') : (ru ? `Не удалось добавить покупателя в чёрный список Авито: ${outcome.reason}` : `Could not blacklist the buyer on Avito: ${outcome.reason}`) } }],
      schema: amoCreatedListSchema('notes'),
    });
  }

  async forgetCrmObjects(): Promise<void> {
    for (const prefix of ['contact:', 'intent:', 'chat_field_id']) await this.ctx.store.deletePrefix(prefix);
    this.chatFieldId = undefined;
    this.target = undefined;
  }

  async close(): Promise<void> {
    /* fetch keeps no state of ours */
  }
}
