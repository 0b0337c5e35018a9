import { sql, type Transaction } from 'kysely';
import { chunks } from './chats.js';
import type { ChatWrite, ChatWriteResult, CursorMove, Ingest, LedgerDb, WebhookMessage } from './ledger.js';
import type { LedgerTables, NewChat, NewMessage } from './tables.js';

type Trx = Transaction<LedgerTables>;

/** Rows per multi-row statement (PostgreSQL takes at most 65,535 parameters; a chat row has 16). */
const ROWS_PER_STATEMENT = 500;

/**
 * The PostgreSQL ingest paths: the same rules as the SQLite statements (statements.ts), as
 * multi-row statements, each write one transaction on the pool. Several processes may write the
 * same chat at once (a webhook here, a poll there): rows are written in key order so two
 * transactions lock them in the same order, and a deadlock or serialization failure is retried
 * (`run`).
 */
export class PostgresIngest implements Ingest {
  constructor(
    private readonly db: LedgerDb,
    private readonly run: <T>(fn: (trx: Trx) => Promise<T>) => Promise<T>,
    private readonly routes: (accountId: string) => readonly string[],
  ) {}

  async knownMessageIds(accountId: string, chatId: string, ids: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks(ids, ROWS_PER_STATEMENT)) {
      const rows = await this.db.selectFrom('messages').select('message_id').where('account_id', '=', accountId).where('chat_id', '=', chatId).where('message_id', 'in', part).execute();
      for (const r of rows) out.add(r.message_id);
    }
    return out;
  }

  writeChat(accountId: string, w: ChatWrite): Promise<ChatWriteResult> {
    return this.run(async (trx) => {
      await upsertChatRows(trx, [w.row]);
      const r = await this.insertMessages(trx, w.messages);
      await trx.updateTable('chats').set({ synced_updated: w.updated }).where('account_id', '=', accountId).where('chat_id', '=', w.chatId).execute();
      return r;
    });
  }

  async upsertChats(rows: readonly NewChat[], cursor?: CursorMove): Promise<void> {
    if (rows.length === 0 && !cursor) return;
    await this.run(async (trx) => {
      await upsertChatRows(trx, rows);
      if (cursor) {
        const updated_at = Date.now();
        await trx
          .insertInto('cursors')
          .values({ account_id: cursor.accountId, name: cursor.name, value: cursor.value, updated_at })
          .onConflict((oc) => oc.columns(['account_id', 'name']).doUpdateSet({ value: cursor.value, updated_at }))
          .execute();
      }
    });
  }

  async webhookEvent(e: { source: string; accountId: string | null; eventId: string; body: string; status: string }): Promise<boolean> {
    return this.run((trx) => recordEvent(trx, e));
  }

  webhookMessage(w: WebhookMessage): Promise<{ newChat: boolean; newMessage: boolean } | undefined> {
    return this.run(async (trx) => {
      if (!(await recordEvent(trx, { source: 'avito', accountId: w.accountId, eventId: w.eventId, body: w.body, status: 'processed' }))) return undefined;
      const stub = await trx
        .insertInto('chats')
        .values({
          account_id: w.accountId, chat_id: w.chatId, chat_type: w.chatType, item_id: w.itemId, item_title: null, item_url: null, item_price: null,
          buyer_id: null, buyer_name: null, buyer_url: null, created: null, updated: null, synced_updated: null, needs_fetch: 1, raw: null, fetched_at: null,
        })
        .onConflict((oc) => oc.columns(['account_id', 'chat_id']).doNothing())
        .returning('chat_id')
        .execute();
      const res = await this.insertMessages(trx, [w.row]);
      return { newChat: stub.length > 0, newMessage: res.inserted.length > 0 || res.deleted.length > 0 };
    });
  }

  async replyPartSent(replyId: number, part: number, row: NewMessage): Promise<void> {
    await this.run(async (trx) => {
      // The link first: the message's delivery rows then see it is an echo (skipped).
      await trx.updateTable('reply_sends').set({ status: 'sent', avito_message_id: row.message_id, updated_at: Date.now() }).where('reply_id', '=', replyId).where('part', '=', part).execute();
      await this.insertMessages(trx, [row]);
    });
  }

  /** Messages once per (account, message id), with their deliveries; a known message now `deleted` is updated in place. */
  private async insertMessages(trx: Trx, rows: readonly NewMessage[]): Promise<ChatWriteResult> {
    const inserted: NewMessage[] = [];
    const deleted: string[] = [];
    if (rows.length === 0) return { inserted, deleted };
    const now = Date.now();
    const sorted = [...rows].sort((a, b) => cmp(a.account_id, b.account_id) || cmp(a.message_id, b.message_id));
    for (const part of chunks(sorted, ROWS_PER_STATEMENT)) {
      const got = await trx
        .insertInto('messages')
        .values(part.map((r) => ({ ...r, deleted_at: null })))
        .onConflict((oc) => oc.columns(['account_id', 'message_id']).doNothing())
        .returning(['seq', 'account_id', 'message_id'])
        .execute();
      const seqs = new Map(got.map((g) => [`${g.account_id}\u0000${g.message_id}`, g.seq]));
      const fresh = part.filter((r) => seqs.has(`${r.account_id}\u0000${r.message_id}`));
      inserted.push(...fresh);
      const voices = fresh.filter((r) => r.voice_id).map((r) => ({ account_id: r.account_id, voice_id: r.voice_id!, path: null, size: null, fetched_at: null, error: null, attempts: 0 }));
      if (voices.length) await trx.insertInto('voice_files').values(voices).onConflict((oc) => oc.columns(['account_id', 'voice_id']).doNothing()).execute();
      await this.enqueue(trx, fresh, seqs, now);
      for (const r of part) {
        if (seqs.has(`${r.account_id}\u0000${r.message_id}`) || r.type !== 'deleted') continue;
        const upd = await trx
          .updateTable('messages')
          .set({ type: 'deleted', content: r.content, text: null, deleted_at: now })
          .where('account_id', '=', r.account_id)
          .where('message_id', '=', r.message_id)
          .where('type', '!=', 'deleted')
          .returning('seq')
          .execute();
        if (upd.length === 0) continue;
        deleted.push(r.message_id);
        // A deleted message that reached (or is reaching) a CRM gets a deletion note there.
        await sql`INSERT INTO deliveries (account_id, connector, message_id, kind, chat_id, created, seq, status, attempts, next_attempt_at, updated_at)
          SELECT m.account_id, d.connector, m.message_id, 'deletion', m.chat_id, m.created, m.seq, 'pending', 0, ${now}, ${now}
          FROM messages m JOIN deliveries d ON d.account_id = m.account_id AND d.message_id = m.message_id AND d.kind = 'message' AND d.status IN ('delivered', 'leased')
          WHERE m.account_id = ${r.account_id} AND m.message_id = ${r.message_id}
          ON CONFLICT (account_id, connector, message_id, kind) DO NOTHING`.execute(trx);
      }
    }
    return { inserted, deleted };
  }

  /** One delivery per routed connector for each new message; an echo of a reply this daemon sent is `skipped`. */
  private async enqueue(trx: Trx, fresh: readonly NewMessage[], seqs: ReadonlyMap<string, number>, now: number): Promise<void> {
    const rows = [];
    const own = fresh.filter((r) => r.is_own).map((r) => r.message_id);
    const echoes = new Set<string>();
    if (own.length) {
      const linked = await trx.selectFrom('reply_sends').select('avito_message_id').where('account_id', '=', fresh[0]!.account_id).where('avito_message_id', 'in', own).execute();
      for (const l of linked) if (l.avito_message_id) echoes.add(l.avito_message_id);
    }
    for (const r of fresh) {
      for (const connector of this.routes(r.account_id)) {
        rows.push({
          account_id: r.account_id, connector, message_id: r.message_id, kind: 'message', chat_id: r.chat_id, created: r.created,
          seq: seqs.get(`${r.account_id}\u0000${r.message_id}`)!, status: echoes.has(r.message_id) ? ('skipped' as const) : ('pending' as const),
          attempts: 0, next_attempt_at: now, lease_until: null, lease_owner: null, last_error: null, remote_id: null, updated_at: now,
        });
      }
    }
    for (const part of chunks(rows, ROWS_PER_STATEMENT)) {
      await trx.insertInto('deliveries').values(part).onConflict((oc) => oc.columns(['account_id', 'connector', 'message_id', 'kind']).doNothing()).execute();
    }
  }
}

async function recordEvent(trx: Trx, e: { source: string; accountId: string | null; eventId: string; body: string; status: string }): Promise<boolean> {
  const got = await trx
    .insertInto('webhook_events')
    .values({ source: e.source, account_id: e.accountId, event_id: e.eventId, received_at: Date.now(), body: e.body, status: e.status, error: null })
    .onConflict((oc) => oc.columns(['source', 'event_id']).doNothing())
    .returning('seq')
    .execute();
  return got.length > 0;
}

/** The chat upsert rule of statements.ts: what the new row knows replaces, what it does not know stays. */
async function upsertChatRows(trx: Trx, rows: readonly NewChat[]): Promise<void> {
  // One row per chat (a statement may not update a row twice), in key order (lock order).
  const byKey = new Map<string, NewChat>();
  for (const r of rows) byKey.set(`${r.account_id}\u0000${r.chat_id}`, r);
  const sorted = [...byKey.values()].sort((a, b) => cmp(a.account_id, b.account_id) || cmp(a.chat_id, b.chat_id));
  for (const part of chunks(sorted, ROWS_PER_STATEMENT)) {
    await trx
      .insertInto('chats')
      .values(part.map((r) => ({
        account_id: r.account_id, chat_id: r.chat_id, chat_type: r.chat_type ?? null, item_id: r.item_id ?? null, item_title: r.item_title ?? null,
        item_url: r.item_url ?? null, item_price: r.item_price ?? null, buyer_id: r.buyer_id ?? null, buyer_name: r.buyer_name ?? null, buyer_url: r.buyer_url ?? null,
        created: r.created ?? null, updated: r.updated ?? null, synced_updated: r.synced_updated ?? null, needs_fetch: r.needs_fetch ?? 0, raw: r.raw ?? null, fetched_at: r.fetched_at ?? null,
      })))
      .onConflict((oc) => oc.columns(['account_id', 'chat_id']).doUpdateSet((eb) => {
        // What the new row does not know (null) keeps the stored value.
        const keep = (c: 'chat_type' | 'item_id' | 'item_title' | 'item_url' | 'item_price' | 'buyer_id' | 'buyer_name' | 'buyer_url' | 'created' | 'updated' | 'raw' | 'fetched_at') =>
          sql<never>`coalesce(excluded.${sql.ref(c)}, chats.${sql.ref(c)})`;
        return {
          chat_type: keep('chat_type'), item_id: keep('item_id'), item_title: keep('item_title'), item_url: keep('item_url'), item_price: keep('item_price'),
          buyer_id: keep('buyer_id'), buyer_name: keep('buyer_name'), buyer_url: keep('buyer_url'), created: keep('created'), updated: keep('updated'),
          needs_fetch: eb.ref('excluded.needs_fetch'), raw: keep('raw'), fetched_at: keep('fetched_at'),
        };
      }))
      .execute();
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
