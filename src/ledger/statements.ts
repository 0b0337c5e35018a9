import type Database from 'better-sqlite3';
import type { NewChat, NewMessage } from './tables.js';

const MESSAGE_COLUMNS = 'account_id, message_id, chat_id, author_id, direction, type, created, text, content, quote, flow_id, bot_name, is_own, voice_id, source, inserted_at';
const MESSAGE_VALUES = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

/**
 * Rows per multi-row message INSERT, largest first (a chat's messages are split greedily; 800
 * parameters at most, far below SQLite's 32,766). One statement per 50 rows instead of 50 cost
 * ≈ 15–25 % less CPU per row on the bench machine (docs/benchmarks.md, session `ingest2`).
 */
const INSERT_CHUNKS = [50, 10, 1] as const;

/**
 * Prepared statements for the SQLite ingest hot path (sqlite-ingest.ts), run inside the SQLite
 * ledger's synchronous transactions. Kysely builds every other query; here a statement is
 * prepared once and run per row, which is several times cheaper than compiling and preparing a
 * large multi-row INSERT per page. postgres-ingest.ts writes the same tables with the same rules.
 */
export class IngestStatements {
  /** Multi-row message inserts by rows per statement (INSERT_CHUNKS). */
  private readonly insertMessageRows = new Map<number, Database.Statement>();
  private readonly maxSeq: Database.Statement;
  private readonly insertedSeqs: Database.Statement;
  private readonly markDeleted: Database.Statement;
  private readonly upsertChatStmt: Database.Statement;
  private readonly markSyncedStmt: Database.Statement;
  private readonly knownId: Database.Statement;
  private readonly chatHasMessages: Database.Statement;
  private readonly registerVoice: Database.Statement;
  private readonly chatStub: Database.Statement;
  private readonly webhookEvent: Database.Statement;
  private readonly enqueueMessages: Database.Statement;
  private readonly enqueueDeletion: Database.Statement;

  /** `routes(account)`: the connectors that get a delivery row for each new message of the account. */
  constructor(sqlite: Database.Database, private readonly routes: (accountId: string) => readonly string[]) {
    for (const n of INSERT_CHUNKS) {
      this.insertMessageRows.set(n, sqlite.prepare(`INSERT INTO messages (${MESSAGE_COLUMNS})
        VALUES ${Array<string>(n).fill(MESSAGE_VALUES).join(', ')}
        ON CONFLICT (account_id, message_id) DO NOTHING`));
    }
    this.maxSeq = sqlite.prepare(`SELECT max(seq) FROM messages`).pluck();
    this.insertedSeqs = sqlite.prepare(`SELECT seq, account_id, message_id FROM messages WHERE seq BETWEEN ? AND ?`).raw();
    this.markDeleted = sqlite.prepare(`UPDATE messages SET type = 'deleted', content = ?, text = NULL, deleted_at = ? WHERE account_id = ? AND message_id = ? AND type != 'deleted'`);
    this.upsertChatStmt = sqlite.prepare(`INSERT INTO chats (account_id, chat_id, chat_type, item_id, item_title, item_url, item_price, buyer_id, buyer_name, buyer_url, created, updated, synced_updated, needs_fetch, raw, fetched_at)
      VALUES (@account_id, @chat_id, @chat_type, @item_id, @item_title, @item_url, @item_price, @buyer_id, @buyer_name, @buyer_url, @created, @updated, @synced_updated, @needs_fetch, @raw, @fetched_at)
      ON CONFLICT (account_id, chat_id) DO UPDATE SET
        chat_type = coalesce(excluded.chat_type, chat_type), item_id = coalesce(excluded.item_id, item_id),
        item_title = coalesce(excluded.item_title, item_title), item_url = coalesce(excluded.item_url, item_url),
        item_price = coalesce(excluded.item_price, item_price), buyer_id = coalesce(excluded.buyer_id, buyer_id),
        buyer_name = coalesce(excluded.buyer_name, buyer_name), buyer_url = coalesce(excluded.buyer_url, buyer_url),
        created = coalesce(excluded.created, created), updated = coalesce(excluded.updated, updated),
        needs_fetch = excluded.needs_fetch, raw = coalesce(excluded.raw, raw), fetched_at = coalesce(excluded.fetched_at, fetched_at)`);
    this.markSyncedStmt = sqlite.prepare(`UPDATE chats SET synced_updated = ? WHERE account_id = ? AND chat_id = ?`);
    this.knownId = sqlite.prepare(`SELECT 1 FROM messages WHERE account_id = ? AND message_id = ?`).pluck();
    this.chatHasMessages = sqlite.prepare(`SELECT 1 FROM messages WHERE account_id = ? AND chat_id = ? LIMIT 1`).pluck();
    this.chatStub = sqlite.prepare(`INSERT INTO chats (account_id, chat_id, chat_type, item_id, needs_fetch) VALUES (?, ?, ?, ?, 1) ON CONFLICT (account_id, chat_id) DO NOTHING`);
    this.webhookEvent = sqlite.prepare(`INSERT INTO webhook_events (source, account_id, event_id, received_at, body, status, error) VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (source, event_id) DO NOTHING`);
    // Deliveries are created with their message, in its transaction (never by scanning `seq`
    // later: see ledger.ts): one statement per connector for the rows one INSERT just stored,
    // read back by their `seq` range (every row in it is one of them; `+account_id` keeps SQLite
    // on that range rather than on an index walking the whole account). A message that is the
    // echo of a reply this daemon sent is already in the CRM: skipped.
    this.enqueueMessages = sqlite.prepare(`INSERT INTO deliveries (account_id, connector, message_id, kind, chat_id, created, seq, status, attempts, next_attempt_at, updated_at)
      SELECT m.account_id, ?, m.message_id, 'message', m.chat_id, m.created, m.seq,
        CASE WHEN EXISTS (SELECT 1 FROM reply_sends r WHERE r.account_id = m.account_id AND r.avito_message_id = m.message_id) THEN 'skipped' ELSE 'pending' END, 0, ?, ?
      FROM messages m WHERE m.seq BETWEEN ? AND ? AND +m.account_id = ?
      ORDER BY m.seq
      ON CONFLICT (account_id, connector, message_id, kind) DO NOTHING`);
    // A deleted message that reached (or is reaching) a CRM gets a deletion note there.
    this.enqueueDeletion = sqlite.prepare(`INSERT INTO deliveries (account_id, connector, message_id, kind, chat_id, created, seq, status, attempts, next_attempt_at, updated_at)
      SELECT m.account_id, d.connector, m.message_id, 'deletion', m.chat_id, m.created, m.seq, 'pending', 0, @now, @now
      FROM messages m JOIN deliveries d ON d.account_id = m.account_id AND d.message_id = m.message_id AND d.kind = 'message' AND d.status IN ('delivered', 'leased')
      WHERE m.account_id = @account AND m.message_id = @message
      ON CONFLICT (account_id, connector, message_id, kind) DO NOTHING`);
    this.registerVoice = sqlite.prepare(`INSERT INTO voice_files (account_id, voice_id, path, size, fetched_at, error, attempts) VALUES (?, ?, NULL, NULL, NULL, NULL, 0) ON CONFLICT (account_id, voice_id) DO NOTHING`);
  }

  /** Which of `ids` of this chat are already stored (call inside readSync). */
  known(accountId: string, chatId: string, ids: readonly string[]): Set<string> {
    const out = new Set<string>();
    // A chat with nothing stored has no known message: one lookup instead of one per message.
    if (!this.chatHasMessages.get(accountId, chatId)) return out;
    for (const id of ids) if (this.knownId.get(accountId, id)) out.add(id);
    return out;
  }

  /** Stores messages once per (account, message id); a known message now `deleted` is updated in place. */
  insertMessages(rows: readonly NewMessage[]): { inserted: NewMessage[]; deleted: string[] } {
    const inserted: NewMessage[] = [];
    const deleted: string[] = [];
    const now = Date.now();
    for (let start = 0; start < rows.length; ) {
      const n = INSERT_CHUNKS.find((k) => k <= rows.length - start)!;
      const chunk = rows.slice(start, start + n);
      start += n;
      const { seqs, range } = this.insertChunk(chunk);
      if (range) {
        const accounts = new Set<string>();
        chunk.forEach((row, i) => {
          if (seqs[i] === undefined) return;
          inserted.push(row);
          accounts.add(row.account_id);
          if (row.voice_id) this.registerVoice.run(row.account_id, row.voice_id);
        });
        for (const account of accounts) {
          for (const connector of this.routes(account)) this.enqueueMessages.run(connector, now, now, range[0], range[1], account);
        }
      }
      chunk.forEach((row, i) => {
        if (seqs[i] !== undefined || row.type !== 'deleted') return;
        if (this.markDeleted.run(row.content, now, row.account_id, row.message_id).changes === 0) return;
        deleted.push(row.message_id);
        this.enqueueDeletion.run({ account: row.account_id, message: row.message_id, now });
      });
    }
    return { inserted, deleted };
  }

  /**
   * One multi-row INSERT … ON CONFLICT DO NOTHING; the `seq` each row got, or undefined for a row
   * already stored (or repeated in the chunk: the first one is stored). SQLite gives the rows of
   * one statement increasing `seq`s above every earlier one, the last being `lastInsertRowid`
   * (one writer, rows in order): when every row went in they are consecutive and no lookup is
   * needed; otherwise the rows above the highest `seq` before the statement are read back (with
   * AUTOINCREMENT a skipped row still uses up a `seq`, so the range may have gaps).
   */
  private insertChunk(chunk: readonly NewMessage[]): { seqs: (number | undefined)[]; range?: [number, number] } {
    const params: unknown[] = [];
    for (const r of chunk) {
      params.push(r.account_id, r.message_id, r.chat_id, r.author_id, r.direction, r.type, r.created, r.text, r.content, r.quote, r.flow_id, r.bot_name, r.is_own, r.voice_id, r.source, r.inserted_at);
    }
    // A single row is either in (its seq is lastInsertRowid) or not: no range to read back.
    const before = chunk.length > 1 ? ((this.maxSeq.get() as number | null) ?? 0) : 0;
    const res = this.insertMessageRows.get(chunk.length)!.run(params);
    const last = Number(res.lastInsertRowid);
    const seqs: (number | undefined)[] = new Array<number | undefined>(chunk.length).fill(undefined);
    if (res.changes === chunk.length) {
      for (let i = 0; i < chunk.length; i++) seqs[i] = last - chunk.length + 1 + i;
      return { seqs, range: [last - chunk.length + 1, last] };
    }
    if (res.changes === 0) return { seqs };
    const byId = new Map<string, number>();
    for (const [seq, account, id] of this.insertedSeqs.all(before + 1, last) as [number, string, string][]) byId.set(`${account}\u0000${id}`, seq);
    chunk.forEach((r, i) => {
      const key = `${r.account_id}\u0000${r.message_id}`;
      const seq = byId.get(key);
      if (seq === undefined) return;
      seqs[i] = seq;
      byId.delete(key);
    });
    return { seqs, range: [before + 1, last] };
  }

  /** A chat known only from a webhook; true when it was new (its details are to be fetched). */
  ensureChatStub(accountId: string, chatId: string, chatType: string | null, itemId: string | null): boolean {
    return this.chatStub.run(accountId, chatId, chatType, itemId).changes > 0;
  }

  /** Stores a raw webhook event once per (source, event id); false for a duplicate. */
  recordWebhookEvent(e: { source: string; accountId: string | null; eventId: string; body: string; status: string }): boolean {
    return this.webhookEvent.run(e.source, e.accountId, e.eventId, Date.now(), e.body, e.status).changes > 0;
  }

  upsertChat(row: NewChat): void {
    this.upsertChatStmt.run({ synced_updated: null, ...row });
  }

  markSynced(accountId: string, chatId: string, updated: number): void {
    this.markSyncedStmt.run(updated, accountId, chatId);
  }
}
