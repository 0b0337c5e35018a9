import { defineConnector, z } from 'avito-crm-sync/connector';
import { __CLASS__Connector } from './connector.js';

/** The `__ID__` section of an account (env: __ENV___*). */
export const configSchema = z.object({
  /** The CRM's API base, e.g. https://crm.example.com/api. */
  baseUrl: z.string().trim().url('must be a URL like https://crm.example.com/api').transform((u) => u.replace(/\/+$/, '')),
  /** The API token. */
  token: z.string().trim().min(1),
  /** A note starting with this is a reply to send to the buyer on Avito. Default `/avito`. */
  replyPrefix: z.string().min(1).default('/avito'),
});

export type __CLASS__Config = z.output<typeof configSchema>;

/**
 * The connector's manifest. avito-sync loads it with
 * `AVITO_SYNC_CONNECTOR_MODULES=avito-sync-connector-__ID__` (or a path to this package).
 */
export default defineConnector({
  id: '__ID__',
  version: '0.1.0',
  displayName: '__ID__',
  configSchema,
  env: [
    { name: '__ENV___BASE_URL', path: ['baseUrl'], kind: 'string', describe: 'the __ID__ API base URL', enables: true },
    { name: '__ENV___TOKEN', path: ['token'], kind: 'string', describe: 'the __ID__ API token', secret: true },
    { name: '__ENV___REPLY_PREFIX', path: ['replyPrefix'], kind: 'string', describe: 'a note starting with this is sent to the buyer on Avito' },
  ],
  capabilities: { maxBatch: 50, maxConversationBatch: 50, findDelivered: true, replies: true },
  create: (ctx) => new __CLASS__Connector(ctx),
});
