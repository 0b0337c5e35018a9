import { z } from 'zod';

/** Chat types Avito knows (messenger.json `chatTypes`). */
export const CHAT_TYPES = ['u2i', 'u2u', 'a2u'] as const;

const numericId = z
  .union([z.string(), z.number()])
  .transform((v) => String(v).trim())
  .pipe(z.string().regex(/^\d+$/, 'must be a number'));

/** An absolute http(s) URL: `localhost:8080` parses as a URL with scheme `localhost:`, so the scheme is checked too. */
const url = z
  .string()
  .trim()
  .regex(/^https?:\/\/[^/\s]+/i, 'must be an absolute URL starting with http:// or https://, like https://sync.example.com')
  .url('must be a URL like https://example.com')
  .transform((u) => u.replace(/\/+$/, ''));

export const avitoAccountSchema = z.object({
  /** Avito app client_id. Required for anything that talks to Avito. */
  clientId: z.string().trim().min(1).optional(),
  clientSecret: z.string().trim().min(1).optional(),
  /** Default `https://api.avito.ru`. */
  apiUrl: url.default('https://api.avito.ru'),
  /** Read from `GET /core/v1/accounts/self` when absent. */
  userId: numericId.optional(),
  /** Default `u2i,u2u`. */
  chatTypes: z.array(z.enum(CHAT_TYPES)).min(1).default(['u2i', 'u2u']),
  /** An authorization code: switches the grant to authorization_code (refresh token kept in the ledger). */
  authCode: z.string().trim().min(1).optional(),
  /** Default `https://avito.ru/oauth` (authorization.json): where the console's Connect Avito button goes. */
  oauthUrl: url.default('https://avito.ru/oauth'),
  /** Default 10: requests per second to Avito for this account. */
  requestsPerSecond: z.coerce.number().int().min(1).max(10_000).default(10),
  /** Default 4: requests in flight to Avito for this account. */
  concurrency: z.coerce.number().int().min(1).max(64).default(4),
  /** Default 25: `GET /core/v1/items` allows 25 requests per minute (items.json). */
  itemsRequestsPerMinute: z.coerce.number().int().min(1).max(6000).default(25),
  /** Default `never`: reading does not mark chats read unless asked. */
  markRead: z.enum(['never', 'after-delivery']).default('never'),
  /** Default `skip`: a chat holding only Avito's own notices ("leave a review") opens no lead; `open` delivers them. */
  noticeChats: z.enum(['skip', 'open']).default('skip'),
});

export const accountSchema = z.looseObject({
  /** The ledger's name for this account. Default `default`. */
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/i, 'must be letters, digits, - or _')
    .default('default'),
  avito: avitoAccountSchema.default(() => avitoAccountSchema.parse({})),
});

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export const configSchema = z.object({
  /** Default `./data/avito-sync.db`. */
  db: z.string().trim().min(1).default('./data/avito-sync.db'),
  /** Kept files (voice messages). Default: the SQLite ledger's folder, or `./data` with PostgreSQL. */
  dataDir: z.string().trim().min(1).optional(),
  /** Default 10: connections in each process's PostgreSQL pool (ignored for SQLite). */
  dbPool: z.coerce.number().int().min(1).max(200).default(10),
  /**
   * Default 5: seconds between a daemon's account-lease rounds (renew, take free accounts, hand
   * back more than a fair share). At most 5: a lease lasts 20 s un-renewed, and a holder stops
   * starting work 3 s before that. Shorter spreads the accounts sooner after a daemon joins.
   */
  leaseHeartbeatSeconds: z.coerce.number().int().min(1).max(5).default(5),
  logLevel: logLevel.default('info'),
  /** Where Avito and the CRM reach this daemon; without it, no webhooks (polling still works). */
  publicUrl: url.optional(),
  /**
   * The address the HTTP server binds. Default `127.0.0.1` (only this machine: put a reverse proxy
   * with TLS in front); the Docker image sets `0.0.0.0`.
   */
  host: z.string().trim().min(1).default('127.0.0.1'),
  /** When set, `GET /metrics` wants `Authorization: Bearer <token>`. Default: open. */
  metricsToken: z.string().trim().min(16, 'must be at least 16 characters').optional(),
  /** Default 8080. */
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Default: generated once and kept in the ledger. */
  webhookSecret: z
    .string()
    .regex(/^[A-Za-z0-9_-]{16,128}$/, 'must be 16 to 128 letters, digits, - or _')
    .optional(),
  /** Turns on the web console at `/console`; its login password. No console without it. */
  consolePassword: z.string().min(8, 'must be at least 8 characters').optional(),
  /** Enabled connectors; `none` = ledger only. Default: each connector an account configures. */
  connectors: z.array(z.string().trim().min(1)).optional(),
  /** Connector packages loaded at start: module specifiers or paths (relative to the config file). */
  connectorModules: z.array(z.string().trim().min(1)).optional(),
  /** Default 60: seconds between reconciliation polls when no webhooks are configured. */
  pollIntervalSeconds: z.coerce.number().int().min(5).max(86_400).default(60),
  /** Default 600: seconds between reconciliation polls when webhooks are on. */
  pollIntervalWithWebhooksSeconds: z.coerce.number().int().min(5).max(86_400).default(600),
  /** Default 15: seconds between looks for CRM replies (always on) without CRM webhooks. */
  crmPollIntervalSeconds: z.coerce.number().int().min(1).max(3600).default(15),
  /** Default 60: the same when the CRM calls the daemon (PUBLIC_URL set). */
  crmPollIntervalWithWebhooksSeconds: z.coerce.number().int().min(1).max(3600).default(60),
  /**
   * Default 30: days raw webhook bodies and kept voice files are kept (buyers' personal data: a
   * privacy control); voice links in the CRM stop working after as long. 0 keeps them forever.
   */
  retentionDays: z.coerce.number().int().min(0).max(3650).default(30),
  accounts: z
    .array(accountSchema)
    .min(1)
    .default(() => [accountSchema.parse({})])
    .refine((a) => new Set(a.map((x) => x.id)).size === a.length, 'account ids must be unique'),
});

export type RawConfig = z.input<typeof configSchema>;
export type AppConfigParsed = z.output<typeof configSchema>;
export type AccountConfig = z.output<typeof accountSchema>;
export type AvitoAccountConfig = z.output<typeof avitoAccountSchema>;
