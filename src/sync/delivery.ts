import { describeError } from '../errors.js';
import type { ActiveConnector } from '../connector/registry.js';
import type { Runtime } from '../runtime.js';
import { Dispatcher, type DispatchReport } from './dispatcher.js';
import { ReadReceiptService } from './read-receipts.js';
import { ReplyService } from './replies.js';
import { voiceLink } from './voice-links.js';

export interface DeliveryUnit {
  accountId: string;
  connectorId: string;
  dispatcher: Dispatcher;
  /** CRM → Avito, when the connector has the `replies` capability and the account an Avito client. */
  replies?: ReplyService;
  /** Avito's read marks on our replies → the CRM, when the connector has `readReceipts`. */
  reads?: ReadReceiptService;
}

export interface DeliveryOptions {
  /** Set when the daemon serves voice files (PUBLIC_URL): notes get links. */
  /** `ttlSeconds`: how long each link works (default: 30 days, RETENTION_DAYS' default). */
  voice?: { publicUrl: string; secret: string; ttlSeconds?: number };
  backoff?: { baseMs: number; capMs: number };
}

/**
 * One dispatcher per (account, enabled connector). With `AVITO_MARK_READ=after-delivery` a chat
 * is marked read on Avito once its buyer messages reached the CRM.
 */
export class Delivery {
  /** One per running (account, connector); a config reload adds and removes units. */
  readonly units: DeliveryUnit[];
  private readonly reads = new Set<Promise<void>>();

  constructor(private readonly rt: Runtime, private readonly opts: DeliveryOptions = {}) {
    this.units = rt.connectors.map((c) => this.unitOf(c));
  }

  /** Units for connectors added to the runtime (an account added by a config reload). */
  add(connectors: readonly ActiveConnector[]): DeliveryUnit[] {
    const added = connectors.map((c) => this.unitOf(c));
    this.units.push(...added);
    return added;
  }

  /** Takes an account's units out (its jobs are stopped by the caller). */
  remove(accountId: string): DeliveryUnit[] {
    const gone = this.units.filter((u) => u.accountId === accountId);
    for (const u of gone) this.units.splice(this.units.indexOf(u), 1);
    return gone;
  }

  private unitOf(c: ActiveConnector): DeliveryUnit {
    const { rt, opts } = this;
    const account = rt.accounts.find((a) => a.config.id === c.accountId);
    const markRead = account?.config.avito.markRead === 'after-delivery';
    const capabilities = { ...c.definition.capabilities, ...c.instance.limits };
    return {
      accountId: c.accountId,
      connectorId: c.definition.id,
      ...(capabilities.replies && account
        ? { replies: new ReplyService({ ledger: rt.ledger, log: rt.log, accountId: c.accountId, connectorId: c.definition.id, connector: c.instance, capabilities, client: account.client, ...(opts.backoff ? { backoff: opts.backoff } : {}) }) }
        : {}),
      ...(capabilities.readReceipts && capabilities.replies && account
        ? { reads: new ReadReceiptService({ ledger: rt.ledger, log: rt.log, accountId: c.accountId, connectorId: c.definition.id, connector: c.instance, capabilities, client: account.client }) }
        : {}),
      dispatcher: new Dispatcher({
        ledger: rt.ledger,
        log: rt.log,
        accountId: c.accountId,
        connectorId: c.definition.id,
        connector: c.instance,
        capabilities,
        ...(account ? { noticeChats: account.config.avito.noticeChats } : {}),
        ...(opts.voice ? { voiceUrl: (acc: string, voiceId: string) => voiceLink(opts.voice!.publicUrl, opts.voice!.secret, acc, voiceId, opts.voice!.ttlSeconds ?? 30 * 86_400) } : {}),
        ...(opts.backoff ? { backoff: opts.backoff } : {}),
        ...(markRead && account ? { onDelivered: (chatIds: string[]) => this.markRead(account.client, chatIds) } : {}),
      }),
    };
  }

  /** Runs every dispatcher once (until its due work is done). */
  async runAll(): Promise<{ accountId: string; connectorId: string; report: DispatchReport }[]> {
    const out = [];
    for (const u of this.units) out.push({ accountId: u.accountId, connectorId: u.connectorId, report: await u.dispatcher.run() });
    await this.drain();
    return out;
  }

  /**
   * Looks in the CRM for new replies and operator actions; a failure is logged, not thrown.
   * Returns what failed (for `/healthz`), or undefined.
   */
  async lookForReplies(u: DeliveryUnit): Promise<string | undefined> {
    if (!u.replies) return undefined;
    const log = this.rt.log.child({ account: u.accountId, connector: u.connectorId });
    const problems: string[] = [];
    await u.replies.poll().catch((err: unknown) => {
      problems.push(`replies: ${describeError(err)}`);
      log.warn({ err: describeError(err) }, 'could not look for CRM replies');
    });
    await u.replies.actions().catch((err: unknown) => {
      problems.push(`actions: ${describeError(err)}`);
      log.warn({ err: describeError(err) }, 'could not look for CRM actions');
    });
    return problems.length ? problems.join('; ') : undefined;
  }

  /** Waits for mark-read calls still in flight. */
  async drain(): Promise<void> {
    while (this.reads.size) await Promise.all([...this.reads]);
  }

  private markRead(client: Runtime['accounts'][number]['client'], chatIds: string[]): void {
    for (const chatId of chatIds) {
      const p = client
        .markRead(chatId)
        .catch((err: unknown) => this.rt.log.warn({ account: client.accountId, chat: chatId, err: describeError(err) }, 'could not mark the chat read'))
        .finally(() => this.reads.delete(p));
      this.reads.add(p);
    }
  }
}
