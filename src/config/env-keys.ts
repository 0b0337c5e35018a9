import type { ConnectorDefinition } from '../connector-sdk/contract.js';

/**
 * Environment variables (design.md §4) and where each lands in the config tree.
 * Env variables describe the first account; a config file can describe many.
 * The same table maps a schema error back to the name the user actually typed.
 * The core's own keys are below; each connector declares its own (`env` in its definition).
 */
export interface EnvKey {
  env: string;
  /** Path in the config tree; `accounts.0` is the account env variables describe. */
  path: readonly (string | number)[];
  kind: 'string' | 'int' | 'list' | 'bool';
  /** One sentence: what the value is, for error messages and the README table. */
  describe: string;
  /** A credential: registered with the log scrubber. */
  secret?: boolean;
  /** The connector that declared it; setting it turns that connector on when `enables` is set. */
  connector?: { id: string; enables: boolean };
}

export const ENV_KEYS: readonly EnvKey[] = [
  { env: 'AVITO_CLIENT_ID', path: ['accounts', 0, 'avito', 'clientId'], kind: 'string', describe: "your Avito app's client_id (Avito Pro → Settings → API integration)" },
  { env: 'AVITO_CLIENT_SECRET', path: ['accounts', 0, 'avito', 'clientSecret'], kind: 'string', describe: "your Avito app's client_secret" },
  { env: 'AVITO_API_URL', path: ['accounts', 0, 'avito', 'apiUrl'], kind: 'string', describe: 'the Avito API base URL' },
  { env: 'AVITO_USER_ID', path: ['accounts', 0, 'avito', 'userId'], kind: 'string', describe: "the account's numeric Avito user id" },
  { env: 'AVITO_CHAT_TYPES', path: ['accounts', 0, 'avito', 'chatTypes'], kind: 'list', describe: 'chat types to sync: u2i, u2u, a2u, comma-separated' },
  { env: 'AVITO_AUTH_CODE', path: ['accounts', 0, 'avito', 'authCode'], kind: 'string', describe: 'an OAuth authorization code, to use the authorization_code grant instead of client_credentials' },
  { env: 'AVITO_REQUESTS_PER_SECOND', path: ['accounts', 0, 'avito', 'requestsPerSecond'], kind: 'int', describe: 'the most Avito requests per second for this account' },
  { env: 'AVITO_CONCURRENCY', path: ['accounts', 0, 'avito', 'concurrency'], kind: 'int', describe: 'the most Avito requests in flight for this account' },
  { env: 'AVITO_ITEMS_REQUESTS_PER_MINUTE', path: ['accounts', 0, 'avito', 'itemsRequestsPerMinute'], kind: 'int', describe: 'the most items-API requests per minute (Avito allows 25)' },
  { env: 'AVITO_NOTICE_CHATS', path: ['accounts', 0, 'avito', 'noticeChats'], kind: 'string', describe: "what to do with a chat that holds only Avito's own notices: skip (no lead) or open" },
  { env: 'AVITO_MARK_READ', path: ['accounts', 0, 'avito', 'markRead'], kind: 'string', describe: 'when to mark Avito chats read: never or after-delivery' },
  { env: 'AVITO_OAUTH_URL', path: ['accounts', 0, 'avito', 'oauthUrl'], kind: 'string', describe: "Avito's OAuth consent page, where the console's Connect Avito button sends the operator" },
  { env: 'AVITO_SYNC_DB', path: ['db'], kind: 'string', describe: 'the ledger: a SQLite file path, or a postgres:// URL for PostgreSQL' },
  { env: 'AVITO_SYNC_DATA_DIR', path: ['dataDir'], kind: 'string', describe: 'the folder for kept files (voice messages); default beside a SQLite ledger, ./data with PostgreSQL' },
  { env: 'AVITO_SYNC_DB_POOL', path: ['dbPool'], kind: 'int', describe: 'connections in the PostgreSQL pool of each process' },
  { env: 'AVITO_SYNC_LEASE_HEARTBEAT_SECONDS', path: ['leaseHeartbeatSeconds'], kind: 'int', describe: "seconds between a daemon's account-lease rounds (1 to 5)" },
  { env: 'AVITO_SYNC_CONNECTORS', path: ['connectors'], kind: 'list', describe: 'enabled connectors, comma-separated, or none' },
  { env: 'AVITO_SYNC_CONNECTOR_MODULES', path: ['connectorModules'], kind: 'list', describe: 'connector packages to load at start (module specifiers or paths), comma-separated' },
  { env: 'PUBLIC_URL', path: ['publicUrl'], kind: 'string', describe: 'the URL where Avito and the CRM reach this daemon' },
  { env: 'PORT', path: ['port'], kind: 'int', describe: 'the port the daemon listens on' },
  { env: 'CONSOLE_PASSWORD', path: ['consolePassword'], kind: 'string', describe: 'the password of the web console at /console (no console without it)' },
  { env: 'HOST', path: ['host'], kind: 'string', describe: 'the address the HTTP server listens on (127.0.0.1, or 0.0.0.0 for every interface)' },
  { env: 'METRICS_TOKEN', path: ['metricsToken'], kind: 'string', describe: 'a token /metrics asks for as "Authorization: Bearer <token>"' },
  { env: 'WEBHOOK_SECRET', path: ['webhookSecret'], kind: 'string', describe: 'the secret path segment of webhook URLs' },
  { env: 'LOG_LEVEL', path: ['logLevel'], kind: 'string', describe: 'the log level: fatal, error, warn, info, debug or trace' },
  { env: 'POLL_INTERVAL_SECONDS', path: ['pollIntervalSeconds'], kind: 'int', describe: 'seconds between reconciliation polls without webhooks' },
  { env: 'CRM_POLL_INTERVAL_SECONDS', path: ['crmPollIntervalSeconds'], kind: 'int', describe: 'seconds between looks for CRM replies without CRM webhooks' },
  { env: 'CRM_POLL_INTERVAL_WITH_WEBHOOKS_SECONDS', path: ['crmPollIntervalWithWebhooksSeconds'], kind: 'int', describe: 'seconds between looks for CRM replies when CRM webhooks are on' },
  { env: 'POLL_INTERVAL_WITH_WEBHOOKS_SECONDS', path: ['pollIntervalWithWebhooksSeconds'], kind: 'int', describe: 'seconds between reconciliation polls when webhooks arrive' },
  { env: 'RETENTION_DAYS', path: ['retentionDays'], kind: 'int', describe: 'days raw webhook bodies and kept voice files are kept (0 = forever)' },
];

/** `accounts[0].avito.clientId` style, for messages about a config file. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/** The core's keys and every known connector's (`ConnectorDefinition.env`, first account). */
export function envTable(known: readonly ConnectorDefinition[]): EnvKey[] {
  const table: EnvKey[] = [...ENV_KEYS];
  for (const def of known) {
    for (const v of def.env) {
      const clash = table.find((k) => k.env === v.name);
      if (clash) continue; // defineConnector/the loader reject clashes; keep the first
      table.push({
        env: v.name, path: ['accounts', 0, def.id, ...v.path], kind: v.kind, describe: v.describe,
        ...(v.secret ? { secret: true } : {}), connector: { id: def.id, enables: Boolean(v.enables) },
      });
    }
  }
  return table;
}

/** The env variable that sets this path (or a part of its value), if any: first account only. */
export function envKeyForPath(path: readonly PropertyKey[], table: readonly EnvKey[] = ENV_KEYS): EnvKey | undefined {
  return table.find((k) => k.path.length <= path.length && k.path.every((p, i) => p === path[i]));
}
