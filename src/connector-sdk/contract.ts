import type { Logger } from 'pino';
import type { z } from 'zod';
import type { RequestGate, RequestGateOptions } from '../http/request-gate.js';
import type { RetryPolicy } from '../http/retry-policy.js';

/**
 * The contract a CRM connector implements. Core code calls these methods and branches on the
 * capability flags, never on a connector's id. A connector is a folder under `connectors/`,
 * declared with `defineConnector`: built in (listed in `connectors/index.ts`) or a package loaded
 * at start (`AVITO_SYNC_CONNECTOR_MODULES`).
 */

/** What the core knows about an Avito chat, as a connector needs it. */
export interface ChatInfo {
  accountId: string;
  chatId: string;
  /** `u2i` (about an item), `u2u` (profile chat), `a2u`, or null when unknown. */
  chatType: string | null;
  item: { id: string | null; title: string | null; url: string | null; price: string | null };
  buyer: { id: string | null; name: string | null; url: string | null };
  /** `https://www.avito.ru/profile/messenger/channel/<chat id>`: the chat in Avito's web messenger. */
  chatUrl: string;
}

/** Who wrote a message, as the CRM should show it. */
export type MessageAuthor =
  | { kind: 'buyer'; name: string | null }
  | { kind: 'seller' }
  | { kind: 'bot'; name: string; flowId: string | null }
  /** Avito's own platform notice ("[Системное сообщение] …"): neither buyer, seller nor a bot. */
  | { kind: 'notice' }
  | { kind: 'reply' };

/** One ledger message to deliver. */
export interface OutgoingMessage {
  messageId: string;
  chatId: string;
  /** Epoch seconds (Avito's). */
  created: number;
  /** Avito's type: text, image, voice, link, item, location, call, deleted, system, or a newer one. */
  type: string;
  author: MessageAuthor;
  text: string | null;
  /** The raw Avito content (validated leniently), for media and structured types. */
  content: Record<string, unknown>;
  /** A link to the kept voice file when the daemon serves it (PUBLIC_URL), else null. */
  voiceUrl: string | null;
  /** The buyer's first message in this chat: connectors may add the chat's context to it. */
  first: boolean;
}

/**
 * Where a chat lives in the CRM (e.g. a contact id and a deal id). Opaque to the core,
 * stored in the ledger as JSON; `id` names the CRM object messages go to.
 */
export interface ConversationRef {
  id: string;
  [key: string]: unknown;
}

export interface ConversationRequest {
  chat: ChatInfo;
  /** The conversation the ledger holds for this chat, if any. */
  previous: ConversationRef | undefined;
  /** A buyer message is waiting: a closed conversation (won/lost deal) gets a new one. */
  buyerWrote: boolean;
}

export type ItemResult<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * A conversation that was made before its chat's details arrived (a chat known only from an
 * Avito webhook, whose buyer and item Avito gave later than the dispatcher waits), to be named
 * after them now (see `updateConversations`).
 */
export interface ConversationUpdate {
  /** The conversation as the ledger holds it (what `ensureConversations` returned). */
  conversation: ConversationRef;
  /** The chat with its details, as the ledger has them now. */
  chat: ChatInfo;
}

/** One message to deliver into its conversation. */
export interface DeliveryItem {
  conversation: ConversationRef;
  message: OutgoingMessage;
  chat: ChatInfo;
}

export interface AccessCheck {
  check: string;
  verdict: 'ok' | 'warn' | 'fail';
  detail: string;
  action?: string;
}

/** A manager's reply found in the CRM, to send to the buyer on Avito. */
export interface IncomingReply {
  /** The CRM's id of the reply (e.g. a note id): a reply is taken once per id. */
  remoteId: string;
  /**
   * The conversation (ConversationRef.id) it was written in. A connector whose replies name the
   * Avito chat instead (e.g. the HTTP connector) sets `chatId` and leaves this empty.
   */
  conversationId: string;
  /** The Avito chat the reply is for, when the CRM names the chat rather than a conversation. */
  chatId?: string;
  /** The text to send, without the reply prefix. */
  text: string;
  /** Images to send, where the connector can read them. */
  attachments: { url: string; name: string; mime: string }[];
  /** When it was written (epoch seconds). */
  createdAt: number;
}

/** A reply the buyer read on Avito (see `markRead`). */
export interface ReadReceipt {
  conversation: ConversationRef;
  remoteId: string;
  /** When the buyer read it (epoch ms). */
  readAt: number;
}

export type ReplyOutcome = { sent: true; parts: number } | { sent: false; reason: string };

/**
 * Where a connector's first look for replies or actions starts when it has no cursor yet
 * (invariant 7): taken from the data — when this ledger created its first conversation in the
 * CRM, less a margin for clock skew — never from "now", so a reply written before the first look
 * (during a backfill, while the daemon was down) is still found.
 */
export interface PollStart {
  /** Epoch seconds. */
  since: number;
}

/**
 * An item a connector could not read (invariant 8): the core records it with its reason (visible
 * in `status` and `/metrics`), skips it, and the cursor moves past it.
 */
export interface SkippedItem {
  /** What it was, in the CRM's words: e.g. `note 123`. */
  ref: string;
  reason: string;
}

/** An operator action asked for in the CRM (e.g. a blacklist tag on a lead). */
export interface CrmAction {
  conversationId: string;
  action: 'blacklist';
}

/**
 * A CRM's call to `POST /webhooks/<connector id>/<WEBHOOK_SECRET>`: the raw body and every
 * header (names lower-cased), so a connector can check a signature over the exact bytes.
 */
export interface WebhookRequest {
  /** The HTTP method (the routes take POST). Set by the core; absent in requests a test builds. */
  method?: string;
  body: Buffer;
  headers: Readonly<Record<string, string>>;
  contentType: string;
  /**
   * On a `webhookAliases` route (`POST /webhooks/<alias>/<token>`), the last path segment: the
   * CRM's own routing id (e.g. a channel's scope id). Not a secret: the connector authenticates
   * the call itself (a signature). Absent on `/webhooks/<connector id>/<WEBHOOK_SECRET>`.
   */
  pathToken?: string;
}

/**
 * A connector's answer to a webhook. Refused: the core answers `status` (4xx) and stores nothing.
 * Accepted: the core stores `replies` (each once per `remoteId`) before it answers, 202 when one
 * was new, else 200; then it awaits `later` (reads the webhook only hinted at, coalesced by the
 * connector) and stores what that returns.
 */
export type WebhookVerdict =
  | { accepted: false; status: 400 | 401 | 403 | 404 | 409 | 413 | 422; reason: string }
  | { accepted: true; replies?: IncomingReply[]; later?: () => Promise<IncomingReply[]> };

/** Why and until when (epoch ms) a connector stopped talking to its CRM for one account. */
export interface PauseState {
  until: number;
  reason: string;
}

/** Services the core gives a connector instance. */
export interface ConnectorContext<Config> {
  accountId: string;
  config: Config;
  log: Logger;
  /** A small key-value store in the ledger for this connector and account (rotating tokens, ids). */
  store: ConnectorStore;
  /**
   * Stops all traffic to the CRM for this account until `until` (epoch ms; `Infinity` until an
   * operator resumes it): a ban, an overload, a 410. `status` and `/healthz` show `reason`.
   */
  pause(until: number, reason: string): Promise<void>;
  /** The pause in force, if any. */
  paused(): Promise<PauseState | undefined>;
  /** Lifts a pause (the CRM answered again). */
  resume(): Promise<void>;
  /** Called when the connector learns a secret (a token) so logs never show it. */
  registerSecret(value: string | undefined | null): void;
  /**
   * The CRM's per-account rate limit as a gate: `await gate.wait()` before each request,
   * `gate.holdFor(ms)` after a 429. One gate per `name` for this account and connector, shared by
   * every daemon on the same PostgreSQL ledger (a CRM counts requests per account, not per
   * process); in-process on SQLite. Connectors use this rather than a gate of their own. Always
   * given by the core; a context built by hand in a connector's own test may leave it out (then
   * fall back to `new LocalRequestGate(…)`).
   */
  requestGate?(options: RequestGateOptions): RequestGate;
  /** Overrides for the connector's retry backoff (tests shorten it); the policy's shape stays. */
  retry?: Partial<RetryPolicy>;
}

/**
 * The connector's own key-value store. Keys starting with `status:` are shown by `avito-sync
 * status` (name without the prefix, and value), so a connector can say what mode it is in.
 */
export interface ConnectorStore extends LockedConnectorStore {
  /**
   * A locked read-modify-write, for state that must not be acted on by two processes at once — a
   * single-use OAuth refresh token above all (several daemons on one PostgreSQL ledger deliver for
   * the same account, so two can find the token stale together). Runs `fn` with `key`'s current
   * value (undefined when unset) while holding a lock on `key` that every process on the ledger
   * respects: PostgreSQL, a transaction-scoped lock; SQLite, an immediate transaction. Inside
   * `fn`, read and write through its `store` argument (in the lock's transaction; the outer store
   * would wait for the lock on SQLite): what `fn` writes commits when it resolves and is rolled
   * back when it throws. A second caller waits (at most 60 s) and then sees the first one's
   * writes, so it re-reads and decides again: "refresh only if the token is still the stale one I
   * saw, else use the one just stored". The lock is held while `fn` runs, remote calls included:
   * keep `fn` to the one call that must not run twice (on SQLite the process's other ledger work
   * waits meanwhile). Not re-entrant: never call `update` inside `fn`.
   */
  update<T>(key: string, fn: (current: string | undefined, store: LockedConnectorStore) => Promise<T>): Promise<T>;
}

/** The store without `update`: the plain reads and writes (and `update`'s view inside its lock). */
export interface LockedConnectorStore {
  get(key: string): Promise<string | undefined>;
  /** Durable when the promise resolves (a rotated refresh token must be saved before use). */
  set(key: string, value: string): Promise<void>;
  /** Removes every key starting with `prefix`. */
  deletePrefix(prefix: string): Promise<void>;
}

/** A connector's capabilities. Defaults (see `defineConnector`) are the most conservative. */
export interface ConnectorCapabilities {
  /** Most messages one `deliver` call may take. Default 1. */
  maxBatch: number;
  /** Most conversations one `ensureConversations` call may take. Default 1. */
  maxConversationBatch: number;
  /**
   * `findDelivered` can tell what already reached the CRM, so a retry after a crash does not
   * send twice (invariant 2). Default false: without it, delivery is at-least-once.
   */
  findDelivered: boolean;
  /** Managers reply from the CRM: `pollReplies` and `reportReplies` exist. Default false. */
  replies: boolean;
  /** The CRM can call the daemon (`webhook`, `matchesWebhook`, `ensureWebhook`). Default false. */
  webhooks: boolean;
  /** Operator actions from the CRM (`pollActions`, `reportAction`). Default false. */
  actions: boolean;
  /**
   * The CRM shows when the buyer read a reply: `markRead` exists, and the core looks at the chats
   * of recently sent replies on Avito to see them read. Default false (no extra Avito reads).
   */
  readReceipts: boolean;
  /**
   * `updateConversations` exists: a conversation made before its chat's details arrived (the
   * buyer's name, the item's title) is named after them once they come. Without it, such a
   * conversation keeps the names it was made with, and the core remembers nothing about it.
   * Default false.
   */
  updateConversations: boolean;
}

/**
 * A CRM that connects by OAuth's authorization_code grant: the console's connect button sends the
 * operator to `authorizeUrl`, and the callback (`PUBLIC_URL/oauth/<connector id>/callback`, after
 * the console has checked its single-use `state`) hands the code to `exchangeCode` at once.
 */
export interface ConnectorOAuth {
  /** The CRM's consent page for this integration, with `state` and the callback URL in it. */
  authorizeUrl(p: { state: string; redirectUri: string }): string;
  /**
   * Exchanges the callback's code for tokens and keeps them (`ctx.store`) before resolving; the
   * instance then works without a restart. `query` is the whole callback query (a CRM may name the
   * account's host in `referer`). Throws a RemoteApiError when the CRM refuses the code.
   */
  exchangeCode(p: { code: string; query: Readonly<Record<string, string>>; redirectUri: string }): Promise<void>;
  /** Whether the instance has credentials to work with; the console offers to connect when not. */
  connected(): Promise<boolean>;
}

export interface ConnectorInstance {
  /**
   * This instance's own limits when its config lowers the definition's (e.g. notes per request,
   * `readReceipts: false` in a mode that cannot show them, or `updateConversations: false` in a
   * mode that cannot rename its conversations).
   */
  readonly limits?: Partial<Pick<ConnectorCapabilities, 'maxBatch' | 'maxConversationBatch'>> & { readonly readReceipts?: false; readonly updateConversations?: false };

  /** Checks credentials, configured ids (pipeline, status, user) and tokens; one verdict each. */
  checkAccess(): Promise<AccessCheck[]>;

  /**
   * Makes sure each chat has its CRM conversation (e.g. a contact per buyer, reused across
   * chats, and a deal per chat). Must be idempotent: given `previous`, return it unless it is
   * closed and the buyer wrote again (then a new one). At most `maxConversationBatch` items.
   * Results are in the same order as the requests.
   */
  ensureConversations(requests: readonly ConversationRequest[]): Promise<ItemResult<ConversationRef>[]>;

  /**
   * Names conversations after their chats' details (capability `updateConversations`). Called
   * once per conversation that `ensureConversations` made while its chat was known only from a
   * webhook (no buyer name, no item title), as soon as the details are in the ledger. Update only
   * what the connector itself set from the missing details (e.g. a lead's name, a contact's name
   * that is still the placeholder): what a manager changed in the meantime stays. Must be
   * idempotent: the core calls again after a crash or a transient failure. At most
   * `maxConversationBatch` items; results in the same order. A failure of one item is that item's
   * result (transient: the core tries again later with backoff; permanent: recorded and given up);
   * a failure of the whole call throws.
   */
  updateConversations?(updates: readonly ConversationUpdate[]): Promise<ItemResult<void>[]>;

  /**
   * Delivers messages, in the given order (the core keeps each chat's order). At most
   * `maxBatch` items. Returns, per item, the CRM's id for what was created. A failure of the whole
   * call throws; a failure of one item is that item's result.
   */
  deliver(items: readonly DeliveryItem[]): Promise<ItemResult<{ remoteId: string }>[]>;

  /**
   * For items that may have been delivered before a crash: which already are in the CRM
   * (by a marker the connector wrote). Map of message id → remote id. Only called when
   * `capabilities.findDelivered` is true.
   */
  findDelivered(items: readonly DeliveryItem[]): Promise<Map<string, string>>;

  /** Releases resources (timers, sockets). */
  close(): Promise<void>;

  /** A link to the conversation in the CRM's web interface, for the console. Default: no link. */
  conversationUrl?(ref: ConversationRef): Promise<string | undefined>;

  /** Present when the operator can connect this CRM from the console (OAuth). Default absent. */
  readonly oauth?: ConnectorOAuth;

  /**
   * Forgets cached ids of CRM objects (contacts, fields) before `replay` projects the ledger into
   * a new or changed CRM; credentials stay.
   */
  forgetCrmObjects?(): Promise<void>;

  // ---- replies (capability `replies`) --------------------------------------------------------

  /**
   * Replies written since `cursor` (opaque to the core, taken from the data). Without a cursor,
   * from `start.since` (invariant 7: never from "now"). Returns the next cursor. Notes without the
   * reply prefix are never returned; a note that cannot be read is returned in `skipped` (with
   * its reason) and the cursor still moves past it (invariant 8).
   */
  pollReplies?(cursor: string | undefined, start?: PollStart): Promise<{ replies: IncomingReply[]; cursor: string | undefined; skipped?: SkippedItem[] }>;

  /**
   * A call to `POST /webhooks/<connector id>/<secret>` (capability `webhooks`): verify it (a
   * signature over `req.body`), then say what it carries. Never throws for bad input: refuse it.
   */
  webhook?(req: WebhookRequest): Promise<WebhookVerdict>;

  /**
   * With several accounts, which instance a webhook is for: true when this one's CRM account sent
   * it (e.g. an account id in the body, `data.account_id`). Without it, a
   * webhook goes to the connector's only instance, or is refused when there are several.
   */
  matchesWebhook?(req: WebhookRequest): boolean;

  /**
   * Whether this instance serves the definition's alias route `POST /webhooks/<alias>/<token>`.
   * That route carries no WEBHOOK_SECRET, so an instance saying yes must verify the CRM's
   * signature on every call in `webhook(req)`. Default false: an alias call never reaches an
   * instance that does not say so (e.g. a connector mode whose CRM does not sign its webhooks).
   */
  servesAlias?(alias: string): boolean;

  /** Makes sure the CRM calls `url` when a reply may have been written (capability `webhooks`). */
  ensureWebhook?(url: string): Promise<void>;

  /** Writes each reply's fate back into its conversation, briefly, without repeating its text. */
  reportReplies?(items: readonly { conversation: ConversationRef; remoteId: string; outcome: ReplyOutcome }[]): Promise<void>;

  /**
   * The buyer read these replies on Avito (capability `readReceipts`): show it in the CRM.
   * `remoteId` is the reply's CRM id, as `pollReplies` gave it; `readAt` is epoch ms. Each is
   * given once after it succeeds; a throw gives the whole call again later.
   */
  markRead?(items: readonly ReadReceipt[]): Promise<void>;

  // ---- operator actions (capability `actions`) -----------------------------------------------

  /** Operator actions asked for since `cursor` (e.g. a blacklist tag); without one, from `start.since` (invariant 7). */
  pollActions?(cursor: string | undefined, start?: PollStart): Promise<{ actions: CrmAction[]; cursor: string | undefined; skipped?: SkippedItem[] }>;

  /** Tells the CRM an action was carried out (or why not). */
  reportAction?(conversation: ConversationRef, action: CrmAction['action'], outcome: { done: true } | { done: false; reason: string }): Promise<void>;
}

/**
 * An environment variable the connector reads (env variables describe the first account). The
 * core's config loader, `doctor`, the README table and error messages take these from here.
 */
export interface ConnectorEnvVar {
  /** e.g. `MYCRM_BASE_URL`. Upper-case letters, digits and `_`. */
  name: string;
  /** Path inside the connector's config section, e.g. `['baseUrl']`. */
  path: readonly (string | number)[];
  /** How the text is read: `list` splits on commas; `int` and `bool` are coerced by the schema. */
  kind: 'string' | 'int' | 'list' | 'bool';
  /** One sentence: what the value is (error messages and help). */
  describe: string;
  /** A credential: registered with the log scrubber, never printed. Default false. */
  secret?: boolean;
  /** Setting this variable turns the connector on when AVITO_SYNC_CONNECTORS is not set. Default false. */
  enables?: boolean;
}

export interface ConnectorDefinition<Schema extends z.ZodType = z.ZodType> {
  /** Lower-case id: the config section name, the value in AVITO_SYNC_CONNECTORS, the webhook path segment. */
  id: string;
  version: string;
  /** Human name for messages, doctor and status (the CRM's own spelling). Default: the id. */
  displayName: string;
  /** The environment variables this connector reads. Default none. */
  env: readonly ConnectorEnvVar[];
  /**
   * Extra webhook paths for a CRM that fixes the URL itself and signs its calls: `POST
   * /webhooks/<alias>/<token>` reaches this connector's `webhook(req)` with `req.pathToken` =
   * `<token>` and no WEBHOOK_SECRET check, only on instances whose `servesAlias(alias)` is true
   * (they must verify a signature), and is answered 200 when accepted. Lower-case; must not be
   * another connector's id. Default none.
   */
  webhookAliases: readonly string[];
  /** Validates the account's config section (`accounts[i].<id>`, or the connector's env variables). */
  configSchema: Schema;
  capabilities: ConnectorCapabilities;
  create(ctx: ConnectorContext<z.output<Schema>>): ConnectorInstance;
  /** A sandbox of the CRM on loopback, for `avito-sync demo`. Optional. */
  sandbox?: (options: ConnectorSandboxOptions) => Promise<ConnectorSandbox>;
  /**
   * The modes `avito-sync demo --mode <m>` accepts for this connector's sandbox (e.g. a CRM's
   * `notes` and `chats` ways of showing messages); the first is the default. Default none.
   */
  sandboxModes: readonly string[];
}

/** What `avito-sync demo` tells a connector's sandbox before the daemon starts. */
export interface ConnectorSandboxOptions {
  /** Where the daemon will listen (`http://127.0.0.1:<port>`): a CRM that calls back goes here. */
  publicUrl: string;
  /** The daemon's WEBHOOK_SECRET: the CRM webhook URL is `<publicUrl>/webhooks/<id>/<secret>`. */
  webhookSecret: string;
  /** One of the definition's `sandboxModes`; undefined when it declares none. */
  mode: string | undefined;
}

/**
 * A connector's CRM running on 127.0.0.1 (real HTTP), which `avito-sync demo` drives: it points
 * the connector at it, plays a manager, and tells the story in the CRM's own words.
 */
export interface ConnectorSandbox {
  /** The sandbox's base URL (printed by the demo). */
  url: string;
  /** Environment variables that point this connector at the sandbox (e.g. base URL and token). */
  env: Record<string, string>;
  /** True once the daemon registered its webhook with the sandbox (when the CRM has webhooks). */
  webhookRegistered(): boolean;
  /**
   * How this CRM's calls reach the daemon, for the story, when it is not the daemon subscribing
   * (e.g. a handler the operator sets up in the CRM). Default: "and to <CRM> webhooks".
   */
  webhookStory?: string;
  /**
   * Where an Avito message landed, once it has: the conversation's id, one line about the
   * conversation (`describe`) and a short phrase for the message's place (`where`).
   */
  delivered(messageId: string): { conversation: string; describe: string; where: string } | undefined;
  /** A manager writes an internal note in a conversation (it must stay in the CRM). */
  writeInternal(conversation: string, text: string): void;
  /**
   * A manager answers the buyer from a conversation (adding whatever marks a reply in this CRM).
   * Returns a line for the story and the text the buyer will get.
   */
  writeReply(conversation: string, text: string): { story: string; reply: string };
  /** The connector wrote the reply's fate back into the conversation. */
  replyOutcomeWritten(conversation: string): boolean;
  /** What the CRM holds now, in a few words ("3 leads, 2 contacts, 9 notes"). */
  summary(): string;
  stop(): Promise<void>;
}
