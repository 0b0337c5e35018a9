import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChatInfo, ConnectorDefinition, ConnectorInstance, ConversationRef, DeliveryItem, OutgoingMessage } from '../../src/connector-sdk/contract.js';
import { connectorPauses, connectorStore } from '../../src/ledger/connector-state.js';
import { openLedger, type Ledger } from '../../src/ledger/database.js';
import { memoryLogger } from '../../src/log/logger.js';
import { classifyFailure, Dispatcher } from '../../src/sync/dispatcher.js';

/**
 * The contract test kit. A connector's own test file calls `connectorContract(harness)` with a
 * fake of its CRM; when every test here passes, the connector does what the core relies on:
 * access checks, idempotent conversations, ordered delivery, no re-send after a crash, and
 * errors classified so the dispatcher retries, dead-letters or stops as it should.
 */
export interface ContractHarness<Fake> {
  definition: ConnectorDefinition;
  startFake(): Promise<Fake>;
  stopFake(fake: Fake): Promise<void>;
  /** The connector's config section for this fake: good or bad credentials. */
  config(fake: Fake, credentials: 'good' | 'bad'): Record<string, unknown>;
  /** How many conversations (e.g. leads) the fake CRM holds. */
  conversationCount(fake: Fake): number;
  /** Message ids delivered into a conversation, in the CRM's order. */
  deliveredIds(fake: Fake, conversation: ConversationRef): string[];
  /** Makes the fake fail the next `times` requests in this way. */
  inject(fake: Fake, fault: 'rate_limited' | 'server_error' | 'bad_request' | 'unauthorized', times: number): void;
  /** Drops faults not yet used. */
  clearFaults(fake: Fake): void;
}

const FAST = { minTimeoutMs: 1, maxTimeoutMs: 5, maxRetryAfterMs: 50, retries: 2 };

export function chat(n: number, buyer = n): ChatInfo {
  return {
    accountId: 'default',
    chatId: `u2i-contract-${n}`,
    chatType: 'u2i',
    item: { id: String(1000 + n), title: `Item ${n}`, url: `https://www.avito.ru/item_${n}`, price: `${n} 000 ₽` },
    buyer: { id: String(5000 + buyer), name: `Buyer ${buyer}`, url: null },
    chatUrl: `https://www.avito.ru/profile/messenger/channel/u2i-contract-${n}`,
  };
}

export function message(id: string, chatId: string, created: number, text = `text of ${id}`): OutgoingMessage {
  return { messageId: id, chatId, created, type: 'text', author: { kind: 'buyer', name: 'Buyer' }, text, content: { text }, voiceUrl: null, first: false };
}

export function connectorContract<Fake>(h: ContractHarness<Fake>): void {
  describe(`connector contract: ${h.definition.id}`, () => {
    let fake: Fake;
    let ledger: Ledger;
    const make = (credentials: 'good' | 'bad' = 'good'): ConnectorInstance =>
      h.definition.create({
        accountId: 'default',
        config: h.definition.configSchema.parse(h.config(fake, credentials)),
        log: memoryLogger('warn').logger,
        store: connectorStore(ledger.db, 'default', h.definition.id),
        ...connectorPauses(ledger.db, 'default', h.definition.id),
        registerSecret: () => undefined,
        retry: FAST,
      });

    beforeEach(async () => {
      fake = await h.startFake();
      ledger = await openLedger(':memory:');
    });
    afterEach(async () => {
      await ledger.close();
      await h.stopFake(fake);
    });

    it('checkAccess passes with good credentials', async () => {
      const checks = await make('good').checkAccess();
      expect(checks.filter((c) => c.verdict === 'fail'), JSON.stringify(checks)).toEqual([]);
    });

    it('checkAccess fails with bad credentials and says what to do', async () => {
      const checks = await make('bad').checkAccess();
      const failed = checks.find((c) => c.verdict === 'fail');
      expect(failed).toBeDefined();
      expect(failed!.action ?? failed!.detail).toMatch(/token|credential|key|auth/i);
    });

    it('conversation creation is idempotent, also when the ledger lost the result', async () => {
      const c = make();
      const [first] = await c.ensureConversations([{ chat: chat(1), previous: undefined, buyerWrote: true }]);
      expect(first?.ok).toBe(true);
      const ref = (first as { ok: true; value: ConversationRef }).value;
      const [again] = await c.ensureConversations([{ chat: chat(1), previous: ref, buyerWrote: true }]);
      expect((again as { ok: true; value: ConversationRef }).value.id).toBe(ref.id);
      // A crash between the CRM call and the ledger write: the core asks again without `previous`.
      const [lost] = await c.ensureConversations([{ chat: chat(1), previous: undefined, buyerWrote: true }]);
      expect((lost as { ok: true; value: ConversationRef }).value.id).toBe(ref.id);
      expect(h.conversationCount(fake)).toBe(1);
    });

    it('one conversation per chat, many chats per call', async () => {
      const c = make();
      const res = await c.ensureConversations([1, 2, 3].map((n) => ({ chat: chat(n, 7), previous: undefined, buyerWrote: true })));
      expect(res.every((r) => r.ok)).toBe(true);
      expect(new Set(res.map((r) => (r as { ok: true; value: ConversationRef }).value.id)).size).toBe(3);
      expect(h.conversationCount(fake)).toBe(3);
    });

    it('delivers in the given order', async () => {
      const c = make();
      const convs = (await c.ensureConversations([chat(1), chat(2)].map((x) => ({ chat: x, previous: undefined, buyerWrote: true })))).map((r) => (r as { ok: true; value: ConversationRef }).value);
      const items: DeliveryItem[] = [];
      for (let i = 0; i < 6; i++) {
        const which = i % 2;
        items.push({ conversation: convs[which]!, chat: chat(which + 1), message: message(`m${i}`, chat(which + 1).chatId, 1_700_000_000 + i) });
      }
      const results = await c.deliver(items);
      expect(results.every((r) => r.ok)).toBe(true);
      expect(h.deliveredIds(fake, convs[0]!)).toEqual(['m0', 'm2', 'm4']);
      expect(h.deliveredIds(fake, convs[1]!)).toEqual(['m1', 'm3', 'm5']);
    });

    it('findDelivered tells what reached the CRM, so a crash does not send again', async () => {
      const c = make();
      if (!h.definition.capabilities.findDelivered) return;
      const [r] = await c.ensureConversations([{ chat: chat(1), previous: undefined, buyerWrote: true }]);
      const conv = (r as { ok: true; value: ConversationRef }).value;
      const sent = ['a', 'b', 'c'].map((id, i) => ({ conversation: conv, chat: chat(1), message: message(id, chat(1).chatId, 1_700_000_000 + i) }));
      const results = await c.deliver(sent);
      const found = await c.findDelivered([...sent, { conversation: conv, chat: chat(1), message: message('d', chat(1).chatId, 1_700_000_010) }]);
      expect([...found.keys()].sort()).toEqual(['a', 'b', 'c']);
      expect(found.get('a')).toBe((results[0] as { ok: true; value: { remoteId: string } }).value.remoteId);
    });

    it('a crash between the CRM call and the ledger write: the dispatcher reconciles and sends nothing twice', async () => {
      const real = make();
      let crash = true;
      const crashing: ConnectorInstance = {
        ...real,
        checkAccess: () => real.checkAccess(),
        ensureConversations: (r) => real.ensureConversations(r),
        findDelivered: (i) => real.findDelivered(i),
        close: () => real.close(),
        deliver: async (items) => {
          const res = await real.deliver(items);
          if (crash) throw new Error('process died before the ledger write');
          return res;
        },
      };
      await seedLedger(ledger, 2, 3);
      const opts = { ledger, log: memoryLogger('warn').logger, accountId: 'default', connectorId: h.definition.id, capabilities: h.definition.capabilities, backoff: { baseMs: 0, capMs: 0 } };
      await new Dispatcher({ ...opts, connector: crashing }).run();
      crash = false;
      const report = await new Dispatcher({ ...opts, connector: real }).run();
      if (h.definition.capabilities.findDelivered) expect(report.reconciled).toBe(6);
      const convs = await ledger.db.selectFrom('conversations').select('ref').execute();
      const ids = convs.flatMap((row) => h.deliveredIds(fake, JSON.parse(row.ref) as ConversationRef));
      expect(ids.sort()).toEqual(['c0m0', 'c0m1', 'c0m2', 'c1m0', 'c1m1', 'c1m2']);
    });

    it('classifies errors: rate limits and 5xx are retried, a bad request is final, refused credentials stop the run', async () => {
      const c = make();
      const [r] = await c.ensureConversations([{ chat: chat(1), previous: undefined, buyerWrote: true }]);
      const conv = (r as { ok: true; value: ConversationRef }).value;
      const one = () => c.deliver([{ conversation: conv, chat: chat(1), message: message(`x${Math.random()}`, chat(1).chatId, 1_700_000_000) }]).then((res) => res[0]!.ok ? undefined : (res[0] as { error: unknown }).error, (e: unknown) => e);
      const cases = [['rate_limited', 'transient'], ['server_error', 'transient'], ['bad_request', 'permanent'], ['unauthorized', 'halt']] as const;
      for (const [fault, expected] of cases) {
        h.inject(fake, fault, 100);
        expect(classifyFailure(await one()), fault).toBe(expected);
        h.clearFaults(fake);
      }
    });
  });
}

/** Chats and messages in the ledger, as polling would have stored them. */
async function seedLedger(ledger: Ledger, chats: number, perChat: number): Promise<void> {
  const now = Date.now();
  for (let c = 0; c < chats; c++) {
    const info = chat(c);
    await ledger.db.insertInto('chats').values({
      account_id: 'default', chat_id: info.chatId, chat_type: 'u2i', item_id: info.item.id, item_title: info.item.title, item_url: info.item.url, item_price: info.item.price,
      buyer_id: info.buyer.id, buyer_name: info.buyer.name, buyer_url: null, created: 1_700_000_000, updated: 1_700_000_000, synced_updated: 1_700_000_000, needs_fetch: 0, raw: null, fetched_at: now,
    }).execute();
    for (let m = 0; m < perChat; m++) {
      await ledger.db.insertInto('messages').values({
        account_id: 'default', message_id: `c${c}m${m}`, chat_id: info.chatId, author_id: info.buyer.id, direction: 'in', type: 'text', created: 1_700_000_000 + m,
        text: `hello ${m}`, content: JSON.stringify({ text: `hello ${m}` }), quote: null, flow_id: null, bot_name: null, is_own: 0, voice_id: null, source: 'poll', inserted_at: now,
      }).execute();
    }
  }
}
