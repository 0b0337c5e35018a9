import { isDeepStrictEqual } from 'node:util';
import type { AppConfig } from './load-config.js';

/** What a config reload changes, by account id. */
export interface ReloadPlan {
  /** In the new configuration only: started. */
  added: string[];
  /** In the old configuration only: their jobs stopped. */
  removed: string[];
  /** In both with different settings: stopped, then started with the new settings. */
  changed: string[];
  unchanged: string[];
  /**
   * Settings outside `accounts` that differ (PORT, the ledger, PUBLIC_URL, the enabled
   * connectors…): a running daemon cannot change them; they take effect at the next restart.
   */
  restartKeys: string[];
}

/** Derived from the others or from the build, never compared. */
const DERIVED = new Set(['accounts', 'connectorDefinitions', 'envKeys', 'configFile']);

/** Compares two validated configurations account by account (accounts are matched by `id`). */
export function planReload(current: AppConfig, next: AppConfig): ReloadPlan {
  const before = new Map(current.accounts.map((a) => [a.id, a]));
  const after = new Map(next.accounts.map((a) => [a.id, a]));
  const plan: ReloadPlan = { added: [], removed: [], changed: [], unchanged: [], restartKeys: [] };
  for (const [id, a] of after) {
    const old = before.get(id);
    if (!old) plan.added.push(id);
    else if (isDeepStrictEqual(old, a)) plan.unchanged.push(id);
    else plan.changed.push(id);
  }
  for (const id of before.keys()) if (!after.has(id)) plan.removed.push(id);
  const keys = new Set([...Object.keys(current), ...Object.keys(next)]);
  for (const k of keys) {
    if (DERIVED.has(k)) continue;
    if (!isDeepStrictEqual((current as unknown as Record<string, unknown>)[k], (next as unknown as Record<string, unknown>)[k])) plan.restartKeys.push(k);
  }
  return plan;
}
