import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import {
  RemoteApiError, closeServer, defineConnector, listenLoopback, readBody,
  type ConnectorContext, type ConnectorDefinition, type ConnectorInstance, type IncomingReply, type RemoteErrorKind, type WebhookRequest,
} from '../../src/connector-sdk/index.js';

/**
 * A toy CRM and its connector, written only against the SDK entry: the kit's own tests run the
 * kit on it (everything passes) and on broken copies of it (each case catches its breakage).
 * The CRM keeps conversations, messages, manager notes, outcome notes and blacklist requests,
 * signs its webhooks (HMAC-SHA256 over `<timestamp>.<body>`) and fails on demand.
 */
export class ToyCrm {
  url = '';
  readonly token = `toy-${randomBytes(6).toString('hex')}`;
  readonly webhookSecret = `whsec-${randomBytes(8).toString('hex')}`;
  readonly conversations = new Map<string, { id: string; chatId: string; title: string }>();
  /** Messages per conversation, repeats included. */
  readonly messages: { conversationId: string; messageId: string; remoteId: string; text: string }[] = [];
  /** Everything written in a conversation after messages: manager notes, outcomes, action reports. */
  readonly notes: { seq: number; conversationId: string; kind: 'manager' | 'internal' | 'outcome' | 'report' | 'blacklist' | 'read'; text: string }[] = [];
  private faults: { status: number; times: number }[] = [];
  private seq = 0;
  private server: Server | undefined;

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res).catch(() => res.writeHead(500).end()));
    this.url = await listenLoopback(this.server);
  }

  async stop(): Promise<void> {
    if (this.server) await closeServer(this.server);
  }

  inject(status: number, times: number): void {
    this.faults.push({ status, times });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** A manager writes in a conversation (the reply prefix `/reply ` makes it a reply). Returns the signed webhook the CRM sends. */
  note(conversationId: string, text: string, kind: 'manager' | 'internal' | 'blacklist'): WebhookRequest {
    const n = { seq: ++this.seq, conversationId, kind, text };
    this.notes.push(n);
    return this.sign(JSON.stringify({ event: 'note', note: n }));
  }

  sign(body: string, timestamp = Math.floor(Date.now() / 1000)): WebhookRequest {
    const signature = createHmac('sha256', this.webhookSecret).update(`${timestamp}.${body}`).digest('hex');
    return { body: Buffer.from(body), contentType: 'application/json', headers: { 'content-type': 'application/json', 'x-toy-timestamp': String(timestamp), 'x-toy-signature': signature } };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const send = (status: number, payload: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    const fault = this.faults.find((f) => f.times > 0);
    if (fault) {
      fault.times--;
      return send(fault.status, { error: `injected ${fault.status}` });
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { error: 'bad token' });
    const url = new URL(req.url ?? '/', this.url);
    const json = body.length ? (JSON.parse(body.toString()) as Record<string, string>) : {};
    const after = Number(url.searchParams.get('after') ?? 0);
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /me':
        return send(200, { ok: true });
      case 'POST /conversations': {
        const existing = [...this.conversations.values()].find((c) => c.chatId === json.chatId);
        if (existing) return send(200, existing);
        const c = { id: `conv-${this.conversations.size + 1}`, chatId: json.chatId!, title: json.title! };
        this.conversations.set(c.id, c);
        return send(201, c);
      }
      case 'PATCH /conversations': {
        const c = this.conversations.get(json.id!);
        if (!c) return send(404, { error: 'no such conversation' });
        c.title = json.title!;
        return send(200, c);
      }
      case 'POST /messages': {
        if (!this.conversations.has(json.conversationId!)) return send(400, { error: 'no such conversation' });
        const m = { conversationId: json.conversationId!, messageId: json.messageId!, remoteId: `msg-${String(req.headers['idempotency-key'])}`, text: json.text! };
        this.messages.push(m);
        return send(201, { id: m.remoteId });
      }
      case 'GET /messages': {
        const ids = new Set((url.searchParams.get('ids') ?? '').split(','));
        return send(200, this.messages.filter((m) => ids.has(m.messageId)).map((m) => ({ messageId: m.messageId, id: m.remoteId })));
      }
      case 'GET /notes':
        return send(200, { notes: this.notes.filter((n) => n.seq > after && (n.kind === 'manager' || n.kind === 'internal' || n.kind === 'blacklist')), seq: this.seq });
      case 'POST /notes': {
        this.notes.push({ seq: ++this.seq, conversationId: json.conversationId!, kind: json.kind as 'outcome' | 'report' | 'read', text: json.text! });
        return send(201, {});
      }
      default:
        return send(404, { error: 'not found' });
    }
  }
}

const configSchema = z.object({ baseUrl: z.string().url(), token: z.string().min(1), webhookSecret: z.string().min(1) });
type ToyConfig = z.output<typeof configSchema>;

const KINDS: Record<number, RemoteErrorKind> = { 400: 'bad_request', 401: 'bad_credentials', 403: 'forbidden', 404: 'not_found', 429: 'rate_limited' };

/** The toy connector: `findDelivered` on or off (then the remote id is derived from the message id, so a re-send is deduplicable). */
export class ToyConnector implements ConnectorInstance {
  constructor(private readonly ctx: ConnectorContext<ToyConfig>, private readonly withFind: boolean) {}

  private async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const operation = `${method} ${path.split('?')[0]}`;
    let res: Response;
    try {
      res = await fetch(`${this.ctx.config.baseUrl}${path}`, { method, headers: { authorization: `Bearer ${this.ctx.config.token}`, 'content-type': 'application/json', ...headers }, ...(body ? { body: JSON.stringify(body) } : {}) });
    } catch (err) {
      throw new RemoteApiError({ provider: 'Toy CRM', kind: 'network', status: 0, remoteMessage: '', hint: 'Is the CRM up?', operation, cause: err });
    }
    const json = (await res.json()) as T & { error?: string };
    if (!res.ok) throw new RemoteApiError({ provider: 'Toy CRM', kind: KINDS[res.status] ?? (res.status >= 500 ? 'server' : 'bad_request'), status: res.status, remoteMessage: json.error ?? '', hint: res.status === 401 ? 'Check the token.' : 'See the CRM logs.', operation });
    return json;
  }

  async checkAccess() {
    try {
      await this.call('GET', '/me');
      return [{ check: 'Toy CRM access', verdict: 'ok' as const, detail: 'the token works' }];
    } catch (err) {
      return [{ check: 'Toy CRM access', verdict: 'fail' as const, detail: (err as Error).message, action: 'Set a valid token.' }];
    }
  }

  async ensureConversations(requests: Parameters<ConnectorInstance['ensureConversations']>[0]) {
    return Promise.all(requests.map(async (r) => {
      try {
        const c = await this.call<{ id: string }>('POST', '/conversations', { chatId: r.chat.chatId, title: r.chat.item.title ?? 'chat' });
        return { ok: true as const, value: { id: c.id } };
      } catch (error) {
        return { ok: false as const, error };
      }
    }));
  }

  async deliver(items: Parameters<ConnectorInstance['deliver']>[0]) {
    const out = [];
    for (const i of items) {
      const r = await this.call<{ id: string }>('POST', '/messages', { conversationId: i.conversation.id, messageId: i.message.messageId, text: i.message.text ?? '' }, { 'idempotency-key': i.message.messageId });
      out.push({ ok: true as const, value: { remoteId: r.id } });
    }
    return out;
  }

  async findDelivered(items: Parameters<ConnectorInstance['findDelivered']>[0]) {
    const found = await this.call<{ messageId: string; id: string }[]>('GET', `/messages?ids=${items.map((i) => i.message.messageId).join(',')}`);
    return new Map(found.map((f) => [f.messageId, f.id]));
  }

  async close() {}

  private toReplies(notes: { seq: number; conversationId: string; kind: string; text: string }[]): IncomingReply[] {
    return notes.filter((n) => n.kind === 'manager' && n.text.startsWith('/reply ')).map((n) => ({ remoteId: `note-${n.seq}`, conversationId: n.conversationId, text: n.text.slice('/reply '.length), attachments: [], createdAt: 0 }));
  }

  async pollReplies(cursor: string | undefined) {
    const r = await this.call<{ notes: { seq: number; conversationId: string; kind: string; text: string }[]; seq: number }>('GET', `/notes?after=${cursor ?? 0}`);
    return { replies: cursor === undefined ? [] : this.toReplies(r.notes), cursor: String(r.seq) };
  }

  /** The buyer read a reply: a `read` note naming the reply's id. */
  async markRead(items: Parameters<NonNullable<ConnectorInstance['markRead']>>[0]) {
    for (const i of items) await this.call('POST', '/notes', { conversationId: i.conversation.id, kind: 'read', text: i.remoteId });
  }

  async reportReplies(items: Parameters<NonNullable<ConnectorInstance['reportReplies']>>[0]) {
    for (const i of items) await this.call('POST', '/notes', { conversationId: i.conversation.id, kind: 'outcome', text: i.outcome.sent ? 'Reply sent.' : `Reply NOT sent: ${i.outcome.reason}` });
  }

  async webhook(req: WebhookRequest) {
    const ts = Number(req.headers['x-toy-timestamp']);
    const expected = createHmac('sha256', this.ctx.config.webhookSecret).update(`${ts}.${req.body.toString()}`).digest();
    const given = Buffer.from(req.headers['x-toy-signature'] ?? '', 'hex');
    if (!Number.isFinite(ts) || given.length !== expected.length || !timingSafeEqual(given, expected)) return { accepted: false as const, status: 401 as const, reason: 'bad signature' };
    if (Math.abs(Date.now() / 1000 - ts) > 300) return { accepted: false as const, status: 401 as const, reason: 'stale timestamp' };
    let parsed: { note?: { seq: number; conversationId: string; kind: string; text: string } };
    try {
      parsed = JSON.parse(req.body.toString()) as typeof parsed;
    } catch {
      return { accepted: false as const, status: 400 as const, reason: 'not JSON' };
    }
    return { accepted: true as const, replies: parsed.note ? this.toReplies([parsed.note]) : [] };
  }

  async pollActions(cursor: string | undefined) {
    const r = await this.call<{ notes: { conversationId: string; kind: string }[]; seq: number }>('GET', `/notes?after=${cursor ?? 0}`);
    return { actions: cursor === undefined ? [] : r.notes.filter((n) => n.kind === 'blacklist').map((n) => ({ conversationId: n.conversationId, action: 'blacklist' as const })), cursor: String(r.seq) };
  }

  /** Renames a conversation still titled as one made without its chat's details. */
  async updateConversations(updates: Parameters<NonNullable<ConnectorInstance['updateConversations']>>[0]) {
    return Promise.all(updates.map(async (u) => {
      try {
        if (u.chat.item.title) await this.call('PATCH', '/conversations', { id: u.conversation.id, title: u.chat.item.title });
        return { ok: true as const, value: undefined };
      } catch (error) {
        return { ok: false as const, error };
      }
    }));
  }

  async reportAction(conversation: { id: string }, _action: 'blacklist', outcome: { done: true } | { done: false; reason: string }) {
    await this.call('POST', '/notes', { conversationId: conversation.id, kind: 'report', text: outcome.done ? 'Blacklisted.' : `Not blacklisted: ${outcome.reason}` });
  }

  get findCapable(): boolean {
    return this.withFind;
  }
}

/** The toy connector's definition. */
export function toyDefinition(o: { findDelivered: boolean }): ConnectorDefinition {
  return defineConnector({
    id: o.findDelivered ? 'toy' : 'toy-at-least-once',
    version: '0.0.0',
    configSchema,
    capabilities: { maxBatch: 2, maxConversationBatch: 2, findDelivered: o.findDelivered, replies: true, webhooks: true, actions: true, readReceipts: true, updateConversations: true },
    create: (ctx) => new ToyConnector(ctx, o.findDelivered),
  }) as ConnectorDefinition;
}
