import type { z } from 'zod';
import type { ConnectorCapabilities, ConnectorContext, ConnectorDefinition, ConnectorEnvVar, ConnectorInstance, ConnectorSandbox, ConnectorSandboxOptions } from './contract.js';

/** The conservative defaults: one item per call, no way to find what was delivered. */
export const DEFAULT_CAPABILITIES: ConnectorCapabilities = {
  maxBatch: 1,
  maxConversationBatch: 1,
  findDelivered: false,
  replies: false,
  webhooks: false,
  actions: false,
  readReceipts: false,
  updateConversations: false,
};

/**
 * Declares a connector. Capabilities left out take the defaults above.
 *
 * ```ts
 * export default defineConnector({
 *   id: 'mycrm', version: '1.0.0', configSchema: z.object({ apiKey: z.string() }),
 *   env: [{ name: 'MYCRM_API_KEY', path: ['apiKey'], kind: 'string', describe: 'the API key', secret: true, enables: true }],
 *   capabilities: { maxBatch: 50 },
 *   create: (ctx) => new MyCrmConnector(ctx),
 * });
 * ```
 */
export function defineConnector<Schema extends z.ZodType>(def: {
  id: string;
  version: string;
  /** Default: the id. */
  displayName?: string;
  configSchema: Schema;
  /** Default none. */
  env?: readonly ConnectorEnvVar[];
  /** Default none. See ConnectorDefinition.webhookAliases. */
  webhookAliases?: readonly string[];
  capabilities?: Partial<ConnectorCapabilities>;
  create: (ctx: ConnectorContext<z.output<Schema>>) => ConnectorInstance;
  /** A sandbox CRM for `avito-sync demo`. Optional. */
  sandbox?: (options: ConnectorSandboxOptions) => Promise<ConnectorSandbox>;
  /** Default none. See ConnectorDefinition.sandboxModes. */
  sandboxModes?: readonly string[];
}): ConnectorDefinition<Schema> {
  if (!/^[a-z][a-z0-9-]*$/.test(def.id)) throw new Error(`connector id "${def.id}" must be lower-case letters, digits and -`);
  for (const v of def.env ?? []) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(v.name)) throw new Error(`connector ${def.id}: env variable "${v.name}" must be upper-case letters, digits and _`);
  }
  for (const a of def.webhookAliases ?? []) {
    if (!/^[a-z][a-z0-9-]*$/.test(a) || a === def.id || a === 'avito') throw new Error(`connector ${def.id}: webhook alias "${a}" must be lower-case letters, digits and -, and not a connector id`);
  }
  for (const m of def.sandboxModes ?? []) {
    if (!/^[a-z][a-z0-9-]*$/.test(m)) throw new Error(`connector ${def.id}: sandbox mode "${m}" must be lower-case letters, digits and -`);
  }
  if (def.sandboxModes?.length && !def.sandbox) throw new Error(`connector ${def.id}: sandboxModes without a sandbox`);
  return { ...def, displayName: def.displayName ?? def.id, env: def.env ?? [], webhookAliases: def.webhookAliases ?? [], sandboxModes: def.sandboxModes ?? [], capabilities: { ...DEFAULT_CAPABILITIES, ...def.capabilities } };
}
