import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listenLoopback, readBody } from 'avito-crm-sync/connector';

export interface FakeNote { id: string; conversationId: string; text: string; marker: string | null; author: 'manager' | 'integration'; createdAt: number }

/**
 * A fake of the CRM's REST API on 127.0.0.1 (real HTTP), for the connector's tests. Replace its
 * routes with your CRM's as you write the real client; keep the fault injection.
 */
export class FakeCrm {
  url = '';
  readonly token = `token-${randomBytes(6).toString('hex')}`;
  readonly conversations = new Map<string, { id: string; chatId: string; title: string }>();
  readonly notes: FakeNote[] = [];
  private faults: { status: number; times: number }[] = [];
  private server: Server | undefined;
  private seq = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res).catch((err: unknown) => res.writeHead(500).end(String(err))));
    this.url = await listenLoopback(this.server);
  }

  async stop(): Promise<void> {
    if (this.server) await closeServer(this.server);
  }

  /** The next `times` requests answer `status`. */
  inject(status: number, times: number): void {
    this.faults.push({ status, times });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** A manager writes a note in a conversation, as a person in the CRM would. */
  managerNote(conversationId: string, text: string): FakeNote {
    const note: FakeNote = { id: String(++this.seq), conversationId, text, marker: null, author: 'manager', createdAt: Math.floor(Date.now() / 1000) };
    this.notes.push(note);
    return note;
  }

  notesIn(conversationId: string): FakeNote[] {
    return this.notes.filter((n) => n.conversationId === conversationId);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const send = (status: number, payload: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    const fault = this.faults.find((f) => f.times > 0);
    if (fault) {
      fault.times--;
      return send(fault.status, { error: `injected ${fault.status}` });
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { error: 'invalid token' });
    const url = new URL(req.url ?? '/', this.url);
    const body = raw.length ? (JSON.parse(raw.toString()) as unknown) : undefined;
    switch (`${req.method} ${url.pathname}`) {
      case 'GET /me':
        return send(200, { name: 'fake' });
      case 'POST /conversations': {
        const b = body as { chatId: string; title: string };
        const found = [...this.conversations.values()].find((c) => c.chatId === b.chatId);
        if (found) return send(200, found);
        const c = { id: `c${this.conversations.size + 1}`, chatId: b.chatId, title: b.title };
        this.conversations.set(c.id, c);
        return send(201, c);
      }
      case 'POST /notes': {
        const list = body as { conversationId: string; marker: string | null; text: string; createdAt?: number }[];
        if (!Array.isArray(list) || list.some((n) => !this.conversations.has(n.conversationId))) return send(400, { error: 'unknown conversation' });
        const created = list.map((n) => {
          const note: FakeNote = { id: String(++this.seq), conversationId: n.conversationId, text: n.text, marker: n.marker, author: 'integration', createdAt: n.createdAt ?? Math.floor(Date.now() / 1000) };
          this.notes.push(note);
          return { id: note.id };
        });
        return send(201, created);
      }
      case 'GET /notes/by-marker': {
        const markers = new Set((url.searchParams.get('markers') ?? '').split(',').filter(Boolean));
        return send(200, this.notes.filter((n) => n.marker !== null && markers.has(n.marker)));
      }
      case 'GET /notes/latest':
        return send(200, { latest: String(this.seq) });
      case 'GET /notes': {
        const after = Number(url.searchParams.get('after') ?? 0);
        return send(200, { notes: this.notes.filter((n) => Number(n.id) > after), latest: String(this.seq) });
      }
      default:
        return send(404, { error: 'no such route' });
    }
  }
}
