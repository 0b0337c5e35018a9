/**
 * Environment variables (design.md §4) and where each lands in the config tree.
 * Env variables describe the first account; a config file can describe many.
 * The same table maps a schema error back to the name the user actually typed.
 */
export interface EnvKey {
  env: string;
  /** Path in the config tree; `accounts.0` is the account env variables describe. */
  path: readonly (string | number)[];
  kind: 'string' | 'int' | 'list';
  /** One sentence: what the value is, for error messages and the README table. */
  describe: string;
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
  { env: 'AMOCRM_OAUTH_URL', path: ['accounts', 0, 'amocrm', 'oauthUrl'], kind: 'string', describe: "amoCRM's OAuth consent page, where the console's connect button sends the operator" },
  { env: 'AMOCRM_BASE_URL', path: ['accounts', 0, 'amocrm', 'baseUrl'], kind: 'string', describe: 'https://<subdomain>.amocrm.ru (or .kommo.com)' },
  { env: 'AMOCRM_ACCESS_TOKEN', path: ['accounts', 0, 'amocrm', 'accessToken'], kind: 'string', describe: 'the long-lived token of an amoCRM private integration' },
  { env: 'AMOCRM_CLIENT_ID', path: ['accounts', 0, 'amocrm', 'clientId'], kind: 'string', describe: "the amoCRM integration's client id (OAuth)" },
  { env: 'AMOCRM_CLIENT_SECRET', path: ['accounts', 0, 'amocrm', 'clientSecret'], kind: 'string', describe: "the amoCRM integration's secret key (OAuth)" },
  { env: 'AMOCRM_REDIRECT_URI', path: ['accounts', 0, 'amocrm', 'redirectUri'], kind: 'string', describe: "the amoCRM integration's redirect URI (OAuth)" },
  { env: 'AMOCRM_AUTH_CODE', path: ['accounts', 0, 'amocrm', 'authCode'], kind: 'string', describe: 'the amoCRM authorization code (OAuth, used once)' },
  { env: 'AMOCRM_PIPELINE_ID', path: ['accounts', 0, 'amocrm', 'pipelineId'], kind: 'int', describe: 'the amoCRM pipeline for new leads' },
  { env: 'AMOCRM_STATUS_ID', path: ['accounts', 0, 'amocrm', 'statusId'], kind: 'int', describe: 'the amoCRM status for new leads' },
  { env: 'AMOCRM_RESPONSIBLE_USER_ID', path: ['accounts', 0, 'amocrm', 'responsibleUserId'], kind: 'int', describe: 'the amoCRM user responsible for new leads' },
  { env: 'AMOCRM_REPLY_PREFIX', path: ['accounts', 0, 'amocrm', 'replyPrefix'], kind: 'string', describe: 'a note starting with this is sent to the buyer on Avito' },
  { env: 'AVITO_SYNC_DB', path: ['db'], kind: 'string', describe: 'the ledger file (SQLite)' },
  { env: 'AVITO_SYNC_CONNECTORS', path: ['connectors'], kind: 'list', describe: 'enabled connectors, comma-separated, or none' },
  { env: 'PUBLIC_URL', path: ['publicUrl'], kind: 'string', describe: 'the URL where Avito and the CRM reach this daemon' },
  { env: 'PORT', path: ['port'], kind: 'int', describe: 'the port the daemon listens on' },
  { env: 'CONSOLE_PASSWORD', path: ['consolePassword'], kind: 'string', describe: 'the password of the web console at /console (no console without it)' },
  { env: 'WEBHOOK_SECRET', path: ['webhookSecret'], kind: 'string', describe: 'the secret path segment of webhook URLs' },
  { env: 'LOG_LEVEL', path: ['logLevel'], kind: 'string', describe: 'the log level: fatal, error, warn, info, debug or trace' },
  { env: 'POLL_INTERVAL_SECONDS', path: ['pollIntervalSeconds'], kind: 'int', describe: 'seconds between reconciliation polls without webhooks' },
  { env: 'CRM_POLL_INTERVAL_SECONDS', path: ['crmPollIntervalSeconds'], kind: 'int', describe: 'seconds between looks for CRM replies without CRM webhooks' },
  { env: 'CRM_POLL_INTERVAL_WITH_WEBHOOKS_SECONDS', path: ['crmPollIntervalWithWebhooksSeconds'], kind: 'int', describe: 'seconds between looks for CRM replies when CRM webhooks are on' },
  { env: 'POLL_INTERVAL_WITH_WEBHOOKS_SECONDS', path: ['pollIntervalWithWebhooksSeconds'], kind: 'int', describe: 'seconds between reconciliation polls when webhooks arrive' },
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

/** The env variable that sets this path (or a part of its value), if any: first account only. */
export function envKeyForPath(path: readonly PropertyKey[]): EnvKey | undefined {
  return ENV_KEYS.find((k) => k.path.length <= path.length && k.path.every((p, i) => p === path[i]));
}
