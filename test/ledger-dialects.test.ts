import { afterEach, describe, expect, it } from 'vitest';
import { openLedger, type Ledger, type LedgerDialect } from '../src/ledger/database.js';
import type { NewChat, NewMessage } from '../src/ledger/tables.js';
import { markReadsReported, readsToReport, recordReadCheck, repliesAwaitingRead } from '../src/ledger/read-receipts.js';
import { failInserts, ledgerLocation, SUITE_DIALECT } from './dialects.js';
import { sql } from 'kysely';
import type { ConfigError } from '../src/errors.js';
import { AccountLeases, LEASE_TTL_MS } from '../src/ledger/leases.js';
import { memoryLogger } from '../src/log/logger.js';
import { tempDir } from './helpers.js';

/** The ledger boundary on the suite's dialect (each column of the matrix: SQLite, and PostgreSQL when AVITO_SYNC_TEST_PG is set). */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function open(dialect: LedgerDialect): Promise<{ ledger: Ledger; again: () => Promise<Ledger> }> {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const where = ledgerLocation(t.dir, dialect);
  const opened: Ledger[] = [];
  cleanups.push(async () => {
    for (const l of opened) await l.close();
  });
  const again = async () => {
    const l = await openLedger(where, { poolSize: 4 });
    opened.push(l);
    return l;
  };
  return { ledger: await again(), again };
}

const chat = (id: string): NewChat => ({
  account_id: 'a', chat_id: id, chat_type: 'u2i', item_id: 'i1', item_title: 'Bike', item_url: null, item_price: '100', buyer_id: 'b1', buyer_name: 'Ann', buyer_url: null,
  created: 1_700_000_000, updated: 1_700_000_100, needs_fetch: 0, raw: null, fetched_at: Date.now(),
});
const message = (chatId: string, id: string, created: number, extra: Partial<NewMessage> = {}): NewMessage => ({
  account_id: 'a', message_id: id, chat_id: chatId, author_id: 'b1', direction: 'in', type: 'text', created, text: id, content: JSON.stringify({ text: id }),
  quote: null, flow_id: null, bot_name: null, is_own: 0, voice_id: null, source: 'poll', inserted_at: Date.now(), ...extra,
});

describe(`ledger on ${SUITE_DIALECT}`, () => {
  const dialect = SUITE_DIALECT;
  it('a ledger migrated by a newer avito-sync is refused (exit 2, AVITO_SYNC_DB) and left as it is', async () => {
    const { ledger, again } = await open(dialect);
    await sql`INSERT INTO kysely_migration (name, timestamp) VALUES ('999-future', ${new Date().toISOString()})`.execute(ledger.db);
    const err = await again().then(() => undefined, (e: unknown) => e as ConfigError);
    expect(err?.name).toBe('ConfigError');
    expect(err?.key).toBe('AVITO_SYNC_DB');
    expect(err?.message).toMatch(/was written by a newer avito-sync \(migration 999-future\); upgrade avito-sync to use it\. Do not delete the ledger/);
    expect((await sql<{ n: number }>`SELECT count(*) AS n FROM kysely_migration WHERE name = '999-future'`.execute(ledger.db)).rows[0]!.n).toEqual(1);
  });

  it('account leases: one holder per account; a lease that ran out is taken over and records whom it replaced', async () => {
    const { ledger, again } = await open(dialect);
    const other = await again();
    const log = memoryLogger('warn').logger;
    const first = new AccountLeases(ledger, ['a', 'b'], { log });
    await first.tick();
    expect(first.held()).toEqual(['a', 'b']);
    const rows = await ledger.db.selectFrom('account_leases').selectAll().orderBy('account_id').execute();
    expect(rows.map((r) => r.owner)).toEqual([ledger.owner, ledger.owner]);
    expect(Number(rows[0]!.expires_at) - Number(rows[0]!.heartbeat_at)).toBe(LEASE_TTL_MS);
    // The holder dies: its leases run out; the other process takes them at its next tick.
    await ledger.db.updateTable('account_leases').set({ expires_at: Date.now() - 1 }).execute();
    await ledger.db.updateTable('lease_owners').set({ expires_at: Date.now() - 1 }).where('owner', '=', ledger.owner).execute();
    const second = new AccountLeases(other, ['a', 'b'], { log });
    await second.tick();
    expect(second.held()).toEqual(['a', 'b']);
    const taken = await other.db.selectFrom('account_leases').selectAll().orderBy('account_id').execute();
    expect(taken.every((r) => r.owner === other.owner && r.previous_owner === ledger.owner)).toBe(true);
    // The old holder finds out at its next heartbeat and stops working them.
    await first.tick();
    expect(first.held()).toEqual(dialect === 'sqlite' ? ['a', 'b'] : []); // SQLite: the writer lock's single daemon takes all
    await second.stop();
  });

  it('ids, counts and epoch-ms times come back as numbers', async () => {
    const { ledger } = await open(dialect);
    await ledger.ingest.writeChat('a', { chatId: 'c1', updated: 1_700_000_100, row: chat('c1'), messages: [message('c1', 'm1', 1_700_000_001)] });
    const row = await ledger.db.selectFrom('messages').select(['seq', 'created', 'inserted_at']).executeTakeFirstOrThrow();
    expect(typeof row.seq).toBe('number');
    expect(row.inserted_at).toBeGreaterThan(1_600_000_000_000);
    const n = await ledger.db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(n.n).toBe(1);
  });

  it('invariant 2: a message gets its deliveries in the transaction that stores it; an echo is skipped; a deletion is noted', async () => {
    const { ledger } = await open(dialect);
    ledger.routeDeliveries('a', ['crm1', 'crm2']);
    const res = await ledger.ingest.writeChat('a', { chatId: 'c1', updated: 1, row: chat('c1'), messages: [message('c1', 'm1', 10), message('c1', 'm2', 11)] });
    expect(res.inserted).toHaveLength(2);
    const again = await ledger.ingest.writeChat('a', { chatId: 'c1', updated: 1, row: chat('c1'), messages: [message('c1', 'm1', 10)] });
    expect(again.inserted).toHaveLength(0);
    expect(await ledger.db.selectFrom('deliveries').select('id').execute()).toHaveLength(4);

    // A reply part sent by this daemon: its message is stored, its deliveries skipped.
    await ledger.db.insertInto('replies').values({ account_id: 'a', connector: 'crm1', remote_id: 'n1', chat_id: 'c1', conversation_id: 'L1', text: 'hi', attachments: '[]', status: 'sending', attempts: 1, next_attempt_at: 0, last_error: null, reported: 0, created_at: 0, updated_at: 0 }).execute();
    const reply = await ledger.db.selectFrom('replies').select('id').executeTakeFirstOrThrow();
    await ledger.db.insertInto('reply_sends').values({ reply_id: reply.id, part: 0, account_id: 'a', kind: 'text', body: 'hi', image_id: null, status: 'sending', avito_message_id: null, updated_at: 0 }).execute();
    await ledger.ingest.replyPartSent(reply.id, 0, message('c1', 'echo1', 12, { is_own: 1, source: 'send' }));
    const echo = await ledger.db.selectFrom('deliveries').select('status').where('message_id', '=', 'echo1').execute();
    expect(echo.map((e) => e.status)).toEqual(['skipped', 'skipped']);

    // m1 reached crm1: deleting it on Avito notes the deletion there only.
    const d = await ledger.outbox('a', 'crm1').claim(10);
    await ledger.outbox('a', 'crm1').markDelivered(d.filter((x) => x.messageId === 'm1').map((x) => ({ id: x.id, remoteId: 'r1' })));
    await ledger.ingest.writeChat('a', { chatId: 'c1', updated: 2, row: chat('c1'), messages: [message('c1', 'm1', 10, { type: 'deleted', text: null, content: '{}' })] });
    const notes = await ledger.db.selectFrom('deliveries').select(['connector', 'kind']).where('kind', '=', 'deletion').execute();
    expect(notes).toEqual([{ connector: 'crm1', kind: 'deletion' }]);
  });

  it('invariant 2: a long chat write mixing stored, repeated and new messages stores each once, each new one with its own deliveries and seq', async () => {
    const { ledger } = await open(dialect);
    ledger.routeDeliveries('a', ['crm1']);
    // Every seventh message is stored before; 137 rows span several multi-row statements (SQLite).
    const ids = Array.from({ length: 137 }, (_, i) => `m${String(i).padStart(3, '0')}`);
    const before = ids.filter((_, i) => i % 7 === 3);
    await ledger.ingest.writeChat('a', { chatId: 'c1', updated: 1, row: chat('c1'), messages: before.map((id, i) => message('c1', id, i)) });
    // The same id twice in one write (a page repeated by Avito): the first is stored.
    const rows = ids.map((id, i) => message('c1', id, 1000 + i));
    rows.splice(100, 0, message('c1', 'm070', 5000, { text: 'second copy' }));
    const res = await ledger.ingest.writeChat('a', { chatId: 'c1', updated: 2, row: chat('c1'), messages: rows });
    const fresh = ids.filter((id) => !before.includes(id));
    // (PostgreSQL reports its rows in id order, and a repeated new id once per copy.)
    expect([...new Set(res.inserted.map((m) => m.message_id))].sort()).toEqual(fresh);
    const stored = await ledger.db.selectFrom('messages').select(['message_id', 'seq', 'created']).execute();
    expect(stored).toHaveLength(ids.length);
    const deliveries = await ledger.db.selectFrom('deliveries').select(['message_id', 'seq']).execute();
    expect(deliveries).toHaveLength(ids.length);
    const seqOf = new Map(stored.map((m) => [m.message_id, Number(m.seq)]));
    for (const d of deliveries) expect(Number(d.seq)).toBe(seqOf.get(d.message_id));
    expect(stored.find((m) => m.message_id === 'm070')?.created).toBe(1070);
    // A rerun of the whole write stores nothing and enqueues nothing.
    const rerun = await ledger.ingest.writeChat('a', { chatId: 'c1', updated: 3, row: chat('c1'), messages: rows });
    expect(rerun).toEqual({ inserted: [], deleted: [] });
    expect(await ledger.db.selectFrom('deliveries').select('id').execute()).toHaveLength(ids.length);
  });

  it('read receipts: sent replies awaiting a read, looked at in turn; a read is reported once', async () => {
    const { ledger } = await open(dialect);
    const now = Date.now();
    for (const [i, chatId] of ['c1', 'c2', 'c3'].entries()) {
      await ledger.db.insertInto('replies').values({ account_id: 'a', connector: 'crm1', remote_id: `n${i}`, chat_id: chatId, conversation_id: `L${i}`, text: 'hi', attachments: '[]', status: i === 2 ? 'dead' : 'sent', attempts: 1, next_attempt_at: 0, last_error: null, reported: 1, created_at: now, updated_at: now }).execute();
    }
    const ids = (await ledger.db.selectFrom('replies').select('id').orderBy('id').execute()).map((r) => Number(r.id));
    await ledger.db.insertInto('reply_sends').values([
      { reply_id: ids[0]!, part: 0, account_id: 'a', kind: 'text', body: 'hi', image_id: null, status: 'sent', avito_message_id: 'm10', updated_at: now },
      { reply_id: ids[0]!, part: 1, account_id: 'a', kind: 'text', body: 'there', image_id: null, status: 'sent', avito_message_id: 'm11', updated_at: now },
      { reply_id: ids[1]!, part: 0, account_id: 'a', kind: 'text', body: 'hi', image_id: null, status: 'sent', avito_message_id: 'm20', updated_at: now },
      { reply_id: ids[2]!, part: 0, account_id: 'a', kind: 'text', body: 'hi', image_id: null, status: 'sending', avito_message_id: null, updated_at: now },
    ]).execute();
    const first = await repliesAwaitingRead(ledger.db, 'a', 'crm1', now - 1000, 1);
    expect([...first.keys()]).toEqual(['c1']);
    expect(first.get('c1')).toEqual([{ replyId: ids[0], chatId: 'c1', avitoMessageIds: ['m10', 'm11'] }]);
    await recordReadCheck(ledger.db, [ids[0]!], new Map(), now);
    // c1 was looked at: c2 has its turn; the dead reply never comes up.
    expect([...(await repliesAwaitingRead(ledger.db, 'a', 'crm1', now - 1000, 1)).keys()]).toEqual(['c2']);
    await recordReadCheck(ledger.db, [ids[1]!], new Map([[ids[1]!, now - 5]]), now + 1);
    expect([...(await repliesAwaitingRead(ledger.db, 'a', 'crm1', now - 1000, 5)).keys()]).toEqual(['c1']);
    const reads = await readsToReport(ledger.db, 'a', 'crm1', 10);
    expect(reads).toEqual([{ replyId: ids[1], chatId: 'c2', conversationId: 'L1', remoteId: 'n1', readAt: now - 5 }]);
    await markReadsReported(ledger.db, [ids[1]!]);
    expect(await readsToReport(ledger.db, 'a', 'crm1', 10)).toEqual([]);
    expect(await repliesAwaitingRead(ledger.db, 'a', 'crm1', now + 10_000, 5)).toEqual(new Map());
  });

  it('a connector that was not routed catches up on what was stored meanwhile', async () => {
    const { ledger } = await open(dialect);
    await ledger.ingest.writeChat('a', { chatId: 'c1', updated: 1, row: chat('c1'), messages: [message('c1', 'm1', 10), message('c1', 'm2', 11)] });
    expect(await ledger.outbox('a', 'crm1').catchUp()).toBe(2);
    expect(await ledger.outbox('a', 'crm1').catchUp()).toBe(0);
    expect((await ledger.outbox('a', 'crm1').counts()).pending).toBe(2);
  });

  it('invariant 5: a cursor moves with the chat rows it covers, or not at all', async () => {
    const { ledger } = await open(dialect);
    await ledger.ingest.upsertChats([chat('c1'), chat('c2')], { accountId: 'a', name: 'chats:u2i', value: '42' });
    const c = await ledger.db.selectFrom('cursors').select('value').executeTakeFirstOrThrow();
    expect(c.value).toBe('42');
    await expect(ledger.ingest.upsertChats([{ ...chat('c3'), account_id: null as unknown as string }], { accountId: 'a', name: 'chats:u2i', value: '43' })).rejects.toThrow();
    expect((await ledger.db.selectFrom('cursors').select('value').executeTakeFirstOrThrow()).value).toBe('42');
  });

  it('invariant 4: a webhook event is stored once, with its message, before it is acknowledged', async () => {
    const { ledger } = await open(dialect);
    ledger.routeDeliveries('a', ['crm1']);
    const w = { accountId: 'a', eventId: 'e1', body: '{}', chatId: 'c9', chatType: 'u2i', itemId: null, row: message('c9', 'w1', 5, { source: 'webhook' }) };
    const [first, dup] = await Promise.all([ledger.ingest.webhookMessage(w), ledger.ingest.webhookMessage(w)]);
    expect([first, dup].filter(Boolean)).toEqual([{ newChat: true, newMessage: true }]);
    expect(await ledger.db.selectFrom('deliveries').select('id').execute()).toHaveLength(1);
  });

  it('invariant 5: chat writes of a pass grouped into one commit each keep their rows with their sync mark, and a bad one fails alone', async () => {
    const { ledger } = await open(dialect);
    const undo = await failInserts(ledger, 'messages', 'disk says no', { column: 'message_id', value: 'c2m1' });
    // Writes told more are coming may wait to share a commit; the one without `more` commits them all.
    const writes = [0, 1, 2, 3].map((c) =>
      ledger.ingest.writeChat('a', { chatId: `c${c}`, updated: 1_700_000_100 + c, row: chat(`c${c}`), messages: [0, 1].map((i) => message(`c${c}`, `c${c}m${i}`, 100 + i)), more: c < 3 }).then(
        (r) => r.inserted.map((m) => m.message_id),
        (e: Error) => e.message,
      ),
    );
    expect(await Promise.all(writes)).toEqual([['c0m0', 'c0m1'], ['c1m0', 'c1m1'], expect.stringMatching(/disk says no/), ['c3m0', 'c3m1']]);
    const chats = await ledger.db.selectFrom('chats').select(['chat_id', 'synced_updated']).orderBy('chat_id').execute();
    expect(chats.map((c) => [c.chat_id, Number(c.synced_updated)])).toEqual([['c0', 1_700_000_100], ['c1', 1_700_000_101], ['c3', 1_700_000_103]]);
    const stored = await ledger.db.selectFrom('messages').select('message_id').orderBy('message_id').execute();
    expect(stored.map((m) => m.message_id)).toEqual(['c0m0', 'c0m1', 'c1m0', 'c1m1', 'c3m0', 'c3m1']);
    await undo();
    // A write that waits for others that never come still commits (after the window).
    await ledger.ingest.writeChat('a', { chatId: 'c2', updated: 1_700_000_102, row: chat('c2'), messages: [message('c2', 'c2m1', 101)], more: true });
    expect(await ledger.db.selectFrom('messages').select('message_id').where('chat_id', '=', 'c2').execute()).toHaveLength(1);
  });

  it('claims keep each chat in order, and two claimers never take the same row', async () => {
    const { ledger, again } = await open(dialect);
    ledger.routeDeliveries('a', ['crm1']);
    for (let c = 0; c < 6; c++) {
      await ledger.ingest.writeChat('a', { chatId: `c${c}`, updated: 1, row: chat(`c${c}`), messages: [0, 1, 2].map((i) => message(`c${c}`, `c${c}m${i}`, 100 + i)) });
    }
    // A second process on the same database (on SQLite: the same file, one writer at a time).
    const other = dialect === 'postgres' ? await again() : ledger;
    const [x, y] = await Promise.all([ledger.outbox('a', 'crm1').claim(9), other.outbox('a', 'crm1').claim(9)]);
    const ids = [...x, ...y].map((c) => c.id);
    expect(ids.length).toBeGreaterThanOrEqual(9);
    expect(new Set(ids).size).toBe(ids.length);
    // Each claim holds a prefix of each chat it touched, and no chat is split between the two.
    for (const claim of [x, y]) {
      const byChat = new Map<string, string[]>();
      for (const c of claim) byChat.set(c.chatId, [...(byChat.get(c.chatId) ?? []), c.messageId]);
      for (const [chatId, msgs] of byChat) expect(msgs).toEqual([0, 1, 2].slice(0, msgs.length).map((i) => `${chatId}m${i}`));
    }
    const chatsX = new Set(x.map((c) => c.chatId));
    expect(y.some((c) => chatsX.has(c.chatId))).toBe(false);
    // A chat whose head failed waits: its later rows are not claimed before the head is due.
    const head = [...x, ...y][0]!;
    await ledger.outbox('a', 'crm1').retryLater([{ id: head.id, error: 'boom', at: Date.now() + 60_000 }]);
    await ledger.outbox('a', 'crm1').release([...x, ...y].filter((c) => c.id !== head.id).map((c) => c.id));
    const next = await other.outbox('a', 'crm1').claim(100);
    expect(next.some((c) => c.chatId === head.chatId)).toBe(false);
  });
});
