import { defineConnector } from '../../src/connector-sdk/define-connector.js';
import { ChatsConnector } from './chats/connector.js';
import { amoConfigSchema } from './config.js';
import { AmoConnector } from './connector.js';

/** The amoCRM (and Kommo) connector. See README.md in this folder. */
export const amocrm = defineConnector({
  id: 'amocrm',
  version: '1.0.0',
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
  },
  // AMOCRM_MODE=chats puts the messages into amoCRM's chat panel (chats/); notes is the default.
  create: (ctx) => {
    if (ctx.config.mode === 'chats') return new ChatsConnector(ctx);
    // Back from chats mode: `status` no longer shows the chat channel.
    void ctx.store.deletePrefix('status:chat').catch(() => undefined);
    return new AmoConnector(ctx);
  },
});
