import { defineConnector } from '../../src/connector-sdk/index.js';
import { b24ConfigSchema } from './config.js';
import { B24Connector } from './connector.js';
import { startB24DemoSandbox } from './demo-sandbox.js';

/** The Bitrix24 connector (timeline mode). See README.md in this folder. */
export const bitrix24 = defineConnector({
  id: 'bitrix24',
  version: '1.0.0',
  displayName: 'Bitrix24',
  configSchema: b24ConfigSchema,
  env: [
    { name: 'BITRIX24_WEBHOOK_URL', path: ['webhookUrl'], kind: 'string', describe: "the portal's incoming webhook, https://<portal>.bitrix24.ru/rest/<user>/<code>/", secret: true, enables: true },
    { name: 'BITRIX24_ENTITY', path: ['entity'], kind: 'string', describe: 'what an Avito chat becomes in Bitrix24: lead or deal' },
    { name: 'BITRIX24_RESPONSIBLE_ID', path: ['responsibleId'], kind: 'int', describe: "the Bitrix24 user new leads or deals are assigned to (default: the webhook's user)" },
    { name: 'BITRIX24_REPLY_PREFIX', path: ['replyPrefix'], kind: 'string', describe: 'a timeline comment starting with this is sent to the buyer on Avito' },
    { name: 'BITRIX24_APPLICATION_TOKEN', path: ['applicationToken'], kind: 'string', describe: "the application_token of the portal's outbound webhook; events without it are refused", secret: true },
  ],
  capabilities: {
    maxBatch: 250,
    maxConversationBatch: 100,
    findDelivered: true,
    replies: true,
    webhooks: true,
    // A lead (deal) made before its chat's details arrived gets its TITLE after the item (crm.*.update).
    updateConversations: true,
  },
  create: (ctx) => new B24Connector(ctx),
  sandbox: startB24DemoSandbox,
});
