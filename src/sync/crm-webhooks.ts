import type { Logger } from 'pino';
import type { ConnectorInstance, IncomingReply, WebhookRequest, WebhookVerdict } from '../connector-sdk/contract.js';
import { describeError } from '../errors.js';
import type { CrmRoutes, CrmWebhookCall, CrmWebhookResult } from '../server/ports.js';
import type { ReplyService } from './replies.js';

/** One (account, connector) that takes CRM webhooks. */
export interface CrmWebhookTarget {
  accountId: string;
  connectorId: string;
  /** The alias routes the connector's definition declares (`webhookAliases`). */
  aliases: readonly string[];
  instance: ConnectorInstance;
  replies: ReplyService;
  /** Called when new replies were stored: the send job runs. */
  onStored: () => void;
}

/**
 * The CRM webhook routes (design.md §8.1), one family `POST /webhooks/<segment>/<…>`:
 *
 * - `/webhooks/<connector id>/<WEBHOOK_SECRET>`: the server checked the secret before the body was
 *   read; then the connector verifies whatever its CRM signs.
 * - `/webhooks/<alias>/<token>`: a URL the CRM fixes itself (a chat API that registers
 *   `…/<scope id>` with a channel), so no WEBHOOK_SECRET; it reaches only an instance that says
 *   it serves the alias (`servesAlias`) and so verifies the CRM's signature on every call. An
 *   instance of the same connector that does not (another mode, unsigned webhooks) never gets
 *   one: no route takes an unauthenticated write.
 *
 * Then: find the instance the webhook is for (several accounts: each one's `matchesWebhook`,
 * exactly one must say yes, else 422), let the connector verify it, store the replies it carries
 * before answering (202 new, 200 seen before), and read what it only hinted at afterwards
 * (`later`, coalesced by the connector). Nothing is stored for a refused or unroutable webhook.
 */
export class CrmWebhooks implements CrmRoutes {
  /** `later` promises already being awaited: a connector that shares one per burst is read once. */
  private readonly pending = new WeakSet<Promise<IncomingReply[]>>();
  private readonly inFlight = new Set<Promise<void>>();

  /** `targets` is asked on every call: accounts added or removed by a reload are seen at once. */
  constructor(private readonly targets: () => readonly CrmWebhookTarget[], private readonly log: Logger) {}

  isConnector(segment: string): boolean {
    return this.targets().some((t) => t.connectorId === segment);
  }

  isAlias(segment: string): boolean {
    return this.aliasTargets(segment).length > 0;
  }

  /** Instances reachable by an alias route: declared by the definition and served by the instance. */
  private aliasTargets(alias: string): CrmWebhookTarget[] {
    return this.targets().filter((t) => {
      if (!t.aliases.includes(alias) || !t.instance.webhook) return false;
      try {
        return t.instance.servesAlias?.(alias) === true;
      } catch {
        return false;
      }
    });
  }

  async handle(call: CrmWebhookCall): Promise<CrmWebhookResult> {
    const aliased = 'alias' in call.route;
    const candidates = 'alias' in call.route ? this.aliasTargets(call.route.alias) : this.targets().filter((t) => t.connectorId === (call.route as { connectorId: string }).connectorId && t.instance.webhook);
    if (candidates.length === 0) return { status: 404, result: 'unknown_connector', reason: 'not found' };
    const req: WebhookRequest = { method: call.method, body: call.body, headers: call.headers, contentType: call.contentType, ...('alias' in call.route ? { pathToken: call.route.token } : {}) };
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
        // An alias route is answered 200 when accepted (its CRM fixed the contract, not us).
        result = { status: aliased ? 200 : 202, result: 'stored' };
        t.onStored();
      } else if (skipped > 0 && !aliased) {
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
