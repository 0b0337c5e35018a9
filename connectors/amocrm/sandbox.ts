import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback, readBody, type ConnectorSandbox, serveConsent, type ConsentRequest } from '../../src/connector-sdk/index.js';

/**
 * The sandbox amoCRM: amoCRM REST v4 on 127.0.0.1 (real HTTP) for the tests and
 * `avito-sync demo`, following the community OpenAPI and the facts the specs leave out: problem+json errors, `204 No Content` for empty lists, the bare-array
 * answer of `leads/complex` and its 50-per-request cap, 250 per list page, 7 requests per
 * sliding second per token → 429, and a ban mode in which everything answers an HTML 403.
 */

export interface FakeLead {
  id: number;
  name: string;
  price: number;
  status_id: number;
  pipeline_id: number;
  responsible_user_id: number;
  custom_fields_values: { field_id: number; values: { value: unknown }[] }[] | null;
  tags: string[];
  contacts: number[];
  created_at: number;
  updated_at: number;
  is_deleted: boolean;
}

export interface FakeNote {
  id: number;
  entity_id: number;
  note_type: string;
  params: Record<string, unknown>;
  created_by: number;
  created_at: number;
  updated_at: number;
}

export interface AmoFault {
  /** A substring of the path, or `*`. */
  path: string;
  method?: string;
  kind: '429' | '500' | '503' | 'drop' | 'html403' | '400' | '401';
  times: number;
}

export interface SandboxAmoOptions {
  /** Requests per sliding second before 429. Default 7. */
  rateLimit?: number;
  /** 429s within a minute that get the integration banned (HTML 403 for everything). Default: never. */
  banAfter429s?: number;
  /** Allow creating custom fields. Default true. */
  canCreateFields?: boolean;
  /** This account's id (`GET /api/v4/account`, `account[id]` in webhooks). Default 31000000. */
  accountId?: number;
  /** This account's subdomain. Default `fakeshop`. */
  subdomain?: string;
  /**
   * Call `note_lead` webhooks for notes written through the API too, as amoCRM does (one call per
   * request, naming every note). Default false (tests that count webhook calls stay simple).
   */
  callbackForApiNotes?: boolean;
}

export const INTEGRATION_USER = 1;
export const MANAGER_USER = 2;
export const MAIN_PIPELINE = 1000;
export const FIRST_OPEN_STATUS = 1002;

export class SandboxAmo {
  url = '';
  readonly token = `amo-long-lived-${randomBytes(8).toString('hex')}`;
  readonly oauth = { clientId: 'amo-client-id', clientSecret: 'amo-client-secret-0123456789', redirectUri: 'https://example.com/amo/callback' };
  /** Visits to the consent page (`GET /oauth`; amoCRM's is www.amocrm.ru/oauth). */
  readonly consents: ConsentRequest[] = [];
  readonly contacts = new Map<number, { id: number; name: string; created_at: number }>();
  readonly leads = new Map<number, FakeLead>();
  readonly notes = new Map<number, FakeNote>();
  readonly customFields: { id: number; name: string; code: string | null; type: string }[] = [];
  readonly webhooks = new Map<string, string[]>();
  /** Statuses the daemon answered to webhooks this fake sent. */
  readonly webhookCalls: Promise<number>[] = [];
  readonly requests: { method: string; path: string; status: number; at: number }[] = [];
  readonly pipelines = [
    {
      id: MAIN_PIPELINE, name: 'Воронка', sort: 1, is_main: true, is_archive: false,
      statuses: [
        { id: 1001, name: 'Неразобранное', sort: 10, type: 1 },
        { id: FIRST_OPEN_STATUS, name: 'Первичный контакт', sort: 20, type: 0 },
        { id: 1003, name: 'Переговоры', sort: 30, type: 0 },
        { id: 142, name: 'Успешно реализовано', sort: 10000, type: 0 },
        { id: 143, name: 'Закрыто и не реализовано', sort: 11000, type: 0 },
      ],
    },
    { id: 2000, name: 'Опт', sort: 2, is_main: false, is_archive: false, statuses: [{ id: 2001, name: 'Новый', sort: 10, type: 0 }, { id: 142, name: 'Успешно', sort: 10000, type: 0 }, { id: 143, name: 'Закрыто', sort: 11000, type: 0 }] },
  ];
  banned = false;
  /** The account's chat id (`GET /api/v4/account?with=amojo_id`). */
  readonly amojoId = randomUUID();
  /** Extra routes (the Chats API sandbox adds Unsorted): an answer, or undefined to pass. */
  readonly extensions: ((r: { method: string; path: string; url: URL; body: unknown }) => { status: number; body?: unknown } | undefined)[] = [];
  /**
   * The next successful answer on a matching path is never sent: the work is done (notes stored)
   * but the caller never learns it. `onStall` runs then (a test kills the process there).
   */
  stall: { method: string; path: string; onStall: () => void } | undefined;
  /** Called after every answered request. */
  onRequest: ((r: { method: string; path: string; status: number }) => void) | undefined;
  /** Unix seconds used for created_at/updated_at: real time, moving forward on every write. */
  clock = Math.floor(Date.now() / 1000);

  private server: Server | undefined;
  private nextId = 10_000;
  private readonly validTokens = new Set<string>();
  private readonly refreshTokens = new Set<string>();
  readonly authCodes = new Set<string>();
  private readonly hits: number[] = [];
  private readonly recent429: number[] = [];
  private faults: AmoFault[] = [];
  private holds: { path: string; released: Promise<void> }[] = [];
  /** Requests held right now by `hold()` (received, not yet answered). */
  held = 0;
  private readonly opts: Required<SandboxAmoOptions>;

  constructor(options: SandboxAmoOptions = {}) {
    this.opts = { rateLimit: 7, banAfter429s: Number.POSITIVE_INFINITY, canCreateFields: true, accountId: 31_000_000, subdomain: 'fakeshop', callbackForApiNotes: false, ...options };
    this.validTokens.add(this.token);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.problem(req, res, 500, 'Internal Server Error', (err as Error).message));
    });
    this.url = await listenLoopback(this.server);
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    await closeServer(this.server);
    this.server = undefined;
  }

  // ---- test controls ------------------------------------------------------------------------

  inject(fault: AmoFault): void {
    this.faults.push({ ...fault });
  }

  /**
   * A slow CRM without timing: every request whose path contains `path` (or any, with `*`) is
   * received but not answered until `released` settles. `held` counts those waiting.
   */
  hold(path: string, released: Promise<void>): void {
    this.holds.push({ path, released });
  }

  clearFaults(): void {
    this.faults = [];
  }

  issueAuthCode(): string {
    const code = `amo-code-${randomBytes(6).toString('hex')}`;
    this.authCodes.add(code);
    return code;
  }

  /** Every OAuth access token stops working. */
  expireOAuthTokens(): void {
    for (const t of this.validTokens) if (t !== this.token) this.validTokens.delete(t);
  }

  /** Notes of a lead, oldest first (by id). */
  leadNotes(leadId: number, type?: string): FakeNote[] {
    return [...this.notes.values()].filter((n) => n.entity_id === leadId && (!type || n.note_type === type)).sort((a, b) => a.id - b.id);
  }

  /**
   * A manager writes a note on a lead, as a person in the amoCRM interface would; subscribed
   * `note_lead` webhooks are called (form-encoded, like amoCRM), `copies` times each.
   */
  managerNote(leadId: number, text: string, opts: { userId?: number; noteType?: string; copies?: number } = {}): FakeNote {
    const now = this.tick();
    const note: FakeNote = { id: this.id(), entity_id: leadId, note_type: opts.noteType ?? 'common', params: { text }, created_by: opts.userId ?? MANAGER_USER, created_at: now, updated_at: now };
    this.notes.set(note.id, note);
    const lead = this.leads.get(leadId);
    if (lead) lead.updated_at = now;
    this.noteWebhook([note], opts.copies ?? 1);
    return note;
  }

  /**
   * Calls every `note_lead` webhook about these notes, `copies` times: form-encoded like amoCRM
   * (`leads[note][i][note][id|element_id|element_type|note_type|text|created_by]`, `account[id]`,
   * `account[subdomain]`; the real sample is connectors/amocrm/fixtures/note-lead-webhook.form.txt). Note types in the v2 numbering
   * webhooks use: 4 = common, 25 = service_message (GUESS for 25).
   */
  noteWebhook(notes: readonly FakeNote[], copies = 1): void {
    if (notes.length === 0) return;
    for (const [destination, settings] of this.webhooks) {
      if (!settings.includes('note_lead')) continue;
      const form = new URLSearchParams();
      notes.forEach((note, i) => {
        const k = `leads[note][${i}][note]`;
        form.append(`${k}[id]`, String(note.id));
        form.append(`${k}[element_id]`, String(note.entity_id));
        form.append(`${k}[element_type]`, '2');
        form.append(`${k}[note_type]`, note.note_type === 'common' ? '4' : note.note_type === 'service_message' ? '25' : note.note_type);
        form.append(`${k}[text]`, String(note.params.text ?? ''));
        form.append(`${k}[created_by]`, String(note.created_by));
        form.append(`${k}[account_id]`, String(this.opts.accountId));
      });
      form.append('account[subdomain]', this.opts.subdomain);
      form.append('account[id]', String(this.opts.accountId));
      const body = form.toString();
      for (let i = 0; i < copies; i++) {
        this.webhookCalls.push(fetch(destination, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }).then((r) => r.status, () => 0));
      }
    }
  }

  /** A manager puts a tag on a lead. */
  tagLead(leadId: number, tag: string): void {
    const lead = this.leads.get(leadId)!;
    if (!lead.tags.includes(tag)) lead.tags.push(tag);
    lead.updated_at = this.tick();
  }

  /** A lead (and a new contact unless one is given), as amoCRM makes for a chat's first message. */
  addLead(init: { contactId?: number | null; contactName?: string; name?: string; statusId?: number }): FakeLead {
    let contactId = init.contactId ?? null;
    if (contactId === null) {
      contactId = this.id();
      this.contacts.set(contactId, { id: contactId, name: init.contactName ?? '', created_at: this.tick() });
    }
    return this.createLead({ name: init.name, status_id: init.statusId }, contactId);
  }

  count(pathIncludes: string, method?: string, status?: number): number {
    return this.requests.filter((r) => r.path.includes(pathIncludes) && (!method || r.method === method) && (status === undefined || r.status === status)).length;
  }

  tick(): number {
    this.clock = Math.max(this.clock + 1, Math.floor(Date.now() / 1000));
    return this.clock;
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  private id(): number {
    return this.nextId++;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const raw = await readBody(req);
    const method = req.method ?? 'GET';
    const path = url.pathname;

    for (const h of this.holds) {
      if (h.path !== '*' && !path.includes(h.path)) continue;
      this.held++;
      try {
        await h.released;
      } finally {
        this.held--;
      }
    }
    if (this.banned) return this.html403(req, res);
    const fault = this.faults.find((f) => f.times > 0 && (f.path === '*' || path.includes(f.path)) && (!f.method || f.method === method));
    if (fault) {
      fault.times--;
      if (fault.kind === 'drop') {
        this.log(method, path, 0);
        req.socket.destroy();
        return;
      }
      if (fault.kind === 'html403') return this.html403(req, res);
      const titles: Record<string, string> = { '429': 'Too Many Requests', '400': 'Bad Request', '401': 'Unauthorized' };
      return this.problem(req, res, Number(fault.kind), titles[fault.kind] ?? 'Internal Server Error', 'injected');
    }

    if (method === 'POST' && path === '/oauth2/access_token') return this.oauthToken(req, res, raw);
    // The consent sends the browser to the integration's redirect URI; `referer` names the account's host.
    if (method === 'GET' && serveConsent(url, res, { provider: 'amoCRM', clientId: this.oauth.clientId, redirectUri: () => this.oauth.redirectUri, issueCode: () => this.issueAuthCode(), extra: { referer: new URL(this.url).host, client_id: this.oauth.clientId }, seen: this.consents })) return;
    // A file a manager links in a reply (amoCRM's file storage stands in here).
    if (method === 'GET' && path.startsWith('/files/')) {
      this.log(method, path, 200);
      res.writeHead(200, { 'content-type': 'image/jpeg' }).end(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 74, 70, 73, 70]));
      return;
    }

    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !this.validTokens.has(token)) return this.problem(req, res, 401, 'Unauthorized', 'Access token is invalid or expired');

    // 7 requests per sliding second; repeated 429s get the integration banned.
    const now = Date.now();
    while (this.hits.length && this.hits[0]! <= now - 1000) this.hits.shift();
    if (this.hits.length >= this.opts.rateLimit) {
      this.recent429.push(now);
      while (this.recent429.length && this.recent429[0]! <= now - 60_000) this.recent429.shift();
      if (this.recent429.length >= this.opts.banAfter429s) this.banned = true;
      return this.problem(req, res, 429, 'Too Many Requests', 'Rate limit exceeded: 7 requests per second');
    }
    this.hits.push(now);

    let body: unknown;
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return this.problem(req, res, 400, 'Bad Request', 'Request body is not valid JSON');
      }
    }
    const limitRaw = url.searchParams.get('limit');
    if (limitRaw !== null && (!/^\d+$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > 250)) {
      return this.problem(req, res, 400, 'Bad Request', 'limit must be 1..250');
    }
    const page = Number(url.searchParams.get('page') ?? 1);
    const limit = Number(limitRaw ?? 50);
    const list = <T>(key: string, items: T[]) => {
      const slice = items.slice((page - 1) * limit, page * limit);
      if (slice.length === 0) return this.noContent(req, res);
      const next = items.length > page * limit ? { next: { href: `${this.url}${path}?page=${page + 1}` } } : {};
      return this.json(req, res, 200, { _page: page, _links: { self: { href: `${this.url}${path}` }, ...next }, _embedded: { [key]: slice } });
    };

    const leadMatch = /^\/api\/v4\/leads\/(\d+)$/.exec(path);
    const userMatch = /^\/api\/v4\/users\/(\d+)$/.exec(path);
    const leadNotesMatch = /^\/api\/v4\/leads\/(\d+)\/notes$/.exec(path);
    const route = `${method} ${leadMatch ? '/api/v4/leads/{id}' : userMatch ? '/api/v4/users/{id}' : leadNotesMatch ? '/api/v4/leads/{id}/notes' : path}`;
    for (const ext of this.extensions) {
      const answer = ext({ method, path, url, body });
      if (answer) return answer.body === undefined ? this.noContent(req, res) : this.json(req, res, answer.status, answer.body);
    }
    switch (route) {
      case 'GET /api/v4/account':
        return this.json(req, res, 200, { id: this.opts.accountId, name: 'Fake Shop', subdomain: this.opts.subdomain, current_user_id: INTEGRATION_USER, country: 'RU', currency: 'RUB', ...(url.searchParams.get('with')?.includes('amojo_id') ? { amojo_id: this.amojoId } : {}) });
      case 'GET /api/v4/users/{id}': {
        const id = Number(userMatch![1]);
        if (id !== INTEGRATION_USER && id !== MANAGER_USER) return this.problem(req, res, 404, 'Not Found', `user ${id} not found`);
        return this.json(req, res, 200, { id, name: id === 1 ? 'Admin' : 'Manager', email: `u${id}@example.com` });
      }
      case 'GET /api/v4/leads/pipelines':
        return this.json(req, res, 200, { _total_items: this.pipelines.length, _embedded: { pipelines: this.pipelines.map((p) => ({ ...p, statuses: undefined, _embedded: { statuses: p.statuses.map((s) => ({ ...s, pipeline_id: p.id })) } })) } });
      case 'GET /api/v4/leads/custom_fields':
        return list('custom_fields', this.customFields);
      case 'POST /api/v4/leads/custom_fields': {
        if (!this.opts.canCreateFields) return this.problem(req, res, 403, 'Forbidden', 'Insufficient rights to create fields');
        const items = this.arrayBody(req, res, body, 250);
        if (!items) return;
        const created = items.map((f) => {
          const o = f as { name?: string; type?: string; code?: string };
          const field = { id: this.id(), name: String(o.name ?? ''), code: o.code ?? null, type: String(o.type ?? 'text') };
          this.customFields.push(field);
          return field;
        });
        return this.json(req, res, 200, { _embedded: { custom_fields: created } });
      }
      case 'POST /api/v4/leads/complex': {
        const items = this.arrayBody(req, res, body, 50);
        if (!items) return;
        const problem = items.map((l) => this.leadProblem(l)).find(Boolean);
        if (problem) return this.problem(req, res, 400, 'Bad Request', problem.detail, problem.errors);
        const out = items.map((l) => {
          const o = l as Record<string, unknown> & { _embedded?: { contacts?: { name?: string; id?: number }[]; tags?: { name: string }[] } };
          const contactIn = o._embedded?.contacts?.[0];
          let contactId: number | null = null;
          if (contactIn?.id) contactId = contactIn.id;
          else if (contactIn) {
            contactId = this.id();
            this.contacts.set(contactId, { id: contactId, name: String(contactIn.name ?? ''), created_at: this.tick() });
          }
          const lead = this.createLead(o, contactId);
          return { id: lead.id, contact_id: contactId, company_id: null, request_id: o.request_id !== undefined ? [String(o.request_id)] : [], merged: false };
        });
        return this.json(req, res, 200, out);
      }
      case 'POST /api/v4/leads': {
        const items = this.arrayBody(req, res, body, 250);
        if (!items) return;
        const problem = items.map((l) => this.leadProblem(l)).find(Boolean);
        if (problem) return this.problem(req, res, 400, 'Bad Request', problem.detail, problem.errors);
        const out = items.map((l) => {
          const o = l as Record<string, unknown> & { _embedded?: { contacts?: { id?: number }[]; tags?: { name: string }[] } };
          const cid = o._embedded?.contacts?.[0]?.id ?? null;
          if (cid !== null && !this.contacts.has(cid)) return undefined;
          const lead = this.createLead(o, cid);
          return { id: lead.id, request_id: o.request_id !== undefined ? String(o.request_id) : undefined, _links: {} };
        });
        if (out.some((x) => !x)) return this.problem(req, res, 400, 'Bad Request', 'contact not found');
        return this.json(req, res, 200, { _links: {}, _embedded: { leads: out } });
      }
      case 'GET /api/v4/leads': {
        const ids = url.searchParams.getAll('filter[id][]').map(Number);
        const q = url.searchParams.get('query');
        const updatedFrom = url.searchParams.get('filter[updated_at][from]');
        let leads = [...this.leads.values()];
        if (ids.length) leads = leads.filter((l) => ids.includes(l.id));
        if (q) leads = leads.filter((l) => l.name.includes(q) || (l.custom_fields_values ?? []).some((f) => f.values.some((v) => String(v.value).includes(q))));
        if (updatedFrom) leads = leads.filter((l) => l.updated_at >= Number(updatedFrom));
        const order = url.searchParams.get('order[updated_at]');
        if (order) leads.sort((a, b) => (order === 'asc' ? 1 : -1) * (a.updated_at - b.updated_at || a.id - b.id));
        return list('leads', leads.map((l) => this.leadJson(l, url.searchParams.get('with') ?? '')));
      }
      case 'GET /api/v4/leads/{id}': {
        const lead = this.leads.get(Number(leadMatch![1]));
        if (!lead) return this.problem(req, res, 404, 'Not Found', 'lead not found');
        return this.json(req, res, 200, this.leadJson(lead, url.searchParams.get('with') ?? ''));
      }
      case 'PATCH /api/v4/leads/{id}': {
        const lead = this.leads.get(Number(leadMatch![1]));
        if (!lead) return this.problem(req, res, 404, 'Not Found', 'lead not found');
        const o = (body ?? {}) as { status_id?: number; pipeline_id?: number; name?: string; price?: number; responsible_user_id?: number; tags_to_add?: { name: string }[]; tags_to_delete?: { name: string }[] };
        if (o.status_id) lead.status_id = o.status_id;
        if (o.pipeline_id) lead.pipeline_id = o.pipeline_id;
        if (typeof o.name === 'string') lead.name = o.name;
        if (typeof o.price === 'number') lead.price = o.price;
        if (o.responsible_user_id) lead.responsible_user_id = o.responsible_user_id;
        for (const t of o.tags_to_add ?? []) if (!lead.tags.includes(t.name)) lead.tags.push(t.name);
        if (o.tags_to_delete) lead.tags = lead.tags.filter((t) => !o.tags_to_delete!.some((d) => d.name === t));
        lead.updated_at = this.tick();
        return this.json(req, res, 200, { id: lead.id, updated_at: lead.updated_at });
      }
      // Batch updates (openapi.yaml Leads_update / Contacts_update): an array of items with `id`;
      // a missing or unknown id fails the whole request with its validation error, nothing changed.
      case 'PATCH /api/v4/leads': {
        const items = this.arrayBody(req, res, body, 250);
        if (!items) return;
        for (const [i, l] of items.entries()) {
          const o = l as { id?: unknown; name?: unknown; price?: unknown };
          if (typeof o.id !== 'number' || !this.leads.has(o.id)) return this.problem(req, res, 400, 'Bad Request', 'lead not found', [{ request_id: String(i), errors: [{ code: 'NotFound', path: 'id' }] }]);
          if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length > 255)) return this.problem(req, res, 400, 'Bad Request', 'name must be a string of at most 255 characters', [{ request_id: String(i), errors: [{ code: 'InvalidType', path: 'name' }] }]);
          if (o.price !== undefined && (!Number.isInteger(o.price) || (o.price as number) < 0 || (o.price as number) > 2_147_483_647)) return this.problem(req, res, 400, 'Bad Request', 'price must be int32', [{ request_id: String(i), errors: [{ code: 'InvalidType', path: 'price' }] }]);
        }
        const out = items.map((l) => {
          const o = l as { id: number; name?: string; price?: number };
          const lead = this.leads.get(o.id)!;
          if (o.name !== undefined) lead.name = o.name;
          if (o.price !== undefined) lead.price = o.price;
          lead.updated_at = this.tick();
          return { id: lead.id, updated_at: lead.updated_at, _links: {} };
        });
        return this.json(req, res, 200, { _links: {}, _embedded: { leads: out } });
      }
      case 'GET /api/v4/contacts': {
        const ids = url.searchParams.getAll('filter[id][]').map(Number);
        const contacts = [...this.contacts.values()].filter((c) => ids.length === 0 || ids.includes(c.id));
        return list('contacts', contacts.map((c) => ({ id: c.id, name: c.name, created_at: c.created_at, _links: {} })));
      }
      case 'PATCH /api/v4/contacts': {
        const items = this.arrayBody(req, res, body, 250);
        if (!items) return;
        for (const [i, c] of items.entries()) {
          const o = c as { id?: unknown; name?: unknown };
          if (typeof o.id !== 'number' || !this.contacts.has(o.id)) return this.problem(req, res, 400, 'Bad Request', 'contact not found', [{ request_id: String(i), errors: [{ code: 'NotFound', path: 'id' }] }]);
          if (o.name !== undefined && typeof o.name !== 'string') return this.problem(req, res, 400, 'Bad Request', 'name must be a string', [{ request_id: String(i), errors: [{ code: 'InvalidType', path: 'name' }] }]);
        }
        const now = this.tick();
        const out = items.map((c) => {
          const o = c as { id: number; name?: string };
          const contact = this.contacts.get(o.id)!;
          if (o.name !== undefined) contact.name = o.name;
          return { id: contact.id, updated_at: now, _links: {} };
        });
        return this.json(req, res, 200, { _links: {}, _embedded: { contacts: out } });
      }
      case 'POST /api/v4/leads/notes': {
        const items = this.arrayBody(req, res, body, 250);
        if (!items) return;
        for (const [i, n] of items.entries()) {
          const o = n as { entity_id?: unknown; note_type?: unknown; params?: unknown };
          if (typeof o.entity_id !== 'number' || !this.leads.has(o.entity_id)) return this.problem(req, res, 400, 'Bad Request', 'entity not found', [{ request_id: String(i), errors: [{ code: 'NotFound', path: 'entity_id' }] }]);
          if (typeof o.note_type !== 'string' || !['common', 'service_message', 'extended_service_message', 'sms_in', 'sms_out'].includes(o.note_type)) return this.problem(req, res, 400, 'Bad Request', 'note_type is invalid', [{ request_id: String(i), errors: [{ code: 'InvalidType', path: 'note_type' }] }]);
          if (typeof o.params !== 'object' || o.params === null || typeof (o.params as { text?: unknown }).text !== 'string') return this.problem(req, res, 400, 'Bad Request', 'params.text is required', [{ request_id: String(i), errors: [{ code: 'NotSupportedChoice', path: 'params.text' }] }]);
          if (o.note_type === 'service_message' && typeof (o.params as { service?: unknown }).service !== 'string') return this.problem(req, res, 400, 'Bad Request', 'params.service is required', [{ request_id: String(i), errors: [{ code: 'NotSupportedChoice', path: 'params.service' }] }]);
        }
        const out = items.map((n) => {
          const o = n as { entity_id: number; note_type: string; params: Record<string, unknown>; created_at?: number; request_id?: string };
          const now = this.tick();
          const note: FakeNote = { id: this.id(), entity_id: o.entity_id, note_type: o.note_type, params: o.params, created_by: INTEGRATION_USER, created_at: o.created_at ?? now, updated_at: now };
          this.notes.set(note.id, note);
          return note;
        });
        this.json(req, res, 200, { _links: {}, _embedded: { notes: out.map((note, i) => ({ id: note.id, entity_id: note.entity_id, request_id: (items[i] as { request_id?: string }).request_id, _links: {} })) } });
        if (this.opts.callbackForApiNotes) this.noteWebhook(out);
        return;
      }
      case 'GET /api/v4/leads/notes':
      case 'GET /api/v4/leads/{id}/notes': {
        const entityIds = leadNotesMatch ? [Number(leadNotesMatch[1])] : url.searchParams.getAll('filter[entity_id][]').map(Number);
        const noteIds = url.searchParams.getAll('filter[id][]').map(Number);
        const types = [...url.searchParams.getAll('filter[note_type]'), ...url.searchParams.getAll('filter[note_type][]')];
        const from = url.searchParams.get('filter[updated_at][from]');
        let notes = [...this.notes.values()];
        if (entityIds.length) notes = notes.filter((n) => entityIds.includes(n.entity_id));
        if (noteIds.length) notes = notes.filter((n) => noteIds.includes(n.id));
        if (types.length) notes = notes.filter((n) => types.includes(n.note_type));
        if (from) notes = notes.filter((n) => n.updated_at >= Number(from));
        const order = url.searchParams.get('order[updated_at]');
        notes.sort((a, b) => (order === 'asc' ? a.updated_at - b.updated_at || a.id - b.id : order === 'desc' ? b.updated_at - a.updated_at || b.id - a.id : a.id - b.id));
        return list('notes', notes);
      }
      case 'GET /api/v4/webhooks':
        return list('webhooks', [...this.webhooks.entries()].map(([destination, settings], i) => ({ id: i + 1, destination, settings, disabled: false })));
      case 'POST /api/v4/webhooks': {
        const o = (body ?? {}) as { destination?: unknown; settings?: unknown };
        if (typeof o.destination !== 'string' || !Array.isArray(o.settings)) return this.problem(req, res, 400, 'Bad Request', 'destination and settings are required');
        this.webhooks.set(o.destination, o.settings as string[]);
        return this.json(req, res, 200, { id: this.webhooks.size, destination: o.destination, settings: o.settings, disabled: false });
      }
      case 'DELETE /api/v4/webhooks': {
        const o = (body ?? {}) as { destination?: string };
        this.webhooks.delete(String(o.destination));
        return this.noContent(req, res);
      }
      default:
        return this.problem(req, res, 404, 'Not Found', `no route ${method} ${path}`);
    }
  }

  private createLead(o: Record<string, unknown> & { _embedded?: { tags?: { name: string }[] } }, contactId: number | null): FakeLead {
    const now = this.tick();
    const lead: FakeLead = {
      id: this.id(),
      name: String(o.name ?? `Сделка #${this.nextId}`),
      price: typeof o.price === 'number' ? o.price : 0,
      status_id: typeof o.status_id === 'number' ? o.status_id : FIRST_OPEN_STATUS,
      pipeline_id: typeof o.pipeline_id === 'number' ? o.pipeline_id : MAIN_PIPELINE,
      responsible_user_id: typeof o.responsible_user_id === 'number' ? o.responsible_user_id : INTEGRATION_USER,
      custom_fields_values: (o.custom_fields_values as FakeLead['custom_fields_values']) ?? null,
      tags: (o._embedded?.tags ?? []).map((t) => t.name),
      contacts: contactId ? [contactId] : [],
      created_at: now,
      updated_at: now,
      is_deleted: false,
    };
    this.leads.set(lead.id, lead);
    return lead;
  }

  private leadProblem(l: unknown): { detail: string; errors: unknown[] } | undefined {
    const o = l as Record<string, unknown>;
    if (typeof o !== 'object' || o === null) return { detail: 'lead must be an object', errors: [] };
    if (o.price !== undefined && (!Number.isInteger(o.price) || (o.price as number) < 0 || (o.price as number) > 2_147_483_647)) return { detail: 'price must be int32', errors: [{ path: 'price' }] };
    if (typeof o.name === 'string' && o.name.length > 255) return { detail: 'name is too long', errors: [{ path: 'name' }] };
    if (o.pipeline_id !== undefined) {
      const p = this.pipelines.find((x) => x.id === o.pipeline_id);
      if (!p) return { detail: 'pipeline not found', errors: [{ path: 'pipeline_id' }] };
      if (o.status_id !== undefined && !p.statuses.some((s) => s.id === o.status_id)) return { detail: 'status not found in pipeline', errors: [{ path: 'status_id' }] };
    }
    for (const f of (o.custom_fields_values as { field_id?: number }[] | undefined) ?? []) {
      if (!this.customFields.some((c) => c.id === f.field_id)) return { detail: 'custom field not found', errors: [{ path: 'custom_fields_values' }] };
    }
    return undefined;
  }

  private leadJson(l: FakeLead, withParam: string): Record<string, unknown> {
    return {
      id: l.id, name: l.name, price: l.price, status_id: l.status_id, pipeline_id: l.pipeline_id, responsible_user_id: l.responsible_user_id,
      custom_fields_values: l.custom_fields_values, created_at: l.created_at, updated_at: l.updated_at, is_deleted: l.is_deleted, account_id: this.opts.accountId,
      _embedded: { tags: l.tags.map((name, i) => ({ id: i + 1, name })), ...(withParam.includes('contacts') ? { contacts: l.contacts.map((id) => ({ id, is_main: true })) } : {}) },
    };
  }

  private oauthToken(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    let o: Record<string, string>;
    try {
      o = JSON.parse(raw.toString('utf8')) as Record<string, string>;
    } catch {
      return this.problem(req, res, 400, 'Bad Request', 'invalid JSON');
    }
    if (o.client_id !== this.oauth.clientId || o.client_secret !== this.oauth.clientSecret || o.redirect_uri !== this.oauth.redirectUri) {
      return this.problem(req, res, 401, 'Unauthorized', 'Client authentication failed');
    }
    if (o.grant_type === 'authorization_code') {
      if (!this.authCodes.delete(o.code ?? '')) return this.problem(req, res, 400, 'Bad Request', 'Authorization code has been revoked');
    } else if (o.grant_type === 'refresh_token') {
      if (!this.refreshTokens.delete(o.refresh_token ?? '')) return this.problem(req, res, 400, 'Bad Request', 'Token has been revoked');
    } else return this.problem(req, res, 400, 'Bad Request', 'unsupported grant_type');
    const access = `amo-access-${randomBytes(8).toString('hex')}`;
    const refresh = `amo-refresh-${randomBytes(8).toString('hex')}`;
    this.validTokens.add(access);
    this.refreshTokens.add(refresh);
    return this.json(req, res, 200, { token_type: 'Bearer', expires_in: 86_400, access_token: access, refresh_token: refresh });
  }

  private arrayBody(req: IncomingMessage, res: ServerResponse, body: unknown, cap: number): unknown[] | undefined {
    if (!Array.isArray(body) || body.length === 0) {
      this.problem(req, res, 400, 'Bad Request', 'the request body must be a non-empty array');
      return undefined;
    }
    if (body.length > cap) {
      this.problem(req, res, 400, 'Bad Request', `at most ${cap} entities per request`);
      return undefined;
    }
    return body;
  }

  private log(method: string, path: string, status: number): void {
    this.requests.push({ method, path, status, at: Date.now() });
    this.onRequest?.({ method, path, status });
  }

  private json(req: IncomingMessage, res: ServerResponse, status: number, payload: unknown): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (this.stall && req.method === this.stall.method && path === this.stall.path) {
      const { onStall } = this.stall;
      this.stall = undefined;
      this.log(req.method ?? 'GET', path, -1);
      onStall();
      return;
    }
    this.log(req.method ?? 'GET', path, status);
    res.writeHead(status, { 'content-type': 'application/hal+json' }).end(JSON.stringify(payload));
  }

  private noContent(req: IncomingMessage, res: ServerResponse): void {
    this.log(req.method ?? 'GET', new URL(req.url ?? '/', 'http://x').pathname, 204);
    res.writeHead(204).end();
  }

  private problem(req: IncomingMessage, res: ServerResponse, status: number, title: string, detail: string, validation?: unknown[]): void {
    this.log(req.method ?? 'GET', new URL(req.url ?? '/', 'http://x').pathname, status);
    const body: Record<string, unknown> = { title, type: 'https://httpstatus.es/' + status, status, detail };
    if (validation?.length) body['validation-errors'] = validation;
    res.writeHead(status, { 'content-type': 'application/problem+json' }).end(JSON.stringify(body));
  }

  private html403(req: IncomingMessage, res: ServerResponse): void {
    this.log(req.method ?? 'GET', new URL(req.url ?? '/', 'http://x').pathname, 403);
    res.writeHead(403, { 'content-type': 'text/html; charset=utf-8' }).end('<!DOCTYPE html><html><head><title>Доступ заблокирован</title></head><body><h1>403</h1><p>Ваш IP заблокирован за превышение лимитов API.</p></body></html>');
  }
}

/**
 * The sandbox amoCRM as `avito-sync demo` drives it (ConnectorSandbox): a lead per chat, a
 * note per message (found by its `#avito:<id>` marker), a manager's reply is a note with the
 * reply prefix, its fate a short service note.
 */
export async function startAmoSandbox(): Promise<ConnectorSandbox> {
  const amo = new SandboxAmo();
  await amo.start();
  return {
    url: amo.url,
    env: { AMOCRM_BASE_URL: amo.url, AMOCRM_ACCESS_TOKEN: amo.token },
    webhookRegistered: () => amo.webhooks.size > 0,
    delivered(messageId) {
      const note = [...amo.notes.values()].find((n) => String(n.params.text).endsWith(`#avito:${messageId}`));
      if (!note) return undefined;
      const lead = amo.leads.get(note.entity_id)!;
      const contact = lead.contacts[0] !== undefined ? amo.contacts.get(lead.contacts[0]) : undefined;
      return {
        conversation: String(lead.id),
        describe: `amoCRM: lead #${lead.id} «${lead.name}», ${lead.price.toLocaleString('ru-RU')} ₽, tag ${lead.tags.join(', ')}${contact ? `, contact «${contact.name}»` : ''}`,
        where: `note on lead #${lead.id} in amoCRM`,
      };
    },
    writeInternal: (conversation, text) => void amo.managerNote(Number(conversation), text),
    writeReply(conversation, text) {
      const reply = text.replace(/^\/avito\s*/, '');
      amo.managerNote(Number(conversation), `/avito ${reply}`);
      return { story: `amoCRM: the manager answers with a note «/avito ${reply}» on lead #${conversation}`, reply };
    },
    replyOutcomeWritten: (conversation) => amo.leadNotes(Number(conversation), 'service_message').some((n) => /^(Ответ отправлен|Reply sent)/.test(String(n.params.text))),
    summary: () => `${amo.leads.size} leads, ${amo.contacts.size} contacts, ${amo.notes.size} notes in amoCRM`,
    stop: () => amo.stop(),
  };
}
