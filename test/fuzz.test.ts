import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noteIdsFromWebhook, replyFromNote } from '../connectors/amocrm/replies.js';
import type { AmoNote } from '../connectors/amocrm/schemas.js';
import type { IncomingReply } from '../src/connector-sdk/contract.js';
import type { Ledger } from '../src/ledger/database.js';
import { openTestLedger } from './dialects.js';
import { memoryLogger } from '../src/log/logger.js';
import { AvitoWebhookIntake } from '../src/sync/webhook-intake.js';

/**
 * Fuzz tests (issue 9): the webhook intake and each reply parser against generated garbage, with
 * a fixed seed and a bounded count so CI is repeatable and quick. Asserted: never a 5xx (a throw)
 * for client garbage, never a stored row from a refused request, never an exception escaping.
 */
const SEED = 20_261_202;
const RUNS = 300;

let ledger: Ledger;
beforeAll(async () => {
  ledger = await openTestLedger();
});
afterAll(async () => {
  await ledger.close();
});

async function rows(): Promise<number> {
  const r = await sql<{ n: number }>`SELECT (SELECT count(*) FROM webhook_events) + (SELECT count(*) FROM messages) + (SELECT count(*) FROM chats) AS n`.execute(ledger.db);
  return Number(r.rows[0]!.n);
}

const validValue = {
  id: 'm1', chat_id: 'u2i-abc', user_id: 94235311, author_id: 555, created: 1_760_000_000, type: 'text', chat_type: 'u2i', content: { text: 'hi' }, item_id: 123,
};
/** Bodies close to a real one, with one field replaced by anything. */
const nearValid = fc.record({
  key: fc.constantFrom(...Object.keys(validValue)),
  value: fc.oneof(fc.anything(), fc.double(), fc.bigInt().map((b) => b * 10n ** 17n), fc.string()),
  eventId: fc.oneof(fc.string(), fc.integer(), fc.constant(undefined)),
}).map(({ key, value, eventId }) => {
  const v: Record<string, unknown> = { ...validValue, [key]: value };
  return JSON.stringify({ id: eventId, version: 'v3.0.0', payload: { type: 'message', value: v } }, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}` : x))
    .replace(/"(\d{17,})"/g, '$1'); // big integers as raw numbers
});
const garbage = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.nat(6000).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
  fc.nat(6000).map((n) => `{"payload":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`),
  nearValid,
);

describe('fuzz: the Avito webhook intake', () => {
  it('never throws (no 5xx) for client garbage, and stores nothing from a refused request', async () => {
    const { logger } = memoryLogger('fatal');
    const intake = new AvitoWebhookIntake({ ledger, log: logger, accountsByUserId: () => new Map([['94235311', 'default']]) });
    await fc.assert(
      fc.asyncProperty(garbage, async (body) => {
        const before = await rows();
        const result = await intake.accept(body);
        expect([200, 400, 422]).toContain(result.status);
        if (result.status !== 200) expect(await rows()).toBe(before);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});

const noteArb: fc.Arbitrary<AmoNote> = fc.record({
  id: fc.nat(),
  entity_id: fc.nat(),
  note_type: fc.constantFrom('common', 'service_message', 'call_in'),
  params: fc.option(fc.record({ text: fc.oneof(
    fc.string(),
    fc.string().map((s) => `/avito ${s}`),
    fc.array(fc.oneof(fc.string(), fc.webUrl(), fc.webUrl().map((u) => `${u}/x%${'.jpg'}`), fc.constant('https://example.com/sale-100%.jpg'))).map((l) => `/avito ${l.join('\n')}`),
  ) }), { nil: undefined }),
  created_at: fc.option(fc.nat(), { nil: undefined }),
  updated_at: fc.option(fc.nat(), { nil: undefined }),
}) as fc.Arbitrary<AmoNote>;

describe('fuzz: reply parsers', () => {
  it('amoCRM replyFromNote never throws, and a reply never keeps the prefix or an empty body', () => {
    fc.assert(
      fc.property(noteArb, (note) => {
        const r = replyFromNote(note, '/avito');
        if (r) expect(r.text.length > 0 || r.attachments.length > 0).toBe(true);
      }),
      { seed: SEED, numRuns: RUNS * 3 },
    );
  });

  it('amoCRM noteIdsFromWebhook never throws and returns only safe integers', () => {
    const form = fc.array(fc.tuple(fc.oneof(fc.string(), fc.constantFrom('leads[note][0][note][id]', 'leads[note][1][id]')), fc.oneof(fc.string(), fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String))));
    fc.assert(
      fc.property(fc.oneof(fc.string(), form.map((pairs) => new URLSearchParams(pairs).toString())), (body) => {
        for (const id of noteIdsFromWebhook(body)) expect(Number.isSafeInteger(id)).toBe(true);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('the core reply intake records malformed replies and never lets an exception escape', async () => {
    const { ReplyService } = await import('../src/sync/replies.js');
    const { logger } = memoryLogger('fatal');
    const service = new ReplyService({
      ledger, log: logger, accountId: 'default', connectorId: 'fuzz', client: {} as never,
      connector: {} as never, capabilities: {} as never,
    });
    const replyArb = fc.oneof(
      fc.anything(),
      fc.record({ remoteId: fc.oneof(fc.string(), fc.integer()), conversationId: fc.oneof(fc.string(), fc.constant(undefined)), text: fc.oneof(fc.string(), fc.integer()), attachments: fc.oneof(fc.constant([]), fc.anything()), createdAt: fc.anything() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(replyArb, { maxLength: 5 }), async (replies) => {
        await service.intake(replies as IncomingReply[], undefined);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
