import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseQuery, type Parsed } from './query.js';

/**
 * The sandbox Bitrix24: a portal's REST API behind an incoming webhook, on 127.0.0.1 (real HTTP),
 * for the connector's tests, the benchmark and `avito-sync demo`. It follows the reference
 * (b24restdocs): `/rest/<user>/<code>/<method>.json`, a wrong code → 401 NO_AUTH_FOUND; a leaky
 * bucket of 50 drained 2 per second per portal → 503 QUERY_LIMIT_EXCEEDED; an overload mode in
 * which everything answers 503 OVERLOAD_LIMIT; `batch` with at most 50 commands
 * (ERROR_BATCH_LENGTH_EXCEEDED), no nested batch, `$result[key]` substitution, one bucket unit;
 * list pages of 50 with `next`/`total`; `crm.timeline.comment.*` taking only lowercase `fields`
 * and requiring ENTITY_ID and ENTITY_TYPE in list filters; and an outbound webhook that POSTs
 * ONCRMTIMELINECOMMENTADD events (form-encoded, only the comment id) with the application token.
 */

type Row = Record<string, unknown> & { ID: number };
type Params = Record<string, Parsed | unknown>;

export interface B24Fault {
  /** A method name (`crm.timeline.comment.add`, `batch`), or `*`. */
  method: string;
  kind: '503' | '500' | '400' | '401' | 'drop';
  times: number;
}

export interface SandboxB24Options {
  /** Leaky bucket size. Default 50. */
  bucketSize?: number;
  /** Drain per second. Default 2. */
  drainPerSecond?: number;
  /** Scopes of the webhook. Default crm, user. */
  scopes?: string[];
  /** `crm.settings.mode.get`: 1 classic, 2 simple. Default 1. */
  crmMode?: 1 | 2;
}

class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, readonly description: string) {
    super(code);
  }
}

export const WEBHOOK_USER = 1;
export const MANAGER_USER = 2;
export const FIRED_USER = 3;

export class SandboxB24 {
  url = '';
  readonly code = `sandbox${randomBytes(8).toString('hex')}`;
  /** The outbound webhook's application token (shown when it is created). */
  readonly applicationToken = `apptoken${randomBytes(12).toString('hex')}`;
  readonly memberId = randomBytes(16).toString('hex');
  readonly leads = new Map<number, Row>();
  readonly deals = new Map<number, Row>();
  readonly contacts = new Map<number, Row>();
  readonly comments = new Map<number, Row>();
  readonly users: Row[] = [
    { ID: WEBHOOK_USER, ACTIVE: true, NAME: 'Анна', LAST_NAME: 'Админова' },
    { ID: MANAGER_USER, ACTIVE: true, NAME: 'Михаил', LAST_NAME: 'Менеджеров' },
    { ID: FIRED_USER, ACTIVE: false, NAME: 'Уволен', LAST_NAME: 'Уволенов' },
  ];
  /** Every request: method (`batch` for a batch), HTTP status, commands inside. */
  readonly requests: { method: string; status: number; commands: number; error?: string }[] = [];
  /** Every command run (inside batches too). */
  readonly commands: { method: string; ok: boolean }[] = [];
  /** Everything answers 503 OVERLOAD_LIMIT (support blocked the webhook). */
  overloaded = false;
  /**
   * The next successful answer to a request holding this method is never sent: the work is done
   * but the caller never learns it. `onStall` runs then (a test kills the process there).
   */
  stall: { method: string; onStall: () => void } | undefined;
  /** Called after every answered request; `commandMethod` is a batch's first command's method. */
  onRequest: ((r: { method: string; status: number; commands: number; commandMethod?: string }) => void) | undefined;
  /** Where ONCRMTIMELINECOMMENTADD events go (the outbound webhook's handler), when set. */
  eventHandler: string | undefined;
  /** Statuses the handler answered to events. */
  readonly eventAnswers: Promise<number>[] = [];

  private server: Server | undefined;
  private nextId = 100;
  private level = 0;
  private levelAt = Date.now();
  private faults: B24Fault[] = [];
  private readonly opts: Required<SandboxB24Options>;

  constructor(options: SandboxB24Options = {}) {
    this.opts = { bucketSize: 50, drainPerSecond: 2, scopes: ['crm', 'user'], crmMode: 1, ...options };
  }

  /** `https://<portal>/rest/<user>/<code>/`: what BITRIX24_WEBHOOK_URL holds. */
  get webhookUrl(): string {
    return `${this.url}/rest/${WEBHOOK_USER}/${this.code}/`;
  }

  get domain(): string {
    return new URL(this.url).host;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.send(res, 500, { error: 'INTERNAL_SERVER_ERROR', error_description: (err as Error).message }));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  // ---- test controls ---------------------------------------------------------------------------

  inject(fault: B24Fault): void {
    this.faults.push({ ...fault });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Requests answered with this status (and error code). */
  count(status?: number, error?: string): number {
    return this.requests.filter((r) => (status === undefined || r.status === status) && (error === undefined || r.error === error)).length;
  }

  /** Comments on a lead (deal), oldest first. */
  entityComments(entityType: 'lead' | 'deal', id: number): Row[] {
    return [...this.comments.values()].filter((c) => c.ENTITY_TYPE === entityType && c.ENTITY_ID === id).sort((a, b) => a.ID - b.ID);
  }

  /** A manager writes a timeline comment (as the UI would); the outbound webhook fires. */
  managerComment(entityType: 'lead' | 'deal', id: number, text: string, author = MANAGER_USER): number {
    const c = this.addComment({ ENTITY_TYPE: entityType, ENTITY_ID: id, COMMENT: text }, author);
    return c.ID;
  }

  /** Sends ONCRMTIMELINECOMMENTADD for a comment to the handler, as Bitrix24 would (no retries). */
  fireEvent(commentId: number, overrides: { token?: string; domain?: string; event?: string } = {}): Promise<number> {
    if (!this.eventHandler) return Promise.resolve(0);
    const form = new URLSearchParams({
      event: overrides.event ?? 'ONCRMTIMELINECOMMENTADD',
      event_handler_id: '7',
      'data[FIELDS][ID]': String(commentId),
      ts: String(Math.floor(Date.now() / 1000)),
      'auth[domain]': overrides.domain ?? this.domain,
      'auth[client_endpoint]': `${this.url}/rest/`,
      'auth[server_endpoint]': 'https://oauth.bitrix.info/rest/',
      'auth[member_id]': this.memberId,
      'auth[application_token]': overrides.token ?? this.applicationToken,
    });
    const p = fetch(this.eventHandler, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() }).then(
      async (r) => {
        await r.arrayBuffer();
        return r.status;
      },
      () => 0,
    );
    this.eventAnswers.push(p);
    return p;
  }

  // ---- HTTP --------------------------------------------------------------------------------------

  private send(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    // Files on the portal (a manager's image link in a reply): a tiny JPEG.
    if (req.method === 'GET' && url.pathname.startsWith('/files/')) {
      res.writeHead(200, { 'content-type': 'image/jpeg' }).end(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 74, 70, 73, 70]));
      return;
    }
    const m = /^\/rest\/(\d+)\/([^/]+)\/([a-z0-9_.]+?)(\.json)?$/i.exec(url.pathname);
    const raw = await readBody(req);
    const method = m?.[3]?.toLowerCase() ?? '';
    let commandMethod: string | undefined;
    const record = (status: number, commands: number, error?: string) => {
      this.requests.push({ method, status, commands, ...(error ? { error } : {}) });
      this.onRequest?.({ method, status, commands, ...(commandMethod ? { commandMethod } : {}) });
    };
    const fail = (status: number, error: string, description: string) => {
      record(status, 0, error);
      this.send(res, status, { error, error_description: description });
    };
    if (!m) return fail(404, 'ERROR_METHOD_NOT_FOUND', 'Method not found!');
    if (this.overloaded) return fail(503, 'OVERLOAD_LIMIT', 'REST API is blocked due to overload.');
    // The bucket: drains continuously, fills one per request (a batch too).
    const now = Date.now();
    this.level = Math.max(0, this.level - ((now - this.levelAt) / 1000) * this.opts.drainPerSecond);
    this.levelAt = now;
    if (this.level + 1 > this.opts.bucketSize) return fail(503, 'QUERY_LIMIT_EXCEEDED', 'Too many requests');
    this.level += 1;
    if (m[2] !== this.code || Number(m[1]) !== WEBHOOK_USER) return fail(401, 'NO_AUTH_FOUND', 'Wrong authorization data');
    const fault = this.faults.find((f) => f.times > 0 && (f.method === '*' || f.method === method || (method === 'batch' && raw.includes(f.method))));
    if (fault) {
      fault.times--;
      if (fault.kind === 'drop') {
        record(0, 0, 'drop');
        req.socket.destroy();
        return;
      }
      const [status, code, text] = ({ '503': [503, 'QUERY_LIMIT_EXCEEDED', 'Too many requests'], '500': [500, 'INTERNAL_SERVER_ERROR', 'Internal server error'], '400': [400, 'INVALID_ARG_VALUE', 'Invalid value'], '401': [401, 'NO_AUTH_FOUND', 'Wrong authorization data'] } as const)[fault.kind];
      return fail(status, code, text);
    }
    let params: Params;
    const type = req.headers['content-type'] ?? '';
    try {
      params = type.includes('json') ? (raw.trim() ? (JSON.parse(raw) as Params) : {}) : parseQuery(raw || url.search.slice(1));
    } catch {
      return fail(400, 'INVALID_REQUEST', 'Request body is not valid JSON');
    }
    try {
      let body: Record<string, unknown>;
      let commands = 1;
      if (method === 'batch') {
        commandMethod = String(Object.values((params.cmd ?? {}) as Record<string, unknown>)[0] ?? '').split('?')[0];
        const r = this.batch(params);
        body = { result: r.result };
        commands = r.commands;
      } else body = this.run(method, params);
      if (this.stall && (method === this.stall.method || (method === 'batch' && raw.includes(this.stall.method)))) {
        const s = this.stall;
        this.stall = undefined;
        record(0, commands, 'stalled');
        s.onStall();
        return; // the work is done; the answer never leaves
      }
      record(200, commands);
      this.send(res, 200, { ...body, time: { start: now / 1000, finish: Date.now() / 1000, duration: (Date.now() - now) / 1000, processing: 0, date_start: new Date(now).toISOString(), date_finish: new Date().toISOString() } });
    } catch (err) {
      if (err instanceof ApiError) return fail(err.status, err.code, err.description);
      throw err;
    }
  }

  private batch(params: Params): { result: Record<string, unknown>; commands: number } {
    const cmd = (params.cmd ?? {}) as Record<string, unknown>;
    const keys = Object.keys(cmd);
    if (keys.length > 50) throw new ApiError(400, 'ERROR_BATCH_LENGTH_EXCEEDED', 'Max batch length exceeded');
    const halt = String(params.halt ?? '0') === '1' || params.halt === true;
    const out = { result: {} as Record<string, unknown>, result_error: {} as Record<string, unknown>, result_total: {} as Record<string, number>, result_next: {} as Record<string, number>, result_time: {} };
    for (const key of keys) {
      const line = String(cmd[key]);
      const q = line.indexOf('?');
      const method = (q < 0 ? line : line.slice(0, q)).toLowerCase();
      if (method === 'batch') throw new ApiError(405, 'ERROR_BATCH_METHOD_NOT_ALLOWED', 'Method is not allowed for batch usage');
      // `$result[key]` and `$result[key][FIELD]` take earlier commands' results.
      const query = q < 0 ? '' : line.slice(q + 1).replace(/\$result\[([A-Za-z0-9_]+)\]((?:\[[A-Za-z0-9_]+\])*)/g, (_, k: string, rest: string) => {
        let v: unknown = out.result[k];
        for (const f of rest.match(/[A-Za-z0-9_]+/g) ?? []) v = (v as Record<string, unknown> | undefined)?.[f];
        return encodeURIComponent(v === undefined || v === null ? '' : String(v));
      });
      try {
        const r = this.run(method, parseQuery(query));
        out.result[key] = r.result;
        if (typeof r.total === 'number') out.result_total[key] = r.total;
        if (typeof r.next === 'number') out.result_next[key] = r.next;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        out.result_error[key] = { error: err.code, error_description: err.description };
        if (halt) break;
      }
    }
    return { result: out, commands: keys.length };
  }

  // ---- methods -----------------------------------------------------------------------------------

  private run(method: string, p: Params): { result: unknown; total?: number; next?: number } {
    const ok = (result: unknown, extra: { total?: number; next?: number } = {}) => {
      this.commands.push({ method, ok: true });
      return { result, ...extra };
    };
    try {
      switch (method) {
        case 'scope':
          return ok(this.opts.scopes);
        case 'user.current':
          return ok(this.users.find((u) => u.ID === WEBHOOK_USER));
        case 'user.get': {
          const id = Number((p.ID ?? (p.FILTER as Params | undefined)?.ID) as string);
          return ok(this.users.filter((u) => !id || u.ID === id));
        }
        case 'crm.settings.mode.get':
          return ok(this.opts.crmMode);
        case 'crm.lead.add':
        case 'crm.deal.add':
        case 'crm.contact.add':
          return ok(this.add(method.split('.')[1] as 'lead' | 'deal' | 'contact', p));
        case 'crm.lead.get':
        case 'crm.deal.get':
        case 'crm.contact.get': {
          const row = this.table(method.split('.')[1]!).get(Number(p.id ?? p.ID));
          if (!row) throw new ApiError(400, 'NOT_FOUND', 'Not found');
          return ok(stringify(row));
        }
        // `{id, fields}` → `result: true`; an unknown id is `NOT_FOUND` (the command fails alone in a batch).
        case 'crm.lead.update':
        case 'crm.deal.update':
        case 'crm.contact.update': {
          const row = this.table(method.split('.')[1]!).get(Number(p.id ?? p.ID));
          if (!row) throw new ApiError(400, 'NOT_FOUND', 'Not found');
          const f = p.fields as Params | undefined;
          if (!f || typeof f !== 'object') throw new ApiError(400, 'INVALID_ARG_VALUE', 'fields are required');
          if (method !== 'crm.contact.update' && f.TITLE !== undefined && (typeof f.TITLE !== 'string' || !f.TITLE)) throw new ApiError(400, 'INVALID_ARG_VALUE', 'TITLE is required');
          Object.assign(row, f);
          return ok(true);
        }
        case 'crm.lead.list':
        case 'crm.deal.list':
        case 'crm.contact.list':
          return ok(...this.list([...this.table(method.split('.')[1]!).values()], p));
        case 'crm.timeline.comment.add': {
          if (!p.fields || typeof p.fields !== 'object') throw new ApiError(400, 'INVALID_ARG_VALUE', 'fields are required (lowercase "fields" since crm 23.100.0)');
          return ok(this.addComment(p.fields as Params, WEBHOOK_USER).ID);
        }
        case 'crm.timeline.comment.get': {
          const c = this.comments.get(Number(p.id ?? p.ID));
          if (!c) throw new ApiError(400, 'NOT_FOUND', 'Not found');
          return ok(stringify(c));
        }
        case 'crm.timeline.comment.list': {
          const f = (p.filter ?? {}) as Params;
          if (!f.ENTITY_ID || !f.ENTITY_TYPE) throw new ApiError(400, 'INVALID_ARG_VALUE', 'ENTITY_ID and ENTITY_TYPE are required in the filter');
          return ok(...this.list([...this.comments.values()], p));
        }
        default:
          throw new ApiError(404, 'ERROR_METHOD_NOT_FOUND', 'Method not found!');
      }
    } catch (err) {
      this.commands.push({ method, ok: false });
      throw err;
    }
  }

  private table(name: string): Map<number, Row> {
    if (name === 'lead') return this.leads;
    if (name === 'deal') return this.deals;
    return this.contacts;
  }

  private add(type: 'lead' | 'deal' | 'contact', p: Params): number {
    const f = p.fields as Params | undefined;
    if (!f || typeof f !== 'object') throw new ApiError(400, 'INVALID_ARG_VALUE', 'fields are required');
    if (type !== 'contact' && (typeof f.TITLE !== 'string' || !f.TITLE)) throw new ApiError(400, 'INVALID_ARG_VALUE', 'TITLE is required');
    if (f.OPPORTUNITY !== undefined && !Number.isFinite(Number(f.OPPORTUNITY))) throw new ApiError(400, 'INVALID_ARG_VALUE', 'OPPORTUNITY must be a number');
    const contact = f.CONTACT_ID === undefined || f.CONTACT_ID === '' ? null : Number(f.CONTACT_ID);
    if (type !== 'contact' && contact !== null && !this.contacts.has(contact)) throw new ApiError(400, 'INVALID_ARG_VALUE', `contact ${String(f.CONTACT_ID)} not found`);
    const assigned = f.ASSIGNED_BY_ID === undefined ? WEBHOOK_USER : Number(f.ASSIGNED_BY_ID);
    if (!this.users.some((u) => u.ID === assigned)) throw new ApiError(400, 'INVALID_ARG_VALUE', `user ${assigned} not found`);
    const id = this.nextId++;
    const row: Row = { ...flat(f), ID: id, ASSIGNED_BY_ID: assigned, DATE_CREATE: new Date().toISOString() };
    if (type === 'lead') Object.assign(row, { STATUS_ID: 'NEW', STATUS_SEMANTIC_ID: 'P', CONTACT_ID: contact });
    if (type === 'deal') Object.assign(row, { STAGE_ID: 'NEW', STAGE_SEMANTIC_ID: 'P', CLOSED: 'N', CATEGORY_ID: Number(f.CATEGORY_ID ?? 0), CONTACT_ID: contact });
    this.table(type).set(id, row);
    return id;
  }

  private addComment(f: Params, author: number): Row {
    const type = String(f.ENTITY_TYPE ?? '').toLowerCase();
    const entityId = Number(f.ENTITY_ID);
    if (!['lead', 'deal', 'contact'].includes(type)) throw new ApiError(400, 'INVALID_ARG_VALUE', 'ENTITY_TYPE is required');
    if (!this.table(type).has(entityId)) throw new ApiError(400, 'NOT_FOUND', `${type} ${String(f.ENTITY_ID)} not found`);
    if (typeof f.COMMENT !== 'string' || !f.COMMENT) throw new ApiError(400, 'INVALID_ARG_VALUE', 'COMMENT is required');
    const c: Row = { ID: this.nextId++, ENTITY_ID: entityId, ENTITY_TYPE: type, AUTHOR_ID: author, CREATED: new Date().toISOString().replace('Z', '+00:00'), COMMENT: f.COMMENT };
    this.comments.set(c.ID, c);
    // Bitrix24 fires the event for API comments too (so handlers must ignore their own).
    void this.fireEvent(c.ID);
    return c;
  }

  /** `filter` (equality, `>ID`, `<ID`), `order[ID]`, `select`, pages of 50 from `start`. */
  private list(rows: Row[], p: Params): [unknown[], { total: number; next?: number }] {
    const filter = (p.filter ?? {}) as Record<string, unknown>;
    let out = rows.filter((r) => Object.entries(filter).every(([k, v]) => {
      const m = /^([<>]=?|!)?(.+)$/.exec(k)!;
      const field = m[2]!;
      const have = r[field];
      switch (m[1]) {
        case '>': return Number(have) > Number(v);
        case '>=': return Number(have) >= Number(v);
        case '<': return Number(have) < Number(v);
        case '<=': return Number(have) <= Number(v);
        case '!': return String(have ?? '') !== String(v);
        default: return String(have ?? '').toLowerCase() === String(v).toLowerCase();
      }
    }));
    const order = (p.order ?? {}) as Record<string, string>;
    const desc = String(order.ID ?? 'ASC').toUpperCase() === 'DESC';
    out = out.sort((a, b) => (desc ? b.ID - a.ID : a.ID - b.ID));
    const start = Number(p.start ?? 0) || 0;
    const page = out.slice(start, start + 50);
    const select = Array.isArray(p.select) ? (p.select as string[]) : typeof p.select === 'object' && p.select ? Object.values(p.select as Record<string, string>) : [];
    const shaped = page.map((r) => stringify(select.length && !select.includes('*') ? Object.fromEntries(Object.entries(r).filter(([k]) => select.includes(k) || k === 'ID')) as Row : r));
    return [shaped, { total: out.length, ...(start + 50 < out.length ? { next: start + 50 } : {}) }];
  }
}

/** Bitrix24 answers ids and numbers as strings. */
function stringify(r: Row): Record<string, unknown> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? String(v) : v]));
}

/** Parsed query values are strings or nested objects; multifields (`WEB[0][VALUE]`) become arrays. */
function flat(f: Params): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.values(v) : v;
  return out;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}
