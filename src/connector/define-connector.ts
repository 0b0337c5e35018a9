import type { z } from 'zod';
import type { ConnectorCapabilities, ConnectorContext, ConnectorDefinition, ConnectorInstance } from './contract.js';

/** The conservative defaults: one item per call, no way to find what was delivered. */
export const DEFAULT_CAPABILITIES: ConnectorCapabilities = {
  maxBatch: 1,
  maxConversationBatch: 1,
  findDelivered: false,
  replies: false,
  webhooks: false,
  actions: false,
};

/**
 * Declares a connector. Capabilities left out take the defaults above.
 *
 * ```ts
 * export default defineConnector({
 *   id: 'mycrm', version: '1.0.0', configSchema: z.object({ apiKey: z.string() }),
 *   capabilities: { maxBatch: 50 },
 *   create: (ctx) => new MyCrmConnector(ctx),
 * });
 * ```
 */
export function defineConnector<Schema extends z.ZodType>(def: {
  id: string;
  version: string;
  configSchema: Schema;
  capabilities?: Partial<ConnectorCapabilities>;
  create: (ctx: ConnectorContext<z.output<Schema>>) => ConnectorInstance;
}): ConnectorDefinition<Schema> {
  if (!/^[a-z][a-z0-9-]*$/.test(def.id)) throw new Error(`connector id "${def.id}" must be lower-case letters, digits and -`);
  return { ...def, capabilities: { ...DEFAULT_CAPABILITIES, ...def.capabilities } };
}
