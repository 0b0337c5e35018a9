import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { checkQuery, matchOperation, type OperationSpec } from './avito-spec.js';
import { closeServer, listenLoopback, readBody } from './net.js';
import { serveConsent, type ConsentRequest } from './oauth-consent.js';

/**
 * The sandbox Avito: an Avito API on 127.0.0.1 that speaks real HTTP and follows the official
 * specs — it rejects what the spec rejects (see avito-spec.ts), enforces the paging caps, issues
 * and expires tokens, rotates refresh tokens, and can inject faults (429 with and without
 * Retry-After, 5xx, dropped connections) and the 402 and employee-key conditions. The tests use
 * it as their fake; `avito-sync demo` runs the daemon against it (Avito itself has no sandbox).
 */

export interface FakeMessage {
  id: string;
  author_id: number;
  created: number;
  type: string;
  content: Record<string, unknown>;
  read?: number | null;
}

export interface FakeChat {
  id: string;
  created: number;
  updated: number;
  itemId?: number;
  buyer: { id: number; name: string };
  /** Oldest first. */
  messages: FakeMessage[];
  /** Visible to an employee's key (employee-key mode hides the rest). */
  employeeVisible?: boolean;
}

export interface FakeItem {
  id: number;
  title: string;
  price: number | null;
  url: string;
  status: string;
}

export interface Fault {
  /** Operation id (e.g. `getMessagesV3`) or `*`. */
  op: string;
  kind: '429' | '500' | '502' | '503' | 'drop' | 'html403';
  /** Only requests whose path contains this (e.g. a chat id). */
  pathIncludes?: string;
  /** Seconds for Retry-After on 429; none when undefined. */
  retryAfter?: number;
  times: number;
}

export interface RequestRecord {
  op: string;
  method: string;
  path: string;
  query: string;
  status: number;
}

export interface SandboxAvitoOptions {
  userId?: number;
  clientId?: string;
  clientSecret?: string;
  tokenTtlSeconds?: number;
  /** The guide says 403 for an expired token; other specs say 401. Default 403. */
  expiredTokenStatus?: 401 | 403;
  /** `object` (`{messages:[…]}`, what clients see) or `array` (what the spec documents). */
  messagesShape?: 'object' | 'array';
  /** Send X-RateLimit-Limit/Remaining with this per-minute limit. */
  rateLimitPerMinute?: number;
  /** How long a voice link lives, ms. Default one hour. */
  voiceLinkTtlMs?: number;
  /**
   * Each answer leaves this long after its request came in: the round trip to a remote server
   * (benchmarks; Avito is across the network, the sandbox on loopback). Default 0.
   */
  latencyMs?: number;
}

export class SandboxAvito {
  readonly userId: number;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly chats = new Map<string, FakeChat>();
  readonly items = new Map<number, FakeItem>();
  readonly subscriptions = new Map<string, string>();
  readonly blacklist: { user_id: number; context?: unknown }[] = [];
  readonly requests: RequestRecord[] = [];
  readonly uploads = new Map<string, Record<string, string>>();
  readonly mode = { tariff: false, employeeKey: false };
  /**
   * The next successful answer to this operation is never sent: the work is done (the message is
   * in the chat) but the caller never learns it. `onStall` runs then (a test kills the process).
   */
  stall: { op: string; onStall: () => void } | undefined;
  /** Called after every answered request (tests wait on it instead of sleeping). */
  onRequest: ((r: RequestRecord) => void) | undefined;
  /** The redirect URI registered with the app in Avito: the consent page (`/oauth`) sends codes there. */
  oauthRedirectUri = 'https://example.com/avito/callback';
  /** Visits to the consent page. */
  readonly consents: ConsentRequest[] = [];
  /** Epoch seconds: real time, moving forward at least a second per event (seeding runs ahead). */
  clock = Math.floor(Date.now() / 1000);
  url = '';

  private server: Server | undefined;
  private readonly tokens = new Map<string, number>();
  private readonly refreshTokens = new Set<string>();
  private readonly authCodes = new Set<string>();
  private faults: Fault[] = [];
  private holds: { op: string; after: number; seen: number; released: Promise<void> }[] = [];
  private seq = 0;
  /** Requests left this minute, sent as X-RateLimit-Remaining (tests lower it to see the client slow down). */
  rateRemaining: number;
  private readonly opts: Required<Omit<SandboxAvitoOptions, 'rateLimitPerMinute'>> & { rateLimitPerMinute?: number };

  constructor(options: SandboxAvitoOptions = {}) {
    this.opts = {
      userId: 1_000_001,
      clientId: 'fake-client-id',
      clientSecret: 'fake-client-secret-0123456789',
      tokenTtlSeconds: 86_400,
      expiredTokenStatus: 403,
      messagesShape: 'object',
      voiceLinkTtlMs: 3_600_000,
      latencyMs: 0,
      ...options,
    };
    this.userId = this.opts.userId;
    this.clientId = this.opts.clientId;
    this.clientSecret = this.opts.clientSecret;
    this.rateRemaining = this.opts.rateLimitPerMinute ?? 0;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.error(res, 500, `fake crashed: ${(err as Error).message}`);
      });
    });
    this.server.keepAliveTimeout = 5000;
    this.url = await listenLoopback(this.server);
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    await closeServer(this.server);
    this.server = undefined;
  }

  // ---- test controls ----------------------------------------------------------------------

  inject(fault: Fault): void {
    this.faults.push({ ...fault });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Every issued access token stops working (as if a day had passed). */
  expireTokens(): void {
    for (const t of this.tokens.keys()) this.tokens.set(t, 0);
  }

  /** Every refresh token issued so far stops working (spent by another process, revoked, too old). */
  revokeRefreshTokens(): void {
    this.refreshTokens.clear();
  }

  /**
   * Requests of operation `op` (or `*`) after the first `after` of them wait until `released`
   * settles: work that is visibly under way (a backfill to interrupt) without timing.
   */
  hold(op: string, released: Promise<void>, after = 0): void {
    this.holds.push({ op, after, seen: 0, released });
  }

  issueAuthCode(): string {
    const code = `code-${randomBytes(6).toString('hex')}`;
    this.authCodes.add(code);
    return code;
  }

  count(op: string, status?: number): number {
    return this.requests.filter((r) => (op === '*' || r.op === op) && (status === undefined || r.status === status)).length;
  }

  tick(seconds = 1): number {
    this.clock = Math.max(this.clock + seconds, Math.floor(Date.now() / 1000));
    return this.clock;
  }

  addItem(item: Partial<FakeItem> & { id: number }): FakeItem {
    const full: FakeItem = {
      title: `Item ${item.id}`,
      price: 1000 + (item.id % 1000),
      url: `https://www.avito.ru/moskva/item_${item.id}`,
      status: 'active',
      ...item,
    };
    this.items.set(full.id, full);
    return full;
  }

  addChat(init: { id?: string; type?: 'u2i' | 'u2u'; itemId?: number; buyerId?: number; buyerName?: string; created?: number; employeeVisible?: boolean } = {}): FakeChat {
    const n = ++this.seq;
    const type = init.type ?? (init.itemId !== undefined ? 'u2i' : 'u2i');
    const itemId = type === 'u2i' ? init.itemId ?? 2_000_000_000 + n : undefined;
    if (itemId !== undefined && !this.items.has(itemId)) this.addItem({ id: itemId });
    const created = init.created ?? this.tick();
    const chat: FakeChat = {
      id: init.id ?? `${type}-${n}~${randomBytes(4).toString('hex')}`,
      created,
      updated: created,
      ...(itemId !== undefined ? { itemId } : {}),
      buyer: { id: init.buyerId ?? 5_000_000 + n, name: init.buyerName ?? `Buyer ${n}` },
      messages: [],
      ...(init.employeeVisible ? { employeeVisible: true } : {}),
    };
    this.chats.set(chat.id, chat);
    return chat;
  }

  /** A message in a chat; by default the buyer writes text. Moves the chat's `updated`. */
  addMessage(chatId: string, init: { text?: string; type?: string; content?: Record<string, unknown>; fromSeller?: boolean; fromAvito?: boolean; created?: number; id?: string } = {}): FakeMessage {
    const chat = this.chats.get(chatId);
    if (!chat) throw new Error(`no chat ${chatId}`);
    const created = init.created ?? this.tick();
    const msg: FakeMessage = {
      id: init.id ?? `m${++this.seq}${randomBytes(6).toString('hex')}`,
      // Avito's own notices come from author 0 (real payloads).
      author_id: init.fromAvito ? 0 : init.fromSeller ? this.userId : chat.buyer.id,
      created,
      type: init.type ?? 'text',
      content: init.content ?? { text: init.text ?? `hello ${this.seq}` },
      read: null,
    };
    chat.messages.push(msg);
    chat.updated = Math.max(chat.updated, created);
    return msg;
  }

  /** Sends the v3 webhook for a message to every subscribed URL, as Avito would; returns the statuses. */
  async pushWebhook(chatId: string, msg: FakeMessage): Promise<number[]> {
    const body = JSON.stringify(this.webhookBody(chatId, msg));
    return Promise.all([...this.subscriptions.keys()].map((url) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0)));
  }

  /** Many chats with many messages each, for benchmarks and paging tests. */
  /** The buyer opens the chat: every message the seller's side wrote there is read now (Avito's `read`, unix s). */
  buyerReads(chatId: string): number {
    const chat = this.chats.get(chatId);
    if (!chat) throw new Error(`no chat ${chatId}`);
    const at = this.tick();
    for (const m of chat.messages) if (m.author_id === this.userId && (m.read === null || m.read === undefined)) m.read = at;
    return at;
  }

  seed(chats: number, messagesPerChat: number, opts: { itemIds?: number[] } = {}): FakeChat[] {
    const out: FakeChat[] = [];
    for (let i = 0; i < chats; i++) {
      const itemId = opts.itemIds?.length ? opts.itemIds[i % opts.itemIds.length] : undefined;
      const chat = this.addChat(itemId !== undefined ? { itemId } : {});
      for (let j = 0; j < messagesPerChat; j++) this.addMessage(chat.id, { text: `message ${j} in ${chat.id}`, fromSeller: j % 3 === 2 });
      out.push(chat);
    }
    return out;
  }

  /** The v3 webhook body Avito would send for a message (messenger.json postWebhookV3 201). */
  webhookBody(chatId: string, msg: FakeMessage): Record<string, unknown> {
    const chat = this.chats.get(chatId)!;
    return {
      id: `evt-${msg.id}`,
      version: 'v3.0.0',
      timestamp: msg.created,
      payload: {
        type: 'message',
        value: {
          id: msg.id,
          chat_id: chatId,
          user_id: this.userId,
          author_id: msg.author_id,
          created: msg.created,
          type: msg.type,
          chat_type: chatId.slice(0, 3),
          content: msg.content,
          item_id: chat.itemId ?? null,
          published_at: new Date(msg.created * 1000).toISOString(),
          read: null,
        },
      },
    };
  }

  // ---- HTTP -------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const body = await readBody(req);

    // Avito's consent page lives on avito.ru/oauth; the sandbox serves it beside the API.
    if (req.method === 'GET' && serveConsent(url, res, { provider: 'Avito', clientId: this.clientId, redirectUri: () => this.oauthRedirectUri, issueCode: () => this.issueAuthCode(), seen: this.consents })) return;
    if (req.method === 'GET' && url.pathname.startsWith('/files/voice/')) return this.serveVoice(url, res);

    const matched = matchOperation(req.method ?? 'GET', url.pathname);
    if ('error' in matched) return this.reply(req, url, res, '-', matched.status, { error: { code: matched.status, message: matched.error } });
    const { op, params } = matched;

    for (const h of this.holds) {
      if (h.op !== '*' && h.op !== op.id) continue;
      if (h.seen++ >= h.after) await h.released;
    }

    const fault = this.takeFault(op.id, url.pathname);
    if (fault) {
      if (fault.kind === 'drop') {
        this.requests.push({ op: op.id, method: req.method!, path: url.pathname, query: url.search, status: 0 });
        req.socket.destroy();
        return;
      }
      if (fault.kind === 'html403') {
        return this.reply(req, url, res, op.id, 403, '<html><head><title>403 Forbidden</title></head><body>blocked</body></html>', 'text/html');
      }
      const status = Number(fault.kind);
      const headers: Record<string, string> = fault.kind === '429' && fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {};
      return this.reply(req, url, res, op.id, status, { error: { code: status, message: status === 429 ? 'Too Many Requests' : 'Error while processing request. Please, contact support' } }, 'application/json', headers);
    }

    const queryProblem = checkQuery(op, url.searchParams);
    if (queryProblem) return this.reply(req, url, res, op.id, 400, { error: { code: 400, message: 'Validation error', fields: { [queryProblem.split(':')[0]!]: queryProblem } } });

    if (op.auth) {
      const auth = req.headers.authorization ?? '';
      const token = /^Bearer (.+)$/.exec(auth)?.[1];
      const expiresAt = token ? this.tokens.get(token) : undefined;
      if (!token || expiresAt === undefined) return this.reply(req, url, res, op.id, 401, { error: { code: 401, message: 'Unauthorized' } });
      if (expiresAt <= Date.now()) {
        const s = this.opts.expiredTokenStatus;
        return this.reply(req, url, res, op.id, s, { error: { code: s, message: s === 403 ? 'Forbidden' : 'Unauthorized' } });
      }
    }
    if (op.messenger && this.mode.tariff) return this.reply(req, url, res, op.id, 402, { error: { code: 402, message: 'Payment required' } });
    if (params.user_id !== undefined && params.user_id !== String(this.userId)) {
      return this.reply(req, url, res, op.id, 403, { error: { code: 403, message: 'user_id does not match the token' } });
    }
    if (this.mode.employeeKey && op.chatScoped) {
      const chat = params.chat_id ? this.chats.get(params.chat_id) : undefined;
      if (!chat?.employeeVisible) return this.reply(req, url, res, op.id, 403, { error: { code: 403, message: 'permission denied' } });
    }

    let parsedBody: unknown;
    if (op.body?.type === 'json') {
      if (!String(req.headers['content-type'] ?? '').includes('application/json')) {
        return this.reply(req, url, res, op.id, 400, { error: { code: 400, message: 'Content-Type must be application/json' } });
      }
      try {
        parsedBody = JSON.parse(body.toString('utf8'));
      } catch {
        return this.reply(req, url, res, op.id, 400, { error: { code: 400, message: 'Bad Request: invalid JSON' } });
      }
      const check = op.body.schema.safeParse(parsedBody);
      if (!check.success) {
        const issue = check.error.issues[0]!;
        return this.reply(req, url, res, op.id, 400, { error: { code: 400, message: 'Validation error', fields: { [issue.path.join('.') || 'body']: issue.message } } });
      }
      parsedBody = check.data;
    } else if (op.body?.type === 'multipart') {
      const form = await new Request('http://x/', { method: 'POST', headers: { 'content-type': String(req.headers['content-type'] ?? '') }, body }).formData().catch(() => undefined);
      const file = form?.get(op.body.field);
      if (!file || typeof file === 'string') return this.reply(req, url, res, op.id, 400, { error: { code: 400, message: `Validation error: ${op.body.field} is required` } });
      if (file.size > 24 * 1024 * 1024) return this.reply(req, url, res, op.id, 400, { error: { code: 400, message: 'Image is larger than 24 MB' } });
      parsedBody = file;
    } else if (op.body?.type === 'form') {
      parsedBody = new URLSearchParams(body.toString('utf8'));
    } else if (body.length > 0 && req.method === 'POST' && String(req.headers['content-type'] ?? '').includes('json')) {
      try {
        JSON.parse(body.toString('utf8'));
      } catch {
        return this.reply(req, url, res, op.id, 400, { error: { code: 400, message: 'Bad Request: invalid JSON' } });
      }
    }

    const [status, payload] = this.operate(op, params, url.searchParams, parsedBody);
    return this.reply(req, url, res, op.id, status, payload);
  }

  private operate(op: OperationSpec, params: Record<string, string>, q: URLSearchParams, body: unknown): [number, unknown] {
    const nf = (what: string): [number, unknown] => [404, { error: { code: 404, message: `${what} not found` } }];
    switch (op.id) {
      case 'getAccessToken':
        return this.token(body as URLSearchParams);
      case 'getUserInfoSelf':
        return [200, { id: this.userId, name: 'Fake Seller', email: 'seller@example.com', phone: '79990000000', profile_url: `https://www.avito.ru/user/${this.userId}/profile` }];
      case 'getItemsInfo': {
        const perPage = Number(q.get('per_page') ?? 25);
        const page = Number(q.get('page') ?? 1);
        const statuses = (q.get('status') ?? 'active').split(',');
        const all = [...this.items.values()].filter((i) => statuses.includes(i.status)).sort((a, b) => a.id - b.id);
        const resources = all.slice((page - 1) * perPage, page * perPage).map((i) => ({ id: i.id, title: i.title, price: i.price, url: i.url, status: i.status, address: 'Москва', category: { id: 1, name: 'Разное' } }));
        return [200, { meta: { page, per_page: perPage }, resources }];
      }
      case 'getChatsV2': {
        const types = (q.get('chat_types') ?? 'u2i').split(',');
        const itemIds = q.get('item_ids')?.split(',').map(Number);
        const unreadOnly = q.get('unread_only') === 'true';
        const limit = Number(q.get('limit') ?? 100);
        const offset = Number(q.get('offset') ?? 0);
        let list = [...this.chats.values()].filter((c) => types.includes(c.id.slice(0, 3)));
        if (itemIds) list = list.filter((c) => c.itemId !== undefined && itemIds.includes(c.itemId));
        if (this.mode.employeeKey) list = list.filter((c) => c.employeeVisible);
        if (unreadOnly) list = list.filter((c) => c.messages.some((m) => m.author_id !== this.userId && !m.read));
        list.sort((a, b) => b.updated - a.updated || (a.id < b.id ? -1 : 1));
        return [200, { chats: list.slice(offset, offset + limit).map((c) => this.chatJson(c)) }];
      }
      case 'getChatByIdV2': {
        const chat = this.chats.get(params.chat_id!);
        return chat ? [200, this.chatJson(chat)] : nf('chat');
      }
      case 'getMessagesV3': {
        const chat = this.chats.get(params.chat_id!);
        if (!chat) return nf('chat');
        const limit = Number(q.get('limit') ?? 100);
        const offset = Number(q.get('offset') ?? 0);
        const newestFirst = [...chat.messages].reverse();
        const page = newestFirst.slice(offset, offset + limit).map((m) => this.messageJson(m));
        return [200, this.opts.messagesShape === 'array' ? page : { messages: page }];
      }
      case 'postSendMessage': {
        const chat = this.chats.get(params.chat_id!);
        if (!chat) return nf('chat');
        const text = (body as { message: { text: string } }).message.text;
        const msg = this.addMessage(chat.id, { text, fromSeller: true });
        return [200, { id: msg.id, created: msg.created, direction: 'out', type: 'text', content: { text } }];
      }
      case 'uploadImages': {
        const imageId = `${Date.now()}.${randomBytes(8).toString('hex')}`;
        const sizes = { '1280x960': `${this.url}/img/1280x960/${imageId}.jpg`, '140x105': `${this.url}/img/140x105/${imageId}.jpg` };
        this.uploads.set(imageId, sizes);
        return [200, { [imageId]: sizes }];
      }
      case 'postSendImageMessage': {
        const chat = this.chats.get(params.chat_id!);
        if (!chat) return nf('chat');
        const imageId = (body as { image_id: string }).image_id;
        const sizes = this.uploads.get(imageId);
        if (!sizes) return [400, { error: { code: 400, message: 'unknown image_id' } }];
        const msg = this.addMessage(chat.id, { type: 'image', content: { image: { sizes } }, fromSeller: true });
        return [200, { id: msg.id, author_id: this.userId, created: msg.created, direction: 'out', type: 'image', content: msg.content }];
      }
      case 'deleteMessage': {
        const chat = this.chats.get(params.chat_id!);
        const msg = chat?.messages.find((m) => m.id === params.message_id);
        if (!chat || !msg) return nf('message');
        if (msg.author_id !== this.userId) return [403, { error: { code: 403, message: 'only own messages can be deleted' } }];
        if (this.clock - msg.created > 3600) return [400, { error: { code: 400, message: 'message is older than one hour' } }];
        msg.type = 'deleted';
        msg.content = {};
        chat.updated = this.tick();
        return [200, {}];
      }
      case 'chatRead': {
        const chat = this.chats.get(params.chat_id!);
        if (!chat) return nf('chat');
        for (const m of chat.messages) if (m.author_id !== this.userId) m.read = m.read ?? this.clock;
        return [200, { ok: true }];
      }
      case 'getVoiceFiles': {
        const ids = q.get('voice_ids')!.split(',');
        const until = Date.now() + this.opts.voiceLinkTtlMs;
        const urls: Record<string, string> = {};
        for (const id of ids) urls[id] = `${this.url}/files/voice/${encodeURIComponent(id)}?until=${until}`;
        return [200, { voices_urls: urls }];
      }
      case 'postBlacklistV2':
        this.blacklist.push(...(body as { users: { user_id: number }[] }).users);
        return [200, {}];
      case 'getSubscriptions':
        return [200, { subscriptions: [...this.subscriptions.entries()].map(([url, version]) => ({ url, version })) }];
      case 'postWebhookV3':
        this.subscriptions.set((body as { url: string }).url, '3');
        return [200, { ok: true }];
      case 'postWebhookUnsubscribe':
        this.subscriptions.delete((body as { url: string }).url);
        return [200, { ok: true }];
      default:
        return [501, { error: { code: 501, message: `fake does not implement ${op.id}` } }];
    }
  }

  private token(form: URLSearchParams): [number, unknown] {
    const grant = form.get('grant_type');
    const bad = (message: string): [number, unknown] => [400, { error: 'invalid_request', error_description: message }];
    if (!grant) return bad('grant_type is required');
    if (!form.get('client_id') || !form.get('client_secret')) return bad('client_id and client_secret are required');
    if (form.get('client_id') !== this.clientId || form.get('client_secret') !== this.clientSecret) {
      return [400, { error: 'invalid_client', error_description: 'Client authentication failed' }];
    }
    const issue = (withRefresh: boolean): [number, unknown] => {
      const access = `tok-${randomBytes(12).toString('hex')}`;
      this.tokens.set(access, Date.now() + this.opts.tokenTtlSeconds * 1000);
      const out: Record<string, unknown> = { access_token: access, expires_in: this.opts.tokenTtlSeconds, token_type: 'Bearer' };
      if (withRefresh) {
        const refresh = `ref-${randomBytes(12).toString('hex')}`;
        this.refreshTokens.add(refresh);
        out.refresh_token = refresh;
        out.scope = 'messenger:read,messenger:write';
      }
      return [200, out];
    };
    switch (grant) {
      case 'client_credentials':
        return issue(false);
      case 'authorization_code': {
        const code = form.get('code');
        if (!code) return bad('code is required');
        if (!this.authCodes.delete(code)) return [400, { error: 'invalid_grant', error_description: 'code is invalid or used' }];
        return issue(true);
      }
      case 'refresh_token': {
        const refresh = form.get('refresh_token');
        if (!refresh) return bad('refresh_token is required');
        // Refresh tokens work once: rotation.
        if (!this.refreshTokens.delete(refresh)) return [400, { error: 'invalid_grant', error_description: 'refresh token is invalid or used' }];
        return issue(true);
      }
      default:
        return bad(`unsupported grant_type ${grant}`);
    }
  }

  private chatJson(c: FakeChat): Record<string, unknown> {
    const item = c.itemId !== undefined ? this.items.get(c.itemId) : undefined;
    const last = c.messages[c.messages.length - 1];
    return {
      id: c.id,
      created: c.created,
      updated: c.updated,
      context: item
        ? { type: 'item', value: { id: item.id, title: item.title, url: item.url, price_string: item.price === null ? 'Цена не указана' : `${item.price.toLocaleString('ru-RU')} ₽`, status_id: 10, user_id: this.userId, images: { count: 1, main: { '140x105': `${this.url}/img/140x105/${item.id}.jpg` } } } }
        : { type: 'profile', value: {} },
      last_message: last ? this.messageJson(last) : undefined,
      users: [
        { id: this.userId, name: 'Fake Seller', public_user_profile: { user_id: this.userId, url: `https://www.avito.ru/user/${this.userId}/profile` } },
        { id: c.buyer.id, name: c.buyer.name, public_user_profile: { user_id: c.buyer.id, url: `https://www.avito.ru/user/${c.buyer.id}/profile` } },
      ],
    };
  }

  private messageJson(m: FakeMessage): Record<string, unknown> {
    return {
      id: m.id,
      author_id: m.author_id,
      created: m.created,
      direction: m.author_id === this.userId ? 'out' : 'in',
      type: m.type,
      content: m.content,
      is_read: m.read !== null && m.read !== undefined,
      read: m.read ?? null,
    };
  }

  private serveVoice(url: URL, res: ServerResponse): void {
    const until = Number(url.searchParams.get('until'));
    this.requests.push({ op: 'voiceFile', method: 'GET', path: url.pathname, query: url.search, status: until > Date.now() ? 200 : 403 });
    if (!(until > Date.now())) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('link expired');
      return;
    }
    const id = decodeURIComponent(url.pathname.split('/').pop() ?? '');
    res.writeHead(200, { 'content-type': 'audio/mp4' }).end(Buffer.from(`FAKE-OPUS-MP4 ${id}`));
  }

  private takeFault(opId: string, pathname: string): Fault | undefined {
    const f = this.faults.find((x) => x.times > 0 && (x.op === '*' || x.op === opId) && (!x.pathIncludes || pathname.includes(x.pathIncludes)));
    if (!f) return undefined;
    f.times--;
    return f;
  }

  private reply(req: IncomingMessage, url: URL, res: ServerResponse, op: string, status: number, payload: unknown, contentType = 'application/json', extra: Record<string, string> = {}): void {
    if (this.stall && this.stall.op === op && status === 200) {
      const { onStall } = this.stall;
      this.stall = undefined;
      this.requests.push({ op, method: req.method ?? 'GET', path: url.pathname, query: url.search, status: -1 });
      onStall();
      return;
    }
    const record = { op, method: req.method ?? 'GET', path: url.pathname, query: url.search, status };
    this.requests.push(record);
    this.onRequest?.(record);
    const headers: Record<string, string> = { 'content-type': contentType, ...extra };
    if (this.opts.rateLimitPerMinute) {
      this.rateRemaining = Math.max(0, this.rateRemaining - 1);
      headers['x-ratelimit-limit'] = String(this.opts.rateLimitPerMinute);
      headers['x-ratelimit-remaining'] = String(this.rateRemaining);
    }
    const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
    if (this.opts.latencyMs > 0) setTimeout(() => res.writeHead(status, headers).end(body), this.opts.latencyMs);
    else res.writeHead(status, headers).end(body);
  }

  private error(res: ServerResponse, status: number, message: string): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: status, message } }));
  }
}
