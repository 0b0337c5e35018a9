import type { Logger } from 'pino';
import type { ConnectorInstance, IncomingReply, WebhookRequest, WebhookVerdict } from '../connector-sdk/contract.js';
import { describeError } from '../errors.js';
import type { CrmWebhookCall, CrmWebhookResult } from '../server/ports.js';
import type { ReplyService } from './replies.js';

/** One (account, connector) that takes CRM webhooks. */
export interface CrmWebhookTarget {
  accountId: string;
  connectorId: string;
  instance: ConnectorInstance;
  replies: ReplyService;
  /** Called when new replies were stored: the send job runs. */
  onStored: () => void;
}

/**
 * `POST /webhooks/<connector id>/<secret>` after the secret was checked (design.md §8.1): find
 * the instance the webhook is for (several accounts: each instance's `matchesWebhook`), let the
 * connector verify it, store the replies it carries before answering (202 new, 200 seen before),
 * then read what it only hinted at (`later`, coalesced by the connector) and store that too.
 * Nothing is stored for a refused or unroutable webhook.
 */
export class CrmWebhooks {
  /** `later` promises already being awaited: a connector that shares one per burst is read once. */
  private readonly pending = new WeakSet<Promise<IncomingReply[]>>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly targets: readonly CrmWebhookTarget[], private readonly log: Logger) {}

  /** Connector ids with at least one target (the server's closed set of route labels). */
  get connectorIds(): string[] {
    return [...new Set(this.targets.map((t) => t.connectorId))];
  }

  async handle(call: CrmWebhookCall): Promise<CrmWebhookResult> {
    const candidates = this.targets.filter((t) => t.connectorId === call.connectorId && t.instance.webhook);
    if (candidates.length === 0) return { status: 404, result: 'unknown_connector', reason: 'not found' };
    const req: WebhookRequest = { body: call.body, headers: call.headers, contentType: call.contentType };
    let target: CrmWebhookTarget | undefined;
    if (candidates.length === 1) target = candidates[0];
    else {
      const matching = candidates.filter((t) => {
        try {
          return t.instance.matchesWebhook?.(req) === true;
        } catch {
          return false;
        }
      });
      if (matching.length !== 1) {
        return { status: 422, result: 'unknown_account', reason: matching.length === 0 ? 'no configured account matches this webhook' : 'more than one configured account matches this webhook' };
      }
      target = matching[0];
    }
    const t = target!;
    let verdict: WebhookVerdict;
    try {
      verdict = await t.instance.webhook!(req);
    } catch (err) {
      // A connector must refuse bad input, not throw; a throw is treated as garbage, never a 5xx.
      this.log.warn({ account: t.accountId, connector: t.connectorId, err: describeError(err) }, 'connector failed on a webhook; refused');
      return { status: 400, result: 'refused', reason: 'the webhook could not be read' };
    }
    if (!verdict.accepted) return { status: verdict.status, result: 'refused', reason: verdict.reason };
    let result: CrmWebhookResult = { status: 200, result: 'hint' };
    if (verdict.replies?.length) {
      // Stored before the answer; a ledger failure throws and the server answers 5xx (sent again).
      const { added, skipped } = await t.replies.store(verdict.replies, undefined);
      if (added > 0) {
        result = { status: 202, result: 'stored' };
        t.onStored();
      } else if (skipped > 0) {
        return { status: 422, result: 'refused', reason: 'the reply names a chat this daemon does not know, or has nothing to send' };
      } else result = { status: 200, result: 'duplicate' };
    }
    if (verdict.later) this.follow(t, verdict.later);
    return result;
  }

  /** Waits for follow-up reads still in flight (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }

  private follow(t: CrmWebhookTarget, later: () => Promise<IncomingReply[]>): void {
    const run = (async () => {
      await new Promise<void>((r) => setImmediate(r)); // after the answer went out
      const p = later();
      if (this.pending.has(p)) return; // the same burst is already being read and stored
      this.pending.add(p);
      const replies = await p;
      if (replies.length === 0) return;
      const { added } = await t.replies.store(replies, undefined);
      if (added) t.onStored();
    })()
      .catch((err: unknown) => this.log.warn({ account: t.accountId, connector: t.connectorId, err: describeError(err) }, 'CRM webhook could not be confirmed; the poll will find the reply'))
      .finally(() => this.inFlight.delete(run));
    this.inFlight.add(run);
  }
}
