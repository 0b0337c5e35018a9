import type { LedgerDb } from './database.js';

/** A small key-value store per (account, connector); the SDK's ConnectorStore has this shape. */
export interface KeyValueStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  deletePrefix(prefix: string): Promise<void>;
}

/** The pause controls of one (account, connector); the SDK's ConnectorContext has these members. */
export interface PauseControls {
  pause(until: number, reason: string): Promise<void>;
  paused(): Promise<{ until: number; reason: string } | undefined>;
  resume(): Promise<void>;
}

/** Keys every connector may set that the core reads: a connector refused by its CRM pauses. */
export const PAUSED_UNTIL = 'paused_until';
export const PAUSED_REASON = 'paused_reason';
/**
 * A connector keeps its OAuth grant (tokens, expiry) under keys with this prefix:
 * `avito-sync auth reset --connector NAME` forgets them.
 */
export const CONNECTOR_AUTH_PREFIX = 'oauth_';

/** The ledger-backed key-value store a connector gets for one account. */
export function connectorStore(db: LedgerDb, accountId: string, connector: string): KeyValueStore {
  return {
    async get(key) {
      const row = await db
        .selectFrom('connector_state')
        .select('value')
        .where('account_id', '=', accountId)
        .where('connector', '=', connector)
        .where('key', '=', key)
        .executeTakeFirst();
      return row?.value;
    },
    async set(key, value) {
      const updated_at = Date.now();
      await db
        .insertInto('connector_state')
        .values({ account_id: accountId, connector, key, value, updated_at })
        .onConflict((oc) => oc.columns(['account_id', 'connector', 'key']).doUpdateSet({ value, updated_at }))
        .execute();
    },
    async deletePrefix(prefix) {
      await db
        .deleteFrom('connector_state')
        .where('account_id', '=', accountId)
        .where('connector', '=', connector)
        .where((eb) => eb(eb.fn('substr', ['key', eb.val(1), eb.val(prefix.length)]), '=', prefix))
        .execute();
    },
  };
}

/** `until` of a pause that lasts until an operator (or the connector) lifts it. */
export const INDEFINITE = 'indefinitely';

/** A pause's end for people and JSON: an ISO time, or `indefinitely` (a 410, `pause(Infinity)`). */
export function pauseEnd(until: number): string {
  return until >= Number.MAX_SAFE_INTEGER || !Number.isFinite(new Date(until).getTime()) ? INDEFINITE : new Date(until).toISOString();
}

/** Until when (epoch ms) a connector's account is paused, and why; undefined when it is not. */
export async function pausedState(db: LedgerDb, accountId: string, connector: string, now = Date.now()): Promise<{ until: number; reason: string } | undefined> {
  const store = connectorStore(db, accountId, connector);
  const until = Number((await store.get(PAUSED_UNTIL)) ?? 0);
  if (!(until > now)) return undefined;
  return { until, reason: (await store.get(PAUSED_REASON)) ?? 'paused' };
}

/** The pause controls a connector gets in its context (`ctx.pause`, `ctx.paused`, `ctx.resume`). */
export function connectorPauses(db: LedgerDb, accountId: string, connector: string): PauseControls {
  const store = connectorStore(db, accountId, connector);
  return {
    async pause(until, reason) {
      await store.set(PAUSED_REASON, reason);
      await store.set(PAUSED_UNTIL, String(until === Infinity ? Number.MAX_SAFE_INTEGER : until));
    },
    paused: () => pausedState(db, accountId, connector),
    async resume() {
      await store.set(PAUSED_UNTIL, '0');
    },
  };
}

/** Forgets a connector's stored OAuth grant (its `oauth_*` keys) for an account. True when there was one. */
export async function forgetConnectorGrant(db: LedgerDb, accountId: string, connector: string): Promise<boolean> {
  const r = await db.deleteFrom('connector_state').where('account_id', '=', accountId).where('connector', '=', connector)
    .where((eb) => eb(eb.fn('substr', ['key', eb.val(1), eb.val(CONNECTOR_AUTH_PREFIX.length)]), '=', CONNECTOR_AUTH_PREFIX)).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
