import type Database from 'better-sqlite3';
import type { NewChat, NewMessage } from './tables.js';

/**
 * Prepared statements for the SQLite ingest hot path (sqlite-ingest.ts), run inside the SQLite
 * ledger's synchronous transactions. Kysely builds every other query; here a statement is
 * prepared once and run per row, which is several times cheaper than compiling and preparing a
 * large multi-row INSERT per page. postgres-ingest.ts writes the same tables with the same rules.
 */
export class IngestStatements {
  private readonly insertMessage: Database.Statement;
  private readonly markDeleted: Database.Statement;
  private readonly upsertChatStmt: Database.Statement;
  private readonly markSyncedStmt: Database.Statement;
  private readonly knownId: Database.Statement;
  private readonly chatHasMessages: Database.Statement;
  private readonly registerVoice: Database.Statement;
  private readonly chatStub: Database.Statement;
  private readonly webhookEvent: Database.Statement;
  private readonly enqueueMessage: Database.Statement;
  private readonly enqueueDeletion: Database.Statement;

  /** `routes(account)`: the connectors that get a delivery row for each new message of the account. */
  constructor(sqlite: Database.Database, private readonly routes: (accountId: string) => readonly string[]) {
    this.insertMessage = sqlite.prepare(`INSERT INTO messages (account_id, message_id, chat_id, author_id, direction, type, created, text, content, quote, flow_id, bot_name, is_own, voice_id, source, inserted_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (account_id, message_id) DO NOTHING`);
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
    // Deliveries are created with their message (never by scanning `seq` later: see ledger.ts).
    // A message that is the echo of a reply this daemon sent is already in the CRM: skipped.
    // Positional parameters: this runs once per new message and routed connector, and binding an
    // object of named ones cost ≈ 2× as much (docs/benchmarks.md, session `ingest2`).
    this.enqueueMessage = sqlite.prepare(`INSERT INTO deliveries (account_id, connector, message_id, kind, chat_id, created, seq, status, attempts, next_attempt_at, updated_at)
      VALUES (?, ?, ?, 'message', ?, ?, ?,
        CASE WHEN EXISTS (SELECT 1 FROM reply_sends r WHERE r.account_id = ? AND r.avito_message_id = ?) THEN 'skipped' ELSE 'pending' END, 0, ?, ?)
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

  /**
   * Stores messages once per (account, message id); a known message now `deleted` is updated in
   * place. One single-row INSERT per message on purpose: multi-row INSERTs of 50 (and their
   * deliveries by one INSERT … SELECT) were 1.2–1.5× slower with ids in random order, as Avito's
   * are — a statement that may stop halfway keeps a statement journal of every page it touches,
   * and random ids touch many (docs/benchmarks.md, session `ingest2`).
   */
  insertMessages(rows: readonly NewMessage[]): { inserted: NewMessage[]; deleted: string[] } {
    const inserted: NewMessage[] = [];
    const deleted: string[] = [];
    const now = Date.now();
    for (const row of rows) {
      const res = this.insertMessage.run(
        row.account_id, row.message_id, row.chat_id, row.author_id, row.direction, row.type, row.created, row.text,
        row.content, row.quote, row.flow_id, row.bot_name, row.is_own, row.voice_id, row.source, row.inserted_at,
      );
      if (res.changes > 0) {
        inserted.push(row);
        if (row.voice_id) this.registerVoice.run(row.account_id, row.voice_id);
        for (const connector of this.routes(row.account_id)) {
          this.enqueueMessage.run(row.account_id, connector, row.message_id, row.chat_id, row.created, res.lastInsertRowid, row.account_id, row.message_id, now, now);
        }
      } else if (row.type === 'deleted' && this.markDeleted.run(row.content, now, row.account_id, row.message_id).changes > 0) {
        deleted.push(row.message_id);
        this.enqueueDeletion.run({ account: row.account_id, message: row.message_id, now });
      }
    }
    return { inserted, deleted };
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
