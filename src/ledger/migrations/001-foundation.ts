import { sql, type Kysely } from 'kysely';
import { SQLITE_TYPES, type ColumnTypes } from './column-types.js';

/** Accounts, tokens, chats, messages, voice files, cursors, raw webhook events, settings, item errors. */
export async function up(db: Kysely<unknown>, t: ColumnTypes = SQLITE_TYPES): Promise<void> {
  await db.schema
    .createTable('accounts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('avito_user_id', 'text')
    .addColumn('name', 'text')
    .addColumn('created_at', t.int, (c) => c.notNull())
    .addColumn('updated_at', t.int, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('tokens')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('access_token', 'text', (c) => c.notNull())
    .addColumn('refresh_token', 'text')
    .addColumn('expires_at', t.int)
    .addColumn('updated_at', t.int, (c) => c.notNull())
    .addPrimaryKeyConstraint('tokens_pk', ['account_id', 'provider'])
    .execute();

  await db.schema
    .createTable('chats')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('chat_id', 'text', (c) => c.notNull())
    .addColumn('chat_type', 'text')
    .addColumn('item_id', 'text')
    .addColumn('item_title', 'text')
    .addColumn('item_url', 'text')
    .addColumn('item_price', 'text')
    .addColumn('buyer_id', 'text')
    .addColumn('buyer_name', 'text')
    .addColumn('buyer_url', 'text')
    .addColumn('created', t.int)
    .addColumn('updated', t.int)
    .addColumn('synced_updated', t.int)
    .addColumn('needs_fetch', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('raw', 'text')
    .addColumn('fetched_at', t.int)
    .addPrimaryKeyConstraint('chats_pk', ['account_id', 'chat_id'])
    .execute();
  await db.schema.createIndex('chats_by_updated').on('chats').columns(['account_id', 'updated']).execute();

  await db.schema
    .createTable('messages')
    .addColumn('seq', t.int, t.serial)
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('chat_id', 'text', (c) => c.notNull())
    .addColumn('author_id', 'text')
    .addColumn('direction', 'text')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('created', t.int, (c) => c.notNull())
    .addColumn('text', 'text')
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('quote', 'text')
    .addColumn('flow_id', 'text')
    .addColumn('bot_name', 'text')
    .addColumn('is_own', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('voice_id', 'text')
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('inserted_at', t.int, (c) => c.notNull())
    .addUniqueConstraint('messages_account_message', ['account_id', 'message_id'])
    .execute();
  await db.schema.createIndex('messages_by_chat').on('messages').columns(['account_id', 'chat_id', 'created']).execute();

  await db.schema
    .createTable('voice_files')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('voice_id', 'text', (c) => c.notNull())
    .addColumn('path', 'text')
    .addColumn('size', t.int)
    .addColumn('fetched_at', t.int)
    .addColumn('error', 'text')
    .addColumn('attempts', t.int, (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('voice_files_pk', ['account_id', 'voice_id'])
    .execute();

  await db.schema
    .createTable('cursors')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', t.int, (c) => c.notNull())
    .addPrimaryKeyConstraint('cursors_pk', ['account_id', 'name'])
    .execute();

  await db.schema
    .createTable('webhook_events')
    .addColumn('seq', t.int, t.serial)
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text')
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('received_at', t.int, (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addUniqueConstraint('webhook_events_source_event', ['source', 'event_id'])
    .execute();

  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('item_errors')
    .addColumn('id', t.int, t.serial)
    .addColumn('account_id', 'text')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('ref', 'text')
    .addColumn('error', 'text', (c) => c.notNull())
    .addColumn('at', t.int, (c) => c.notNull())
    .execute();
  await sql`CREATE INDEX item_errors_by_at ON item_errors (at)`.execute(db);
}
