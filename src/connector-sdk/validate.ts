import type { ConnectorDefinition } from './contract.js';

/**
 * Why `value` is not a usable ConnectorDefinition (what `defineConnector` returns), or undefined
 * when it is. Checked for connector modules loaded at start, whose types nobody compiled
 * against ours.
 */
export function definitionProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return `its default export is ${value === null ? 'null' : typeof value}, not a connector definition (export default defineConnector({...}))`;
  const d = value as Partial<Record<keyof ConnectorDefinition, unknown>>;
  if (typeof d.id !== 'string' || !/^[a-z][a-z0-9-]*$/.test(d.id)) return 'its `id` is missing or not lower-case letters, digits and -';
  if (typeof d.version !== 'string') return `connector ${d.id}: \`version\` is missing`;
  if (typeof d.create !== 'function') return `connector ${d.id}: \`create\` is not a function`;
  const schema = d.configSchema as { safeParse?: unknown } | undefined;
  if (typeof schema?.safeParse !== 'function') return `connector ${d.id}: \`configSchema\` is not a zod schema`;
  const caps = d.capabilities as Record<string, unknown> | undefined;
  if (typeof caps !== 'object' || caps === null) return `connector ${d.id}: \`capabilities\` is missing (declare it with defineConnector)`;
  for (const k of ['maxBatch', 'maxConversationBatch'] as const) {
    if (typeof caps[k] !== 'number' || !Number.isInteger(caps[k]) || (caps[k] as number) < 1) return `connector ${d.id}: capabilities.${k} must be a whole number ≥ 1`;
  }
  for (const k of ['findDelivered', 'replies', 'webhooks', 'actions'] as const) {
    if (typeof caps[k] !== 'boolean') return `connector ${d.id}: capabilities.${k} must be true or false`;
  }
  // Added later: a module built against an older SDK leaves it out, which means false.
  if (caps.readReceipts !== undefined && typeof caps.readReceipts !== 'boolean') return `connector ${d.id}: capabilities.readReceipts must be true or false`;
  if (caps.readReceipts === true && caps.replies !== true) return `connector ${d.id}: capabilities.readReceipts needs capabilities.replies`;
  // Added later too: absent means false (a conversation keeps the names it was made with).
  if (caps.updateConversations !== undefined && typeof caps.updateConversations !== 'boolean') return `connector ${d.id}: capabilities.updateConversations must be true or false`;
  if (!Array.isArray(d.env)) return `connector ${d.id}: \`env\` must be a list (declare it with defineConnector)`;
  for (const v of d.env as unknown[]) {
    const e = v as { name?: unknown; path?: unknown; kind?: unknown; describe?: unknown };
    if (typeof e.name !== 'string' || !/^[A-Z][A-Z0-9_]*$/.test(e.name)) return `connector ${d.id}: an env variable's name is not upper-case letters, digits and _`;
    if (!Array.isArray(e.path) || e.path.length === 0) return `connector ${d.id}: env ${e.name} has no path`;
    if (!['string', 'int', 'list', 'bool'].includes(String(e.kind))) return `connector ${d.id}: env ${e.name} has kind ${String(e.kind)}, not string, int, list or bool`;
    if (typeof e.describe !== 'string') return `connector ${d.id}: env ${e.name} has no description`;
  }
  if (d.sandbox !== undefined && typeof d.sandbox !== 'function') return `connector ${d.id}: \`sandbox\` is not a function`;
  if (d.sandboxModes !== undefined && (!Array.isArray(d.sandboxModes) || d.sandboxModes.some((m) => typeof m !== 'string'))) return `connector ${d.id}: \`sandboxModes\` must be a list of names`;
  return undefined;
}
