import { defineConnector, type ConnectorEnvVar } from '../../src/connector-sdk/index.js';
import { ChatsConnector } from './chats/connector.js';
import { CHATS_ENV } from './chats/config.js';
import { startChatsSandbox } from './chats/demo-sandbox.js';
import { amoConfigSchema } from './config.js';
import { AmoConnector } from './connector.js';
import { startAmoSandbox } from './sandbox.js';

/** AMOCRM_* (design.md §4): the first account's `amocrm` section. */
const env: ConnectorEnvVar[] = [
  { name: 'AMOCRM_BASE_URL', path: ['baseUrl'], kind: 'string', describe: 'https://<subdomain>.amocrm.ru (or .kommo.com)', enables: true },
  { name: 'AMOCRM_ACCESS_TOKEN', path: ['accessToken'], kind: 'string', describe: 'the long-lived token of an amoCRM private integration', secret: true },
  { name: 'AMOCRM_CLIENT_ID', path: ['clientId'], kind: 'string', describe: "the amoCRM integration's client id (OAuth; then connect from the console)", enables: true },
  { name: 'AMOCRM_OAUTH_URL', path: ['oauthUrl'], kind: 'string', describe: "amoCRM's OAuth consent page, where the console's connect button sends the operator" },
  { name: 'AMOCRM_CLIENT_SECRET', path: ['clientSecret'], kind: 'string', describe: "the amoCRM integration's secret key (OAuth)", secret: true },
  { name: 'AMOCRM_REDIRECT_URI', path: ['redirectUri'], kind: 'string', describe: "the amoCRM integration's redirect URI (OAuth)" },
  { name: 'AMOCRM_AUTH_CODE', path: ['authCode'], kind: 'string', describe: 'the amoCRM authorization code (OAuth, used once)', secret: true },
  { name: 'AMOCRM_PIPELINE_ID', path: ['pipelineId'], kind: 'int', describe: 'the amoCRM pipeline for new leads' },
  { name: 'AMOCRM_STATUS_ID', path: ['statusId'], kind: 'int', describe: 'the amoCRM status for new leads' },
  { name: 'AMOCRM_RESPONSIBLE_USER_ID', path: ['responsibleUserId'], kind: 'int', describe: 'the amoCRM user responsible for new leads' },
  { name: 'AMOCRM_REPLY_PREFIX', path: ['replyPrefix'], kind: 'string', describe: 'a note starting with this is sent to the buyer on Avito' },
  // Chats mode (chats/config.ts): AMOCRM_MODE, AMOCRM_CHANNEL_ID, AMOCRM_CHANNEL_SECRET, AMOCRM_AMOJO_URL, AMOCRM_CHANNEL_BOT_ID.
  ...CHATS_ENV,
];

/** The amoCRM (and Kommo) connector. See README.md in this folder. */
export const amocrm = defineConnector({
  id: 'amocrm',
  version: '1.0.0',
  displayName: 'amoCRM',
  env,
  configSchema: amoConfigSchema,
  // Chats mode: amoCRM calls the URL registered with the channel, `/webhooks/amojo/<scope_id>`, signed.
  webhookAliases: ['amojo'],
  capabilities: {
    maxBatch: 250,
    maxConversationBatch: 250,
    findDelivered: true,
    replies: true,
    webhooks: true,
    actions: true,
    // Chats mode marks a reply read in the chat panel; notes mode turns it off (its `limits`).
    readReceipts: true,
    // A lead made before its chat's details arrived is renamed after the item, and its contact
    // after the buyer while it still has the placeholder name (in chats mode, the contact amojo made).
    updateConversations: true,
  },
  // AMOCRM_MODE=chats puts the messages into amoCRM's chat panel (chats/); notes is the default.
  create: (ctx) => {
    if (ctx.config.mode === 'chats') return new ChatsConnector(ctx);
    // Back from chats mode: `status` no longer shows the chat channel.
    void ctx.store.deletePrefix('status:chat').catch(() => undefined);
    return new AmoConnector(ctx);
  },
  // `demo --mode chats` shows chats mode; notes is the default.
  sandbox: (o) => (o.mode === 'chats' ? startChatsSandbox(o.publicUrl) : startAmoSandbox()),
  sandboxModes: ['notes', 'chats'],
});
