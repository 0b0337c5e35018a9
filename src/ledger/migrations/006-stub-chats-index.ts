import { sql, type Kysely } from 'kysely';

/**
 * Chats known only from a webhook (`needs_fetch = 1`) are a handful among thousands, but the
 * dispatcher asks for them before and after every claim. Without an index of their own, SQLite
 * answered "stub chats and their first message" by walking every message of the account through
 * `messages_by_chat` and looking each chat up: 108 ms a call at 100,000 messages, 22 s of a
 * 100,000-message backfill. A partial index holds only the stubs, so the question costs what the
 * stubs cost. (Both dialects support partial indexes; `messages_by_deleted` is the precedent.)
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX chats_needing_fetch ON chats (account_id, chat_id) WHERE needs_fetch = 1`.execute(db);
}
