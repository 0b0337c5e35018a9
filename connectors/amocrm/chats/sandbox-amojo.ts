import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback, readBody } from '../../../src/connector-sdk/index.js';
import { LOST, WON } from '../connector.js';
import type { FakeLead, SandboxAmo } from '../sandbox.js';
import { checkSignedRequest, hookSignature } from './signing.js';

/**
 * The sandbox amoCRM Chats API (amojo) on 127.0.0.1, beside a SandboxAmo (the REST side), for
 * the tests, the bench and `demo --mode chats`. It follows chat-api-reference and
 * chat-step-by-step: every request's signature is checked (403 otherwise), a connect answers the
 * scope id, a repeated msgid is refused, the first non-silent client message makes a contact and
 * an unsorted lead (category chats) — again when all of the contact's leads are closed, which is
 * amoCRM's rule for a returning client — and a manager's answer goes out as a signed hook, once.
 * Where amoCRM's docs are silent (the duplicate's status, history order) it says GUESS.
 */

export interface SandboxChatMessage {
  /** amojo's id. */
  id: string;
  /** The integration's msgid (absent for managers' messages). */
  clientId: string | null;
  timestamp: number;
  silent: boolean;
  sender: { id: string; name?: string; ref_id?: string; client?: boolean };
  receiver?: { id: string; name?: string } | undefined;
  message: { type: string; text?: string; media?: string; file_name?: string; file_size?: number; location?: { lat: number; lon: number } };
}

export interface SandboxChat {
  id: string;
  conversationId: string;
  user: { id: string; name: string; profile_link?: string };
  contactId: number | null;
  messages: SandboxChatMessage[];
}

export interface SandboxUnsorted {
  uid: string;
  category: 'chats';
  pipelineId: number;
  createdAt: number;
  leadId: number;
  contactId: number;
  amojoChatId: string;
}

/** The status id of "Неразобранное" in the REST sandbox's main pipeline (type 1). */
const UNSORTED_STATUS = 1001;
export const MANAGER_AMOJO_ID = 'c0ffee00-0000-4000-8000-00000000a11e';

export class SandboxAmojo {
  url = '';
  readonly channel = { id: randomUUID(), secret: randomBytes(20).toString('hex'), botId: randomUUID(), code: 'amo.ext.avito-sync' };
  /** amojo account ids amoCRM support approved for the channel (default: the REST sandbox's). */
  readonly approved = new Set<string>();
  /** amojo account id → scope id. */
  readonly scopes = new Map<string, string>();
  readonly chats = new Map<string, SandboxChat>();
  readonly unsorted = new Map<string, SandboxUnsorted>();
  /** Delivery statuses received, per amojo msgid, in order. */
  readonly statuses = new Map<string, { delivery_status: number; error_code?: number; error?: string }[]>();
  readonly requests: { method: string; path: string; status: number; reason?: string }[] = [];
  /** The hook URL registered with the channel (`…/:scope_id`). */
  hookUrl: string | undefined;
  /** Answers of hooks sent (status per call; 0 = no answer). */
  readonly hookCalls: Promise<number>[] = [];
  /** The next send of this msgid is stored but never answered; `onStall` runs (a test kills the process). */
  stall: { msgid?: string; onStall: () => void } | undefined;
  private server: Server | undefined;

  constructor(readonly amo: SandboxAmo, opts: { hookUrl?: string } = {}) {
    this.approved.add(amo.amojoId);
    this.hookUrl = opts.hookUrl;
    amo.extensions.push((r) => this.rest(r));
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.answer(req, res, 500, { error: (err as Error).message }));
    });
    this.url = await listenLoopback(this.server);
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    await closeServer(this.server);
    this.server = undefined;
  }

  /** The environment a daemon needs for chats mode against these sandboxes. */
  env(): Record<string, string> {
    return { AMOCRM_MODE: 'chats', AMOCRM_CHANNEL_ID: this.channel.id, AMOCRM_CHANNEL_SECRET: this.channel.secret, AMOCRM_AMOJO_URL: this.url, AMOCRM_CHANNEL_BOT_ID: this.channel.botId };
  }

  count(pathIncludes: string, method?: string, status?: number): number {
    return this.requests.filter((r) => r.path.includes(pathIncludes) && (!method || r.method === method) && (status === undefined || r.status === status)).length;
  }

  /** The chat of an Avito chat (our conversation_id). */
  chat(conversationId: string): SandboxChat | undefined {
    return this.chats.get(conversationId);
  }

  /** The msgids (Avito message ids) in a chat, in the order they arrived, repeats included. */
  clientIds(conversationId: string): string[] {
    return (this.chats.get(conversationId)?.messages ?? []).filter((m) => m.clientId).map((m) => m.clientId!);
  }

  /** The lead amoCRM made for a chat (the newest one of its contact). */
  leadOf(conversationId: string): FakeLead | undefined {
    const c = this.chats.get(conversationId);
    if (!c?.contactId) return undefined;
    return [...this.amo.leads.values()].filter((l) => l.contacts.includes(c.contactId!)).sort((a, b) => b.id - a.id)[0];
  }

  /**
   * A manager answers in amoCRM's chat panel: the message joins the chat's history and, unless
   * `hook` is false (a lost hook), goes to the registered URL as a signed hook, `copies` times
   * (`forge` signs it with a wrong secret). Returns amojo's id of the message.
   */
  managerAnswer(conversationId: string, msg: { text?: string; picture?: { url: string; name: string }; file?: { url: string; name: string } }, opts: { hook?: boolean; copies?: number; forge?: boolean } = {}): string {
    const chat = this.chats.get(conversationId);
    if (!chat) throw new Error(`no chat ${conversationId}`);
    const now = Date.now();
    const m: SandboxChatMessage = {
      id: randomUUID(), clientId: null, timestamp: Math.floor(now / 1000), silent: false, sender: { id: MANAGER_AMOJO_ID, name: 'Менеджер' }, receiver: { id: chat.user.id, name: chat.user.name },
      message: msg.picture ? { type: 'picture', text: msg.text ?? '', media: msg.picture.url, file_name: msg.picture.name, file_size: 1000 }
        : msg.file ? { type: 'file', text: msg.text ?? '', media: msg.file.url, file_name: msg.file.name, file_size: 1000 }
        : { type: 'text', text: msg.text ?? '' },
    };
    chat.messages.push(m);
    if (opts.hook !== false) this.sendHook(chat, m, opts.copies ?? 1, opts.forge ?? false);
    return m.id;
  }

  /** The hook body amoCRM sends (chat-webhooks, hook_api_version v2). */
  hookBody(chat: SandboxChat, m: SandboxChatMessage): string {
    const scope = this.scopes.get(this.amo.amojoId) ?? '';
    return JSON.stringify({
      account_id: this.amo.amojoId,
      time: m.timestamp,
      message: {
        receiver: { id: randomUUID(), client_id: chat.user.id, name: chat.user.name },
        sender: { id: m.sender.id },
        conversation: { id: chat.id, client_id: chat.conversationId },
        source: { external_id: scope ? 'avito' : '' },
        timestamp: m.timestamp,
        msec_timestamp: m.timestamp * 1000,
        message: { id: m.id, ...m.message },
      },
    });
  }

  private sendHook(chat: SandboxChat, m: SandboxChatMessage, copies: number, forge: boolean): void {
    const scope = this.scopes.get(this.amo.amojoId);
    if (!this.hookUrl || !scope) return;
    const body = this.hookBody(chat, m);
    const sig = hookSignature(forge ? 'f'.repeat(40) : this.channel.secret, body);
    const url = this.hookUrl.replace(':scope_id', scope);
    for (let i = 0; i < copies; i++) {
      // Sent once, never retried (chat-webhooks); the answer is only recorded.
      this.hookCalls.push(fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-signature': sig }, body, signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 0));
    }
  }

  // ---- REST additions (Unsorted, contacts ↔ chats) --------------------------------------------

  private rest(r: { method: string; path: string; url: URL; body: unknown }): { status: number; body?: unknown } | undefined {
    if (r.method === 'GET' && r.path === '/api/v4/leads/unsorted') {
      const cats = r.url.searchParams.getAll('filter[category][]');
      const list = [...this.unsorted.values()].filter((u) => !cats.length || cats.includes(u.category)).sort((a, b) => b.createdAt - a.createdAt);
      if (list.length === 0) return { status: 204 };
      return {
        status: 200,
        body: {
          _page: 1, _links: {},
          _embedded: {
            unsorted: list.map((u) => ({
              uid: u.uid, source_uid: null, source_name: 'Avito', category: u.category, pipeline_id: u.pipelineId, created_at: u.createdAt, account_id: 31_000_000,
              metadata: { from: 'Avito', received_at: u.createdAt, service: this.channel.code, client: { name: this.amo.contacts.get(u.contactId)?.name ?? '' }, origin: { chat_id: u.amojoChatId, ref: null, visitor_uid: null }, last_message_text: '', source_name: 'Avito' },
              _embedded: { leads: [{ id: u.leadId }], contacts: [{ id: u.contactId }] },
            })),
          },
        },
      };
    }
    const accept = /^\/api\/v4\/leads\/unsorted\/([^/]+)\/accept$/.exec(r.path);
    if (r.method === 'POST' && accept) {
      const u = this.unsorted.get(decodeURIComponent(accept[1]!));
      if (!u) return { status: 404, body: { title: 'Not Found', status: 404, detail: 'unsorted not found' } };
      const o = (r.body ?? {}) as { user_id?: number; status_id?: number };
      const lead = this.amo.leads.get(u.leadId)!;
      const pipeline = this.amo.pipelines.find((p) => p.id === lead.pipeline_id)!;
      if (o.status_id !== undefined && !pipeline.statuses.some((s) => s.id === o.status_id)) return { status: 400, body: { title: 'Bad Request', status: 400, detail: 'status not found in the pipeline' } };
      lead.status_id = o.status_id ?? pipeline.statuses.find((s) => s.type === 0)!.id;
      if (o.user_id) lead.responsible_user_id = o.user_id;
      lead.updated_at = this.amo.tick();
      this.unsorted.delete(u.uid);
      return { status: 200, body: { uid: u.uid, _embedded: { leads: [{ id: u.leadId }], contacts: [{ id: u.contactId }] } } };
    }
    if (r.method === 'POST' && r.path === '/api/v4/contacts/chats') {
      const items = Array.isArray(r.body) ? (r.body as { contact_id?: number; chat_id?: string }[]) : [];
      for (const it of items) {
        const chat = [...this.chats.values()].find((c) => c.id === it.chat_id);
        if (!chat || !it.contact_id || !this.amo.contacts.has(it.contact_id)) return { status: 400, body: { title: 'Bad Request', status: 400, detail: 'chat or contact not found' } };
        chat.contactId = it.contact_id;
      }
      return { status: 200, body: { _embedded: { chats: items.map((i) => ({ chat_id: i.chat_id, contact_id: i.contact_id })) } } };
    }
    return undefined;
  }

  // ---- amojo HTTP ----------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const raw = await readBody(req);
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if ((method === 'GET' || method === 'HEAD') && path.startsWith('/media/')) {
      // Files a manager attaches (amoCRM's drive stands in here): a few JPEG bytes.
      const bytes = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 74, 70, 73, 70]);
      this.requests.push({ method, path, status: 200 });
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(bytes.length) }).end(method === 'HEAD' ? undefined : bytes);
      return;
    }
    const m = /^\/v2\/origin\/custom\/([^/]+)(\/.*)?$/.exec(path);
    if (!m) return this.answer(req, res, 404, { error: 'not found' });
    const [, first, restPath = ''] = m;
    const connectRoute = restPath === '/connect' || restPath === '/disconnect';
    // The key is the channel's secret: for connect the channel is in the path, else the scope's.
    const channelId = connectRoute ? first! : first!.split('_')[0]!;
    if (channelId !== this.channel.id) return this.answer(req, res, 404, { error: connectRoute ? 'channel not found' : 'scope not found' });
    const bad = checkSignedRequest({ secret: this.channel.secret, method, path: url.pathname, body: raw, headers: req.headers });
    if (bad) return this.answer(req, res, 403, { error: bad }, bad);
    let body: Record<string, unknown> = {};
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        return this.answer(req, res, 400, { error: 'body is not JSON' });
      }
    }
    if (connectRoute) {
      const account = String(body.account_id ?? '');
      if (!this.approved.has(account)) return this.answer(req, res, 400, { error: `account ${account} is not allowed for this channel` });
      const scopeId = `${this.channel.id}_${account}`;
      if (restPath === '/disconnect') {
        this.scopes.delete(account);
        return this.answer(req, res, 200, {});
      }
      this.scopes.set(account, scopeId);
      return this.answer(req, res, 200, { account_id: account, scope_id: scopeId, title: body.title ?? '', hook_api_version: body.hook_api_version ?? 'v1', is_time_window_disabled: true });
    }
    const scopeId = first!;
    if (![...this.scopes.values()].includes(scopeId)) return this.answer(req, res, 404, { error: 'scope not found: the account is not connected to the channel' });

    if (method === 'POST' && restPath === '') {
      if (body.event_type === 'edit_message') return this.edit(req, res, body.payload as Record<string, unknown>);
      if (body.event_type !== 'new_message') return this.answer(req, res, 400, { error: 'unknown event_type' });
      return this.newMessage(req, res, body.payload as Record<string, unknown>);
    }
    if (method === 'POST' && restPath === '/chats') {
      const user = (body.user ?? {}) as SandboxChat['user'];
      const conv = String(body.conversation_id ?? '');
      if (!conv || !user.id) return this.answer(req, res, 400, { error: 'conversation_id and user.id are required' });
      const chat = this.chatFor(conv, user);
      return this.answer(req, res, 200, { id: chat.id, user: { id: randomUUID(), client_id: chat.user.id, name: chat.user.name } });
    }
    if (method === 'POST' && restPath === '/typing') return this.answer(req, res, 204, undefined);
    const ds = /^\/([^/]+)\/delivery_status$/.exec(restPath);
    if (method === 'POST' && ds) {
      const msgid = decodeURIComponent(ds[1]!);
      const known = [...this.chats.values()].some((c) => c.messages.some((x) => x.id === msgid));
      if (!known) return this.answer(req, res, 404, { error: 'message not found' });
      const list = this.statuses.get(msgid) ?? [];
      list.push({ delivery_status: Number(body.delivery_status), ...(body.error_code !== undefined ? { error_code: Number(body.error_code) } : {}), ...(typeof body.error === 'string' ? { error: body.error } : {}) });
      this.statuses.set(msgid, list);
      return this.answer(req, res, 200, {});
    }
    const hist = /^\/chats\/([^/]+)\/history$/.exec(restPath);
    if (method === 'GET' && hist) {
      const chat = [...this.chats.values()].find((c) => c.id === decodeURIComponent(hist[1]!));
      const limit = Number(url.searchParams.get('limit') ?? 50);
      const offset = Number(url.searchParams.get('offset') ?? 0);
      if (!Number.isInteger(limit) || limit < 1 || limit > 50) return this.answer(req, res, 400, { error: 'limit must be 1..50' });
      // GUESS: newest first, like the amoCRM interface loads a chat.
      const page = [...(chat?.messages ?? [])].reverse().slice(offset, offset + limit);
      if (page.length === 0) return this.answer(req, res, 204, undefined);
      return this.answer(req, res, 200, {
        messages: page.map((x) => ({
          timestamp: x.timestamp, msec_timestamp: x.timestamp * 1000,
          sender: { id: x.sender.id, name: x.sender.name, ...(x.sender.client ? { client_id: x.sender.id } : {}), ...(x.sender.ref_id ? { ref_id: x.sender.ref_id } : {}) },
          receiver: x.receiver ? { id: x.receiver.id, name: x.receiver.name } : null,
          message: { id: x.id, ...(x.clientId ? { client_id: x.clientId } : {}), ...x.message },
        })),
      });
    }
    return this.answer(req, res, 404, { error: `no route ${method} ${path}` });
  }

  private chatFor(conversationId: string, user: SandboxChat['user']): SandboxChat {
    let chat = this.chats.get(conversationId);
    if (!chat) {
      chat = { id: randomUUID(), conversationId, user: { id: user.id, name: user.name ?? '', ...(user.profile_link ? { profile_link: user.profile_link } : {}) }, contactId: null, messages: [] };
      this.chats.set(conversationId, chat);
    }
    return chat;
  }

  private newMessage(req: IncomingMessage, res: ServerResponse, p: Record<string, unknown>): void {
    const msgid = String(p.msgid ?? '');
    const conv = String(p.conversation_id ?? '');
    const sender = (p.sender ?? {}) as { id?: string; name?: string; ref_id?: string; profile_link?: string };
    const receiver = p.receiver as { id: string; name?: string; profile_link?: string } | undefined;
    const message = (p.message ?? {}) as SandboxChatMessage['message'];
    if (!msgid || !conv || !sender.id) return this.answer(req, res, 400, { error: 'msgid, conversation_id and sender.id are required' });
    if (!['text', 'picture', 'file', 'video', 'voice', 'audio', 'sticker', 'location', 'contact'].includes(message.type)) return this.answer(req, res, 400, { error: `unknown message.type ${String(message.type)}` });
    if (message.type === 'text' && !message.text) return this.answer(req, res, 400, { error: 'message.text is required' });
    if (['picture', 'file', 'video'].includes(message.type) && (!message.media || !message.file_name || typeof message.file_size !== 'number')) return this.answer(req, res, 400, { error: 'media, file_name and file_size are required' });
    // GUESS: amojo refuses a repeated msgid ("не принимает несколько сообщений с одинаковым msgid"); the status is undocumented.
    for (const c of this.chats.values()) if (c.messages.some((x) => x.clientId === msgid)) return this.answer(req, res, 400, { error: `message with msgid ${msgid} already exists` });
    const fromClient = !sender.ref_id;
    const client = fromClient ? sender : receiver;
    if (!client?.id) return this.answer(req, res, 400, { error: 'receiver is required for a message from the integration bot' });
    const chat = this.chatFor(conv, { id: client.id, name: client.name ?? '', ...(client.profile_link ? { profile_link: client.profile_link } : {}) });
    const stored: SandboxChatMessage = {
      id: randomUUID(), clientId: msgid, timestamp: Number(p.timestamp ?? Math.floor(Date.now() / 1000)), silent: Boolean(p.silent),
      sender: { id: sender.id, ...(sender.name ? { name: sender.name } : {}), ...(sender.ref_id ? { ref_id: sender.ref_id } : {}), client: fromClient }, receiver, message,
    };
    chat.messages.push(stored);
    if (fromClient && !stored.silent) this.leadForIncoming(chat, client.name ?? '');
    if (this.stall && (!this.stall.msgid || this.stall.msgid === msgid)) {
      const { onStall } = this.stall;
      this.stall = undefined;
      this.requests.push({ method: 'POST', path: new URL(req.url ?? '/', 'http://x').pathname, status: -1 });
      onStall();
      return;
    }
    this.answer(req, res, 200, { new_message: { conversation_id: conv, sender_id: randomUUID(), receiver_id: randomUUID(), msgid: stored.id, ref_id: msgid } });
  }

  /** amoCRM's rule: a contact on the first message, and an unsorted lead unless the contact has an open lead. */
  private leadForIncoming(chat: SandboxChat, name: string): void {
    if (chat.contactId !== null) {
      const open = [...this.amo.leads.values()].some((l) => l.contacts.includes(chat.contactId!) && !l.is_deleted && l.status_id !== WON && l.status_id !== LOST);
      if (open) return;
    }
    const lead = this.amo.addLead({ contactId: chat.contactId, contactName: name, name: `Входящий чат: ${name}`, statusId: UNSORTED_STATUS });
    chat.contactId = lead.contacts[0]!;
    const uid = randomUUID();
    this.unsorted.set(uid, { uid, category: 'chats', pipelineId: lead.pipeline_id, createdAt: lead.created_at, leadId: lead.id, contactId: chat.contactId, amojoChatId: chat.id });
  }

  private edit(req: IncomingMessage, res: ServerResponse, p: Record<string, unknown>): void {
    const msgid = String(p.msgid ?? '');
    for (const c of this.chats.values()) {
      const m = c.messages.find((x) => x.clientId === msgid || x.id === p.id);
      if (m) {
        m.message = (p.message ?? m.message) as SandboxChatMessage['message'];
        return this.answer(req, res, 200, { edit_message: { msgid: m.id } });
      }
    }
    return this.answer(req, res, 404, { error: 'message not found' });
  }

  private answer(req: IncomingMessage, res: ServerResponse, status: number, payload: unknown, reason?: string): void {
    this.requests.push({ method: req.method ?? 'GET', path: new URL(req.url ?? '/', 'http://x').pathname, status, ...(reason ? { reason } : {}) });
    if (payload === undefined) res.writeHead(status).end();
    else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
  }
}
