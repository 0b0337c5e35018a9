import { Counter, Gauge, type Registry } from 'prom-client';
import type { ConnectorInstance } from '../connector-sdk/contract.js';
import type { ActiveConnector } from '../connector/registry.js';
import { RemoteApiError, type RemoteErrorKind } from '../errors.js';
import { connectorStore } from '../ledger/connector-state.js';
import type { LedgerDb } from '../ledger/database.js';

/**
 * The CRM side of `/metrics`: connector calls and their errors, deliveries, dead letters, replies
 * sent to Avito, and the CRM token's expiry. Every label value comes from a closed set (the
 * configured accounts, the known connectors, the contract's method names, the error kinds), so a
 * remote cannot grow the series.
 */
const METHODS = ['checkAccess', 'ensureConversations', 'deliver', 'findDelivered', 'pollReplies', 'webhook', 'reportReplies', 'pollActions', 'reportAction', 'ensureWebhook'] as const;
const KINDS: readonly RemoteErrorKind[] = ['bad_request', 'bad_credentials', 'token_expired', 'forbidden', 'employee_key', 'tariff', 'not_found', 'rate_limited', 'banned', 'server', 'network', 'bad_response'];

function resultOf(err: unknown): string {
  return err instanceof RemoteApiError && KINDS.includes(err.kind) ? err.kind : 'other';
}

export class CrmMetrics {
  readonly calls: Counter;
  readonly errors: Counter;
  readonly delivered: Counter;
  readonly dead: Counter;
  readonly replies: Counter;
  readonly tokenExpiry: Gauge;

  constructor(registry: Registry, connectors: readonly ActiveConnector[], db: LedgerDb) {
    const registers = [registry];
    this.calls = new Counter({ name: 'avito_sync_crm_calls_total', help: 'Connector calls into the CRM, by account, connector and operation', labelNames: ['account', 'connector', 'operation'], registers });
    this.errors = new Counter({ name: 'avito_sync_crm_errors_total', help: 'Connector calls that failed as a whole, by account, connector, operation and error kind', labelNames: ['account', 'connector', 'operation', 'kind'], registers });
    this.delivered = new Counter({ name: 'avito_sync_crm_delivered_total', help: 'Messages delivered into the CRM (or found there after a crash)', labelNames: ['account', 'connector'], registers });
    this.dead = new Counter({ name: 'avito_sync_crm_dead_letters_total', help: 'Deliveries moved to dead letters', labelNames: ['account', 'connector'], registers });
    this.replies = new Counter({ name: 'avito_sync_replies_total', help: 'CRM replies sent to Avito, by result (sent, retry, dead)', labelNames: ['account', 'connector', 'result'], registers });
    this.tokenExpiry = new Gauge({
      name: 'avito_sync_crm_token_expiry_timestamp_seconds', help: "When the CRM's OAuth access token expires (unix seconds); absent for long-lived tokens", labelNames: ['account', 'connector'], registers,
      async collect() {
        this.reset();
        for (const c of connectors) {
          const at = Number((await connectorStore(db, c.accountId, c.definition.id).get('oauth_expires_at').catch(() => undefined)) ?? 0);
          if (at > 0) this.set({ account: c.accountId, connector: c.definition.id }, Math.floor(at / 1000));
        }
      },
    });
    for (const c of connectors) {
      this.delivered.inc({ account: c.accountId, connector: c.definition.id }, 0);
      this.dead.inc({ account: c.accountId, connector: c.definition.id }, 0);
    }
  }

  /** Wraps the connector's contract methods so every call and failure is counted. */
  instrument(c: ActiveConnector): void {
    const inst = c.instance as unknown as Record<string, unknown>;
    const labels = { account: c.accountId, connector: c.definition.id };
    for (const operation of METHODS) {
      const fn = inst[operation];
      if (typeof fn !== 'function') continue;
      const calls = this.calls;
      const errors = this.errors;
      inst[operation] = async function (this: ConnectorInstance, ...args: unknown[]) {
        calls.inc({ ...labels, operation });
        try {
          return await (fn as (...a: unknown[]) => Promise<unknown>).apply(c.instance, args);
        } catch (err) {
          errors.inc({ ...labels, operation, kind: resultOf(err) });
          throw err;
        }
      };
    }
  }

  dispatched(account: string, connector: string, report: { delivered: number; reconciled: number; dead: number }): void {
    this.delivered.inc({ account, connector }, report.delivered + report.reconciled);
    this.dead.inc({ account, connector }, report.dead);
  }

  replied(account: string, connector: string, report: { sent: number; failed: number; dead: number }): void {
    if (report.sent) this.replies.inc({ account, connector, result: 'sent' }, report.sent);
    if (report.failed) this.replies.inc({ account, connector, result: 'retry' }, report.failed);
    if (report.dead) this.replies.inc({ account, connector, result: 'dead' }, report.dead);
  }
}
