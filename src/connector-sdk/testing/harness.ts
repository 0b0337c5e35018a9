import type { z } from 'zod';
import { connectorPauses, connectorStore } from '../../ledger/connector-state.js';
import { openLedger, type Ledger } from '../../ledger/database.js';
import { listConversationRefs } from '../../ledger/conversations.js';
import { deliveredRemoteIds } from '../../ledger/deliveries.js';
import { memoryLogger } from '../../log/logger.js';
import { classifyFailure, Dispatcher } from '../../sync/dispatcher.js';
import type { ConnectorContext, ConnectorDefinition, ConnectorInstance, ConversationRef } from '../contract.js';
import type { RetryPolicy } from '../../http/retry-policy.js';
import { LocalRequestGate } from '../../http/request-gate.js';

/**
 * The one place the test kit touches the core: an in-memory ledger behind the connector's
 * store and pause controls, and the core's real dispatcher for the crash-and-reconcile case.
 * Everything else in the kit speaks only the connector contract.
 */

/** Retry backoff short enough for tests (the policy's shape is unchanged). */
export const FAST_RETRY: Partial<RetryPolicy> = { minTimeoutMs: 1, maxTimeoutMs: 5, maxRetryAfterMs: 50, retries: 2 };

/** How the core handles a failure a connector returned or threw. */
export type FailureHandling = 'transient' | 'permanent' | 'halt';

export interface DispatchResult {
  /** Deliveries the dispatcher found already in the CRM (`findDelivered`) instead of sending. */
  reconciled: number;
  delivered: number;
  /** Why the run stopped early, if it did. */
  halted: string | undefined;
  /** The conversations the ledger holds after the run. */
  conversations: ConversationRef[];
  /** Message id → the remote id the ledger recorded. */
  remoteIds: Map<string, string>;
}

export interface TestBench {
  /** A context for `definition` with `config` (validated by the definition's schema). */
  context<S extends z.ZodType>(definition: ConnectorDefinition<S>, config: unknown, options?: { accountId?: string; retry?: Partial<RetryPolicy> }): ConnectorContext<z.output<S>>;
  /**
   * Puts `chats` × `perChat` buyer messages into the ledger (once per bench; ids `c<chat>m<n>`,
   * chats `u2i-contract-<chat>`) and runs the core's dispatcher once with `instance`.
   */
  dispatch(definition: ConnectorDefinition, instance: ConnectorInstance, seed?: { chats: number; perChat: number }): Promise<DispatchResult>;
  /** How the core treats this failure: retried later, given up for the item, or the run stops. */
  classify(err: unknown): FailureHandling;
  /** Log lines the connectors wrote (JSON). */
  readonly logLines: string[];
  close(): Promise<void>;
}

/** Opens an in-memory ledger for connector tests. Close it when done. */
export async function createTestBench(): Promise<TestBench> {
  const ledger = await openLedger(':memory:');
  const { logger, lines } = memoryLogger('warn');
  let seeded = false;
  return {
    logLines: lines,
    context(definition, config, options = {}) {
      const accountId = options.accountId ?? 'default';
      return {
        accountId,
        config: definition.configSchema.parse(config),
        log: logger.child({ connector: definition.id, account: accountId }),
        store: connectorStore(ledger.db, accountId, definition.id),
        ...connectorPauses(ledger.db, accountId, definition.id),
        registerSecret: () => undefined,
        requestGate: (o) => new LocalRequestGate(o.intervalMs, o.burst),
        retry: options.retry ?? FAST_RETRY,
      };
    },
    async dispatch(definition, instance, seed = { chats: 2, perChat: 3 }) {
      if (!seeded) await seedLedger(ledger, seed.chats, seed.perChat);
      seeded = true;
      const report = await new Dispatcher({
        ledger, log: logger, accountId: 'default', connectorId: definition.id, connector: instance, capabilities: definition.capabilities, backoff: { baseMs: 0, capMs: 0 },
      }).run();
      return {
        reconciled: report.reconciled,
        delivered: report.delivered,
        halted: report.halted,
        conversations: await listConversationRefs(ledger.db, 'default', definition.id),
        remoteIds: await deliveredRemoteIds(ledger.db, 'default', definition.id),
      };
    },
    classify: (err) => classifyFailure(err),
    close: () => ledger.close(),
  };
}

/**
 * A connector context on its own in-memory ledger, for a connector's own unit tests:
 * `const { ctx, close } = await createTestContext(definition, { apiKey: 'k' })`.
 */
export async function createTestContext<S extends z.ZodType>(definition: ConnectorDefinition<S>, config: unknown, options: { accountId?: string; retry?: Partial<RetryPolicy> } = {}): Promise<{ ctx: ConnectorContext<z.output<S>>; bench: TestBench; close: () => Promise<void> }> {
  const bench = await createTestBench();
  return { ctx: bench.context(definition, config, options), bench, close: () => bench.close() };
}

/** Chats and messages in the ledger, stored the way polling stores them (the ledger's ingest path). */
async function seedLedger(ledger: Ledger, chats: number, perChat: number): Promise<void> {
  const now = Date.now();
  for (let c = 0; c < chats; c++) {
    const chatId = `u2i-contract-${c}`;
    await ledger.ingest.writeChat('default', {
      chatId,
      updated: 1_700_000_000,
      row: {
        account_id: 'default', chat_id: chatId, chat_type: 'u2i', item_id: String(1000 + c), item_title: `Item ${c}`, item_url: `https://www.avito.ru/item_${c}`, item_price: `${c} 000 ₽`,
        buyer_id: String(5000 + c), buyer_name: `Buyer ${c}`, buyer_url: null, created: 1_700_000_000, updated: 1_700_000_000, synced_updated: 1_700_000_000, needs_fetch: 0, raw: null, fetched_at: now,
      },
      messages: Array.from({ length: perChat }, (_, m) => ({
        account_id: 'default', message_id: `c${c}m${m}`, chat_id: chatId, author_id: String(5000 + c), direction: 'in', type: 'text', created: 1_700_000_000 + m,
        text: `hello ${m}`, content: JSON.stringify({ text: `hello ${m}` }), quote: null, flow_id: null, bot_name: null, is_own: 0, voice_id: null, source: 'poll', inserted_at: now,
      })),
    });
  }
}
