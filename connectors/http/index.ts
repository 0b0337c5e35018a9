import { defineConnector } from '../../src/connector-sdk/index.js';
import { httpConfigSchema } from './config.js';
import { HttpConnector } from './connector.js';

/** The HTTP connector: any system that can receive a signed webhook. See README.md in this folder. */
export const http = defineConnector({
  id: 'http',
  version: '1.0.0',
  displayName: 'HTTP',
  env: [
    { name: 'HTTP_CONNECTOR_URL', path: ['url'], kind: 'string', describe: 'where events are POSTed (https://…)', enables: true },
    { name: 'HTTP_CONNECTOR_SECRET', path: ['secret'], kind: 'string', describe: 'whsec_ + base64 key: signs outgoing events and verifies incoming replies', secret: true },
  ],
  configSchema: httpConfigSchema,
  capabilities: {
    // Events go one request each, in order; a batch only saves the ledger writes between them.
    maxBatch: 50,
    maxConversationBatch: 250,
    findDelivered: false,
    replies: true,
    webhooks: true,
    actions: false,
    // Off on purpose: the documented event contract (README "Events", design §8.2) is
    // message.created, reply.sent, reply.failed and ping, and receivers are written against that
    // list (one that answers an unknown type with a 4xx would dead-letter it). The receiver holds
    // no name of ours to correct either: every message.created carries the chat's details as they
    // are then, so the next event after the details came already has the buyer and the item.
    updateConversations: false,
  },
  create: (ctx) => new HttpConnector(ctx),
});
