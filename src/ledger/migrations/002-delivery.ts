import { sql, type Kysely } from 'kysely';
import { SQLITE_TYPES, type ColumnTypes } from './column-types.js';

/**
 * Conversations (chat → CRM object), the delivery outbox, connector state, message deletions,
 * and the reply outbox (CRM → Avito) with the Avito messages each reply produced (echo links).
 */
export async function up(db: Kysely<unknown>, t: ColumnTypes = SQLITE_TYPES): Promise<void> {
  await db.schema
    .createTable('conversations')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('connector', 'text', (c) => c.notNull())
    .addColumn('chat_id', 'text', (c) => c.notNull())
    .addColumn('ref', 'text', (c) => c.notNull())
    .addColumn('created_at', t.int, (c) => c.notNull())
    .addColumn('updated_at', t.int, (c) => c.notNull())
    .addPrimaryKeyConstraint('conversations_pk', ['account_id', 'connector', 'chat_id'])
    .execute();

  // Every conversation a chat ever had (a won lead is replaced, but replies on it still count).
  await db.schema
    .createTable('conversation_links')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('connector', 'text', (c) => c.notNull())
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('chat_id', 'text', (c) => c.notNull())
    .addColumn('created_at', t.int, (c) => c.notNull())
    .addPrimaryKeyConstraint('conversation_links_pk', ['account_id', 'connector', 'conversation_id'])
    .execute();

  // Operator actions asked for in the CRM (a blacklist tag), done once.
  await db.schema
    .createTable('crm_actions')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('connector', 'text', (c) => c.notNull())
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('updated_at', t.int, (c) => c.notNull())
    .addPrimaryKeyConstraint('crm_actions_pk', ['account_id', 'connector', 'conversation_id', 'action'])
    .execute();

  await db.schema
    .createTable('deliveries')
    .addColumn('id', t.int, t.serial)
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('connector', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    // `message`: the message itself; `deletion`: a note that a delivered message was deleted on Avito.
    .addColumn('kind', 'text', (c) => c.notNull().defaultTo('message'))
    .addColumn('chat_id', 'text', (c) => c.notNull())
    .addColumn('created', t.int, (c) => c.notNull())
    .addColumn('seq', t.int, (c) => c.notNull())
    // pending → leased → delivered | dead | skipped
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', t.int, (c) => c.notNull())
    .addColumn('lease_until', t.int)
    // `host:pid` of the claimer: a lease whose process is gone is free at once (same host).
    .addColumn('lease_owner', 'text')
    .addColumn('last_error', 'text')
    .addColumn('remote_id', 'text')
    .addColumn('updated_at', t.int, (c) => c.notNull())
    .addUniqueConstraint('deliveries_once', ['account_id', 'connector', 'message_id', 'kind'])
    .execute();
  await db.schema.createIndex('deliveries_due').on('deliveries').columns(['account_id', 'connector', 'status', 'chat_id', 'created', 'seq']).execute();

  await db.schema
    .createTable('connector_state')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('connector', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', t.int, (c) => c.notNull())
    .addPrimaryKeyConstraint('connector_state_pk', ['account_id', 'connector', 'key'])
    .execute();

  await db.schema
    .createTable('replies')
    .addColumn('id', t.int, t.serial)
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('connector', 'text', (c) => c.notNull())
    .addColumn('remote_id', 'text', (c) => c.notNull())
    .addColumn('chat_id', 'text', (c) => c.notNull())
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('attachments', 'text', (c) => c.notNull().defaultTo('[]'))
    // pending → sending → sent | dead; `reported` once its fate is written back to the CRM
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', t.int, (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('reported', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', t.int, (c) => c.notNull())
    .addColumn('updated_at', t.int, (c) => c.notNull())
    .addUniqueConstraint('replies_once', ['account_id', 'connector', 'remote_id'])
    .execute();

  await db.schema
    .createTable('reply_sends')
    .addColumn('reply_id', t.int, (c) => c.notNull())
    .addColumn('part', t.int, (c) => c.notNull())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    // An uploaded image's id, recorded before the send so a retry does not upload or send twice.
    .addColumn('image_id', 'text')
    // sending (recorded before the call) → sent (Avito's message id known)
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('avito_message_id', 'text')
    .addColumn('updated_at', t.int, (c) => c.notNull())
    .addPrimaryKeyConstraint('reply_sends_pk', ['reply_id', 'part'])
    .execute();
  await db.schema.createIndex('reply_sends_by_message').on('reply_sends').columns(['account_id', 'avito_message_id']).execute();

  await db.schema.alterTable('messages').addColumn('deleted_at', t.int).execute();
  await sql`CREATE INDEX messages_by_deleted ON messages (account_id, deleted_at) WHERE deleted_at IS NOT NULL`.execute(db);
}
