import { defineConnector, type ConnectorEnvVar } from '../../src/connector-sdk/index.js';
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
];

/** The amoCRM (and Kommo) connector. See README.md in this folder. */
export const amocrm = defineConnector({
  id: 'amocrm',
  version: '1.0.0',
  displayName: 'amoCRM',
  env,
  configSchema: amoConfigSchema,
  capabilities: {
    maxBatch: 250,
    maxConversationBatch: 250,
    findDelivered: true,
    replies: true,
    webhooks: true,
    actions: true,
  },
  create: (ctx) => new AmoConnector(ctx),
  sandbox: startAmoSandbox,
});
