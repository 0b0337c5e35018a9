import { defineConnector } from '../../src/connector-sdk/define-connector.js';
import { amoConfigSchema } from './config.js';
import { AmoConnector } from './connector.js';

/** The amoCRM (and Kommo) connector. See README.md in this folder. */
export const amocrm = defineConnector({
  id: 'amocrm',
  version: '1.0.0',
  displayName: 'amoCRM',
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
});
