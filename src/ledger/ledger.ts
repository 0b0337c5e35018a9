import type { Kysely } from 'kysely';
import type { Outbox } from './outbox.js';
import type { LedgerTables, NewChat, NewMessage } from './tables.js';

/**
 * The typed query builder of the ledger. It speaks both dialects (SQLite and PostgreSQL): code
 * that builds queries with it runs on either. Raw SQL, drivers and synchronous handles stay
 * inside src/ledger.
 */
export type LedgerDb = Kysely<LedgerTables>;

export type LedgerDialect = 'sqlite' | 'postgres';

/** A fetched chat written atomically: its row, its new messages and its sync mark. */
export interface ChatWrite {
  chatId: string;
  /** The chat's `updated` these messages cover: becomes its sync mark. */
  updated: number;
  row: NewChat;
  messages: readonly NewMessage[];
  /**
   * More chat writes of the same pass are on their way (the poller still fetches other chats).
   * SQLite then lets this write wait, up to 100 ms or until 1,000 rows wait, to share one commit
   * with them; without it (default) the write commits at once, with whatever waits. The promise
   * resolves after the commit either way. PostgreSQL ignores it.
   */
  more?: boolean;
}

export interface ChatWriteResult {
  inserted: NewMessage[];
  /** Message ids that were known and are now deleted on Avito. */
  deleted: string[];
}

/** A cursor moved in the same transaction as the rows it covers (invariant 5). */
export interface CursorMove {
  accountId: string;
  name: string;
  value: string;
}

/** An Avito webhook carrying a message, stored with its raw event in one transaction. */
export interface WebhookMessage {
  accountId: string;
  eventId: string;
  body: string;
  chatId: string;
  chatType: string | null;
  itemId: string | null;
  row: NewMessage;
}

/**
 * Ingest writes: the hot paths of polling and webhooks. Every message stored here gets its
 * delivery rows (one per connector routed for its account, see `Ledger.routeDeliveries`) in the
 * same transaction, so a delivery can never be skipped by transactions committing out of order.
 * On SQLite these run on prepared statements with group commit (writes submitted in the same
 * tick share one transaction); on PostgreSQL each is one transaction on the pool.
 */
export interface Ingest {
  /** Which of `ids` of this chat are already stored. */
  knownMessageIds(accountId: string, chatId: string, ids: readonly string[]): Promise<Set<string>>;
  /** A fetched chat: row, new messages (stored once per account and id; a known one now `deleted` is updated) and sync mark. */
  writeChat(accountId: string, w: ChatWrite): Promise<ChatWriteResult>;
  /** Chat rows whose messages did not change; with `cursor`, the cursor moves in the same transaction. */
  upsertChats(rows: readonly NewChat[], cursor?: CursorMove): Promise<void>;
  /** A raw webhook event kept without a message (unknown types); false for a duplicate event id. */
  webhookEvent(e: { source: string; accountId: string | null; eventId: string; body: string; status: string }): Promise<boolean>;
  /** A webhook's message with its raw event; undefined when the event id was seen before. */
  webhookMessage(w: WebhookMessage): Promise<{ newChat: boolean; newMessage: boolean } | undefined>;
  /**
   * A part of a CRM reply reached Avito: its message id is linked to the part and the message is
   * stored (as our own, its deliveries `skipped`), so its echo is never delivered back to the CRM.
   */
  replyPartSent(replyId: number, part: number, row: NewMessage): Promise<void>;
}

/**
 * The ledger (design.md §7): SQLite by default, PostgreSQL when `AVITO_SYNC_DB` is a
 * `postgres://` URL. Everything outside src/ledger works through this boundary: the typed query
 * builder, `transaction`, the ingest paths and the outbox.
 */
export interface Ledger {
  readonly dialect: LedgerDialect;
  /** The typed query builder (both dialects). */
  readonly db: LedgerDb;
  /**
   * This process's lease owner id (`host:pid:random`, unique per process and ledger): delivery
   * and account leases carry it. On PostgreSQL it is registered in `lease_owners` and renewed
   * while the ledger is open; leases of an owner whose registration ran out are free.
   */
  readonly owner: string;
  /** Where the ledger is: the SQLite file's absolute path, or the PostgreSQL URL without its password. */
  readonly file: string;
  /** Runs `fn` in one transaction; it commits when `fn` resolves and rolls back when it throws. */
  transaction<T>(fn: (trx: LedgerDb) => Promise<T>): Promise<T>;
  readonly ingest: Ingest;
  /** The delivery outbox of one (account, connector). */
  outbox(accountId: string, connector: string): Outbox;
  /**
   * The connectors whose deliveries are created with each new message of this account (the
   * enabled ones). Messages stored while a connector was not routed are caught up by its
   * outbox (`Outbox.catchUp`).
   */
  routeDeliveries(accountId: string, connectors: readonly string[]): void;
  /** A round trip to the database (health checks); throws when it is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
