import type { Generated, Insertable, Selectable } from 'kysely';

/**
 * Ledger tables as Kysely sees them. Times we set are epoch milliseconds (`*_at`);
 * times Avito sets keep its unit, epoch seconds (`created`, `updated`).
 * Every table that holds account data has `account_id` (the configured account's id).
 */
export interface AccountsTable {
  id: string;
  avito_user_id: string | null;
  name: string | null;
  created_at: number;
  updated_at: number;
}

export interface TokensTable {
  account_id: string;
  /** `avito`, or a connector id. */
  provider: string;
  access_token: string;
  refresh_token: string | null;
  /** Epoch ms; null for tokens that do not expire (a CRM's long-lived token). */
  expires_at: number | null;
  updated_at: number;
}

export interface ChatsTable {
  account_id: string;
  chat_id: string;
  chat_type: string | null;
  item_id: string | null;
  item_title: string | null;
  item_url: string | null;
  item_price: string | null;
  buyer_id: string | null;
  buyer_name: string | null;
  buyer_url: string | null;
  created: number | null;
  updated: number | null;
  /** The chat's `updated` for which all messages were fetched: a later pass skips the chat while it matches. */
  synced_updated: number | null;
  /** 1 when only a webhook told us of the chat: its item and buyer are still to be fetched. */
  needs_fetch: number;
  raw: string | null;
  fetched_at: number | null;
}

export interface MessagesTable {
  /** Insertion order in the ledger; the delivery order within a chat uses `created`, then this. */
  seq: Generated<number>;
  account_id: string;
  message_id: string;
  chat_id: string;
  author_id: string | null;
  direction: string | null;
  type: string;
  created: number;
  text: string | null;
  content: string;
  quote: string | null;
  flow_id: string | null;
  bot_name: string | null;
  /** 1 when the account itself wrote it (author_id == user_id): a reply's echo or the seller in the app. */
  is_own: number;
  voice_id: string | null;
  /** How it first reached the ledger: poll, webhook, send. */
  source: string;
  inserted_at: number;
  /** When Avito reported the message deleted after the ledger had it (epoch ms). */
  deleted_at?: number | null;
}

export interface VoiceFilesTable {
  account_id: string;
  voice_id: string;
  path: string | null;
  size: number | null;
  fetched_at: number | null;
  error: string | null;
  attempts: number;
}

export interface CursorsTable {
  account_id: string;
  name: string;
  value: string;
  updated_at: number;
}

export interface WebhookEventsTable {
  seq: Generated<number>;
  /** `avito` or a connector id. */
  source: string;
  account_id: string | null;
  /** The sender's event id (or a hash of the body when it has none): duplicates are dropped by it. */
  event_id: string;
  received_at: number;
  body: string;
  /** stored → processed | ignored | failed */
  status: string;
  error: string | null;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface ItemErrorsTable {
  id: Generated<number>;
  account_id: string | null;
  /** What was being done: `poll.message`, `webhook`, `voice`, `deliver`… */
  scope: string;
  /** The item: a message id, a chat id, an event id. */
  ref: string | null;
  error: string;
  at: number;
}

export interface ConversationsTable {
  account_id: string;
  connector: string;
  chat_id: string;
  /** The connector's ConversationRef, as JSON. */
  ref: string;
  created_at: number;
  updated_at: number;
  /** 1: made before its chat's details arrived; the connector has yet to be told them (migration 007). */
  details_pending: Generated<number>;
  /** Failed attempts to tell the connector the details. */
  details_attempts: Generated<number>;
  /** Epoch ms: not before then (a retry's backoff); null: at once. */
  details_retry_at: number | null;
}

export interface DeliveriesTable {
  id: Generated<number>;
  account_id: string;
  connector: string;
  message_id: string;
  kind: string;
  chat_id: string;
  created: number;
  seq: number;
  status: 'pending' | 'leased' | 'delivered' | 'dead' | 'skipped';
  attempts: number;
  next_attempt_at: number;
  lease_until: number | null;
  lease_owner: string | null;
  last_error: string | null;
  remote_id: string | null;
  updated_at: number;
}

export interface ConnectorStateTable {
  account_id: string;
  connector: string;
  key: string;
  value: string;
  updated_at: number;
}

export interface RepliesTable {
  id: Generated<number>;
  account_id: string;
  connector: string;
  /** The CRM's id of the reply (e.g. a note id). */
  remote_id: string;
  chat_id: string;
  conversation_id: string;
  text: string;
  /** JSON array of { url, name, mime } the connector found on the reply. */
  attachments: string;
  status: 'pending' | 'sending' | 'sent' | 'dead';
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  reported: number;
  created_at: number;
  updated_at: number;
  /** When the buyer read the reply (ms; Avito's `read` on our message), once seen. */
  read_at: number | null;
  /** When the core last looked whether the buyer read it (ms). */
  read_checked_at: number | null;
  /** 1 once the connector was told (`markRead`). */
  read_reported: Generated<number>;
}

export interface ReplySendsTable {
  reply_id: number;
  part: number;
  account_id: string;
  kind: 'text' | 'image';
  body: string;
  image_id: string | null;
  /** planned → sending (recorded before the call) → sent (Avito's message id known) */
  status: 'planned' | 'sending' | 'sent';
  avito_message_id: string | null;
  updated_at: number;
}

export interface ConversationLinksTable {
  account_id: string;
  connector: string;
  conversation_id: string;
  chat_id: string;
  created_at: number;
}

export interface CrmActionsTable {
  account_id: string;
  connector: string;
  conversation_id: string;
  action: string;
  /** done | failed */
  status: string;
  error: string | null;
  updated_at: number;
}

/** A process that may hold leases, alive while its heartbeat keeps `expires_at` ahead. */
export interface LeaseOwnersTable {
  owner: string;
  host: string;
  pid: number;
  kind: 'daemon' | 'process';
  started_at: number;
  heartbeat_at: number;
  expires_at: number;
}

/** Which process works an account: polls Avito, refreshes its token, sends its replies. */
export interface AccountLeasesTable {
  account_id: string;
  owner: string;
  acquired_at: number;
  heartbeat_at: number;
  expires_at: number;
  previous_owner: string | null;
  previous_expires_at: number | null;
}

/** A spacing gate shared by every process: the earliest start of the next request. */
export interface RequestSlotsTable {
  key: string;
  next_at: number;
}

/** A console login (its id and CSRF token are random; only the id's SHA-256 is stored). */
export interface ConsoleSessionsTable {
  id_hash: string;
  csrf: string;
  created_at: number;
  expires_at: number;
}

/** An OAuth `state` the console issued (stored as its SHA-256), bound to one provider and account. */
export interface OAuthStatesTable {
  state_hash: string;
  provider: string;
  account_id: string;
  redirect_uri: string;
  expires_at: number;
}

export interface LedgerTables {
  console_sessions: ConsoleSessionsTable;
  oauth_states: OAuthStatesTable;
  lease_owners: LeaseOwnersTable;
  account_leases: AccountLeasesTable;
  request_slots: RequestSlotsTable;
  conversation_links: ConversationLinksTable;
  crm_actions: CrmActionsTable;
  replies: RepliesTable;
  reply_sends: ReplySendsTable;
  conversations: ConversationsTable;
  deliveries: DeliveriesTable;
  connector_state: ConnectorStateTable;
  accounts: AccountsTable;
  tokens: TokensTable;
  chats: ChatsTable;
  messages: MessagesTable;
  voice_files: VoiceFilesTable;
  cursors: CursorsTable;
  webhook_events: WebhookEventsTable;
  settings: SettingsTable;
  item_errors: ItemErrorsTable;
}

export type ChatRow = Selectable<ChatsTable>;
export type NewChat = Insertable<ChatsTable>;
export type MessageRow = Selectable<MessagesTable>;
export type NewMessage = Insertable<MessagesTable>;
