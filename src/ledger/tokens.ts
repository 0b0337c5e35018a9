import type { Selectable } from 'kysely';
import type { LedgerDb } from './database.js';
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


/** Forgets an account's stored tokens of one provider (`auth reset`). True when there were any. */
export async function forgetTokens(db: LedgerDb, accountId: string, provider: string): Promise<boolean> {
  const r = await db.deleteFrom('tokens').where('account_id', '=', accountId).where('provider', '=', provider).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
