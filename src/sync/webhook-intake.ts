import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { messageFromWebhook } from '../avito/mappers.js';
import { avitoWebhookEventSchema, avitoWebhookMessageSchema } from '../avito/schemas.js';
import type { Ledger } from '../ledger/database.js';
import { GroupCommit } from '../ledger/group-commit.js';
import { ingestStatements, type IngestStatements } from '../ledger/statements.js';
import type { AvitoIntakePort, IntakeResult } from '../server/ports.js';

export { WEBHOOK_BODY_LIMIT, type IntakeResult } from '../server/ports.js';

export interface WebhookIntakeDeps {
  ledger: Ledger;
  log: Logger;
  /** Avito user id → configured account id. */
  accountsByUserId: () => ReadonlyMap<string, string>;
}

/**
 * Avito webhook v3 intake (design.md §5): validate leniently, store the raw event and its
 * message in one transaction, and only then say 200 (invariant 4). Duplicates (same event id,
 * or same message id) add nothing. A message for an unknown chat leaves a stub for a fetch.
 * A ledger failure throws: the caller answers 5xx and Avito delivers again.
 */
export class AvitoWebhookIntake implements AvitoIntakePort {
  private readonly commit: GroupCommit;
  private stmts: IngestStatements | undefined;

  constructor(private readonly deps: WebhookIntakeDeps) {
    this.commit = new GroupCommit(deps.ledger);
  }

  async accept(raw: Buffer | string): Promise<IntakeResult> {
    const text = typeof raw === 'string' ? raw : raw.toString('utf8');
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
    const stmts = (this.stmts ??= await this.deps.ledger.readSync((sqlite) => ingestStatements(sqlite)));

    if (envelope.data.payload.type !== 'message') {
      // Unknown event types are kept for diagnosis and acknowledged: Avito may add types.
      const fresh = await this.commit.run(() => stmts.recordWebhookEvent({ source: 'avito', accountId: null, eventId, body: text, status: 'ignored' }));
      this.deps.log.info({ type: envelope.data.payload.type, eventId }, 'Avito webhook of an unknown type kept and ignored');
      return { status: 200, result: fresh ? 'ignored' : 'duplicate' };
    }
    const msg = avitoWebhookMessageSchema.safeParse(envelope.data.payload.value);
    if (!msg.success) return reject(400, `bad message in webhook: ${issue(msg.error.issues[0])}`);
    const value = msg.data;
    const accountId = this.deps.accountsByUserId().get(value.user_id);
    if (!accountId) return reject(422, `webhook for Avito user ${value.user_id}, which no configured account has`);

    const row = messageFromWebhook(accountId, value.user_id, value);
    // Concurrent deliveries share one commit; a failure retries each alone (GroupCommit).
    const outcome = await this.commit.run(() => {
      if (!stmts.recordWebhookEvent({ source: 'avito', accountId, eventId, body: text, status: 'processed' })) return undefined;
      const newChat = stmts.ensureChatStub(accountId, value.chat_id, value.chat_type ?? null, value.item_id ?? null);
      const res = stmts.insertMessages([row]);
      return { newChat, newMessage: res.inserted.length > 0 || res.deleted.length > 0 };
    });
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
