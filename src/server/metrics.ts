import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The daemon's Prometheus metrics (`GET /metrics`). One registry per daemon, so tests and
 * several daemons in one process do not share counters.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly webhooksReceived = new Counter({ name: 'avito_sync_webhooks_received_total', help: 'Webhook deliveries accepted, by source and result (stored, duplicate, probe, ignored)', labelNames: ['source', 'result'], registers: [this.registry] });
  readonly webhooksRejected = new Counter({ name: 'avito_sync_webhooks_rejected_total', help: 'Webhook deliveries refused, by source and reason', labelNames: ['source', 'reason'], registers: [this.registry] });
  readonly webhookAckSeconds = new Histogram({ name: 'avito_sync_webhook_ack_seconds', help: 'Time from receiving a webhook to answering it', labelNames: ['source'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 2], registers: [this.registry] });
  readonly messagesStored = new Counter({ name: 'avito_sync_messages_stored_total', help: 'Avito messages stored in the ledger, by how they arrived', labelNames: ['account', 'source'], registers: [this.registry] });
  readonly apiCalls = new Counter({ name: 'avito_sync_api_calls_total', help: 'Remote API calls, by API, operation and HTTP status (0 = no answer)', labelNames: ['api', 'operation', 'status'], registers: [this.registry] });
  readonly apiErrors = new Counter({ name: 'avito_sync_api_errors_total', help: 'Remote API calls that failed (status >= 400 or no answer)', labelNames: ['api', 'status'], registers: [this.registry] });
  readonly pollRuns = new Counter({ name: 'avito_sync_polls_total', help: 'Reconciliation polls, by account and result', labelNames: ['account', 'result'], registers: [this.registry] });
  readonly queueDepth: Gauge;
  readonly tokenExpiry: Gauge;

  constructor(sources: { queueDepths: () => { account: string; queue: string; depth: number }[]; tokenExpiries: () => { account: string; provider: string; expiresAt: number | undefined }[] }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'avito_sync_' });
    this.queueDepth = new Gauge({
      name: 'avito_sync_queue_depth', help: 'Work waiting, by account and queue', labelNames: ['account', 'queue'], registers: [this.registry],
      collect() {
        this.reset();
        for (const q of sources.queueDepths()) this.set({ account: q.account, queue: q.queue }, q.depth);
      },
    });
    this.tokenExpiry = new Gauge({
      name: 'avito_sync_token_expiry_timestamp_seconds', help: 'When the current access token expires (unix seconds)', labelNames: ['account', 'provider'], registers: [this.registry],
      collect() {
        this.reset();
        for (const t of sources.tokenExpiries()) if (t.expiresAt) this.set({ account: t.account, provider: t.provider }, Math.floor(t.expiresAt / 1000));
      },
    });
  }

  recordApiCall(api: string, operation: string, status: number): void {
    this.apiCalls.inc({ api, operation, status: String(status) });
    if (status === 0 || status >= 400) this.apiErrors.inc({ api, status: String(status) });
  }
}
