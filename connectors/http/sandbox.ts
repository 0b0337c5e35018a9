import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { secretKey, signedHeaders, verify } from './signature.js';

/** One event the receiver took (2xx), in arrival order. */
export interface ReceivedEvent {
  id: string;
  type: string;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
  raw: string;
}

/** What the receiver does to the next matching requests. */
export interface ReceiverFault {
  kind: '500' | '503' | '429' | '400' | '401' | '410' | 'hangup' | 'hang';
  times: number;
  /** For 429: the Retry-After header (seconds). */
  retryAfter?: number;
}

/**
 * A receiver of the HTTP connector's events on 127.0.0.1 (tests, bench): checks every request's
 * Standard Webhooks signature (401 when wrong), takes each `webhook-id` once (a repeat is
 * answered 200 and not stored again, as a receiver should), and can fail on purpose: 5xx, 429
 * with Retry-After, 410, other 4xx, a dropped connection, or no answer at all.
 */
export class SandboxReceiver {
  url = '';
  readonly secret: string;
  /** Events taken, first delivery of each webhook-id, in order. */
  readonly events: ReceivedEvent[] = [];
  /** Every request: its webhook-id and what it was answered (0 = dropped or never answered). */
  readonly attempts: { id: string; status: number }[] = [];
  /**
   * The next event is stored but never answered: `onStall` runs then (a test kills the sender).
   */
  stall: { onStall: () => void } | undefined;
  private faults: ReceiverFault[] = [];
  private readonly seen = new Set<string>();
  private server: Server | undefined;
  private readonly hanging = new Set<ServerResponse>();

  constructor(secret = `whsec_${randomBytes(32).toString('base64')}`) {
    this.secret = secret;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`;
    return this.url;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }

  inject(fault: ReceiverFault): void {
    this.faults.push({ ...fault });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Message ids of `message.created` events taken for a chat, in order. */
  messageIds(chatId?: string): string[] {
    return this.events
      .filter((e) => e.type === 'message.created' && (!chatId || (e.body.data.chat as { id: string }).id === chatId))
      .map((e) => (e.body.data.message as { id: string }).id);
  }

  /** A signed `reply.created` request to the daemon, as the receiver's owner would send it. */
  signedReply(data: Record<string, unknown>, opts: { id?: string; timestamp?: number; secret?: string } = {}): { headers: Record<string, string>; body: string } {
    const body = JSON.stringify({ type: 'reply.created', data });
    const id = opts.id ?? `rep_${randomBytes(8).toString('hex')}`;
    const ts = opts.timestamp ?? Math.floor(Date.now() / 1000);
    return { headers: { 'content-type': 'application/json', ...signedHeaders(secretKey(opts.secret ?? this.secret), id, ts, body) }, body };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]));
    const id = String(headers['webhook-id'] ?? '');
    const answer = (status: number, extra: Record<string, string> = {}) => {
      this.attempts.push({ id, status });
      res.writeHead(status, { 'content-type': 'application/json', ...extra }).end(status < 300 ? '{"ok":true}' : '{"error":"no"}');
    };
    if (!verify(secretKey(this.secret), headers, raw).ok) return answer(401);
    const fault = this.faults.find((f) => f.times > 0);
    if (fault) {
      fault.times--;
      if (fault.kind === 'hangup') {
        this.attempts.push({ id, status: 0 });
        req.socket.destroy();
        return;
      }
      if (fault.kind === 'hang') {
        this.attempts.push({ id, status: 0 });
        this.hanging.add(res);
        return;
      }
      return answer(Number(fault.kind), fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {});
    }
    if (!this.seen.has(id)) {
      this.seen.add(id);
      const body = JSON.parse(raw.toString('utf8')) as ReceivedEvent['body'];
      this.events.push({ id, type: body.type, body, raw: raw.toString('utf8') });
    }
    if (this.stall) {
      const { onStall } = this.stall;
      this.stall = undefined;
      this.attempts.push({ id, status: 0 });
      this.hanging.add(res);
      onStall();
      return;
    }
    answer(200);
  }
}
