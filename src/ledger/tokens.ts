import type { Selectable } from 'kysely';
import type { Ledger, LedgerDb } from './database.js';
import type { TokensTable } from './tables.js';

export type TokenRow = Selectable<TokensTable>;

export async function getToken(db: LedgerDb, accountId: string, provider: string): Promise<TokenRow | undefined> {
  return db
    .selectFrom('tokens')
    .selectAll()
    .where('account_id', '=', accountId)
    .where('provider', '=', provider)
    .executeTakeFirst();
}

/**
 * Saves a token. A rotating refresh token must be saved before the new access token is used:
 * callers await this before returning the token to anyone.
 */
export async function saveToken(
  db: LedgerDb,
  row: { accountId: string; provider: string; accessToken: string; refreshToken: string | null; expiresAt: number | null },
): Promise<void> {
  const values = {
    access_token: row.accessToken,
    refresh_token: row.refreshToken,
    expires_at: row.expiresAt,
    updated_at: Date.now(),
  };
  await db
    .insertInto('tokens')
    .values({ account_id: row.accountId, provider: row.provider, ...values })
    .onConflict((oc) => oc.columns(['account_id', 'provider']).doUpdateSet(values))
    .execute();
}


/** Runs a token refresh with the token's row locked; what it saves goes through `db` (the same transaction). */
export type TokenLock = <T>(fn: (row: TokenRow | undefined, db: LedgerDb) => Promise<T>) => Promise<T>;

/**
 * A refresh under the token row's lock (design.md §8.5): on PostgreSQL `SELECT … FOR UPDATE` in a
 * transaction that also saves the new token, so two processes never spend one single-use refresh
 * token — the second waits for the lock, then finds the token the first saved. On SQLite (one
 * process, and a transaction would hold the only connection through the HTTP call) `fn` runs
 * without one; the provider's in-process sharing of a refresh is enough there.
 */
export function tokenLock(ledger: Pick<Ledger, 'db' | 'dialect' | 'transaction'>, accountId: string, provider: string): TokenLock {
  return async (fn) => {
    if (ledger.dialect !== 'postgres') return fn(await getToken(ledger.db, accountId, provider), ledger.db);
    return ledger.transaction(async (trx) => {
      const row = await trx.selectFrom('tokens').selectAll().where('account_id', '=', accountId).where('provider', '=', provider).forUpdate().executeTakeFirst();
      return fn(row, trx);
    });
  };
}

/** Forgets an account's stored tokens of one provider (`auth reset`). True when there were any. */
export async function forgetTokens(db: LedgerDb, accountId: string, provider: string): Promise<boolean> {
  const r = await db.deleteFrom('tokens').where('account_id', '=', accountId).where('provider', '=', provider).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
