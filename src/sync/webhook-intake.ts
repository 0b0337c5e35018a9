import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { messageFromWebhook } from '../avito/mappers.js';
import { avitoWebhookEventSchema, avitoWebhookMessageSchema } from '../avito/schemas.js';
import type { Ledger } from '../ledger/database.js';
import { describeJsonProblem, jsonProblem } from '../http/json-guard.js';
import type { AvitoIntakePort, IntakeResult } from '../server/ports.js';

export { WEBHOOK_BODY_LIMIT, type IntakeResult } from '../server/ports.js';

export interface WebhookIntakeDeps {
  ledger: Ledger;
  log: Logger;
  /** Avito user id → configured account id. */
  accountsByUserId: () => ReadonlyMap<string, string>;
  /** Told when the ledger refused a write (full disk, I/O error): `/healthz` reports it. */
  onLedgerError?: (err: unknown) => void;
}

/**
 * Avito webhook v3 intake (design.md §5): validate leniently, store the raw event and its
 * message in one transaction, and only then say 200 (invariant 4). Duplicates (same event id,
 * or same message id) add nothing. A message for an unknown chat leaves a stub for a fetch.
 * A ledger failure throws: the caller answers 5xx and Avito delivers again.
 */
export class AvitoWebhookIntake implements AvitoIntakePort {
  constructor(private readonly deps: WebhookIntakeDeps) {}

  async accept(raw: Buffer | string): Promise<IntakeResult> {
    try {
      return await this.acceptOnce(raw);
    } catch (err) {
      this.deps.onLedgerError?.(err);
      throw err;
    }
  }

  private async acceptOnce(raw: Buffer | string): Promise<IntakeResult> {
    const text = typeof raw === 'string' ? raw : raw.toString('utf8');
    // Before parsing: ids beyond 2^53 would be rounded (two messages collapsing into one), and
    // deep nesting would overflow later code; both are the sender's fault: 400 (issue 9).
    const problem = jsonProblem(text);
    if (problem) return reject(400, describeJsonProblem(problem));
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return reject(400, 'body is not JSON');
    }
    // Avito checks a new webhook URL with `-d '{}'` (Messenger guide): a probe, nothing to store.
    if (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0) {
      return { status: 200, result: 'probe' };
    }
    const envelope = avitoWebhookEventSchema.safeParse(body);
    if (!envelope.success) return reject(400, `not an Avito webhook: ${issue(envelope.error.issues[0])}`);
    const eventId = envelope.data.id ?? `sha256:${createHash('sha256').update(text).digest('hex')}`;

    if (envelope.data.payload.type !== 'message') {
      // Unknown event types are kept for diagnosis and acknowledged: Avito may add types.
      const fresh = await this.deps.ledger.ingest.webhookEvent({ source: 'avito', accountId: null, eventId, body: text, status: 'ignored' });
      this.deps.log.info({ type: envelope.data.payload.type, eventId }, 'Avito webhook of an unknown type kept and ignored');
      return { status: 200, result: fresh ? 'ignored' : 'duplicate' };
    }
    const msg = avitoWebhookMessageSchema.safeParse(envelope.data.payload.value);
    if (!msg.success) return reject(400, `bad message in webhook: ${issue(msg.error.issues[0])}`);
    const value = msg.data;
    const accountId = this.deps.accountsByUserId().get(value.user_id);
    if (!accountId) return reject(422, `webhook for Avito user ${value.user_id}, which no configured account has`);

    const row = messageFromWebhook(accountId, value.user_id, value);
    // Event, chat stub, message and its deliveries in one transaction (on SQLite concurrent
    // webhooks share a commit; a failure retries each alone).
    const outcome = await this.deps.ledger.ingest.webhookMessage({ accountId, eventId, body: text, chatId: value.chat_id, chatType: value.chat_type ?? null, itemId: value.item_id ?? null, row });
    if (!outcome) return { status: 200, result: 'duplicate', accountId };
    return { status: 200, result: outcome.newMessage ? 'stored' : 'duplicate', accountId, ...outcome };
  }
}

function reject(status: 400 | 422, reason: string): IntakeResult {
  return { status, result: 'rejected', reason };
}

function issue(i: { path: PropertyKey[]; message: string } | undefined): string {
  if (!i) return 'unknown shape';
  return `${i.path.map(String).join('.') || 'body'}: ${i.message}`;
}
