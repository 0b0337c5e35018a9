import type Database from 'better-sqlite3';
import { GroupCommit, type WriteSync } from './group-commit.js';
import type { ChatWrite, ChatWriteResult, CursorMove, Ingest, WebhookMessage } from './ledger.js';
import { IngestStatements } from './statements.js';
import type { NewChat, NewMessage } from './tables.js';

/**
 * A poll's chat writes (ChatWrite.more) wait up to this long for each other, or until this many
 * rows wait. 200 one-chat commits of 100 messages cost 610–720 ms CPU and 2.2–3.5 s on the loaded
 * bench machine, 20 commits of 1,000 rows 430–470 ms and 1.7–2.0 s (docs/benchmarks.md): the
 * message-id index is in random order, so each commit rewrote most of its leaf pages to the WAL.
 * 1,000 rows hold the event loop for ≈ 10–25 ms, short beside a webhook's 2 s.
 */
const CHAT_GROUP_WINDOW_MS = 100;
const CHAT_GROUP_MAX_ROWS = 1000;

/**
 * The SQLite ingest paths: cached prepared statements run synchronously inside one write
 * transaction, and writes submitted in the same tick share a commit (group commit).
 */
export class SqliteIngest implements Ingest {
  private readonly s: IngestStatements;
  private readonly commit: GroupCommit;
  /** Chat writes of a poll: grouped over a window (fewer commits, each index page written once per group). */
  private readonly chatCommit: GroupCommit;
  private readonly setCursorStmt: Database.Statement;

  constructor(
    sqlite: Database.Database,
    private readonly writeSync: WriteSync,
    private readonly readSync: <T>(fn: () => T) => Promise<T>,
    routes: (accountId: string) => readonly string[],
  ) {
    this.s = new IngestStatements(sqlite, routes);
    this.commit = new GroupCommit(writeSync);
    this.chatCommit = new GroupCommit(writeSync, { windowMs: CHAT_GROUP_WINDOW_MS, maxWeight: CHAT_GROUP_MAX_ROWS });
    this.setCursorStmt = sqlite.prepare(`INSERT INTO cursors (account_id, name, value, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (account_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`);
  }

  knownMessageIds(accountId: string, chatId: string, ids: readonly string[]): Promise<Set<string>> {
    return this.readSync(() => this.s.known(accountId, chatId, ids));
  }

  writeChat(accountId: string, w: ChatWrite): Promise<ChatWriteResult> {
    // The chat's row, messages and sync mark are in one transaction, alone or in a group.
    return this.chatCommit.run(
      () => {
        this.s.upsertChat(w.row);
        const r = this.s.insertMessages(w.messages);
        this.s.markSynced(accountId, w.chatId, w.updated);
        return r;
      },
      { weight: w.messages.length + 1, wait: w.more === true },
    );
  }

  async upsertChats(rows: readonly NewChat[], cursor?: CursorMove): Promise<void> {
    if (rows.length === 0 && !cursor) return;
    await this.writeSync(() => {
      for (const r of rows) this.s.upsertChat(r);
      if (cursor) this.setCursorStmt.run(cursor.accountId, cursor.name, cursor.value, Date.now());
    });
  }

  webhookEvent(e: { source: string; accountId: string | null; eventId: string; body: string; status: string }): Promise<boolean> {
    return this.commit.run(() => this.s.recordWebhookEvent(e));
  }

  webhookMessage(w: WebhookMessage): Promise<{ newChat: boolean; newMessage: boolean } | undefined> {
    return this.commit.run(() => {
      if (!this.s.recordWebhookEvent({ source: 'avito', accountId: w.accountId, eventId: w.eventId, body: w.body, status: 'processed' })) return undefined;
      const newChat = this.s.ensureChatStub(w.accountId, w.chatId, w.chatType, w.itemId);
      const res = this.s.insertMessages([w.row]);
      return { newChat, newMessage: res.inserted.length > 0 || res.deleted.length > 0 };
    });
  }

  async replyPartSent(replyId: number, part: number, row: NewMessage): Promise<void> {
    await this.writeSync((sqlite) => {
      // The link first: the message's delivery rows then see it is an echo (skipped).
      sqlite.prepare(`UPDATE reply_sends SET status = 'sent', avito_message_id = ?, updated_at = ? WHERE reply_id = ? AND part = ?`).run(row.message_id, Date.now(), replyId, part);
      this.s.insertMessages([row]);
    });
  }
}
