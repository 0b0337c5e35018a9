import { createHash } from 'node:crypto';
import type { LedgerDb } from './ledger.js';

/** The stored form of a session id or OAuth state: its SHA-256, so the ledger holds no live secret. */
function hashOf(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/** A console session as the ledger keeps it. */
export interface StoredSession {
  csrf: string;
  expiresAt: number;
}

export async function saveConsoleSession(db: LedgerDb, id: string, s: StoredSession, now: number): Promise<void> {
  // Expired sessions and states go with each login: both tables stay as small as the live ones.
  await db.deleteFrom('console_sessions').where('expires_at', '<=', now).execute();
  await db.deleteFrom('oauth_states').where('expires_at', '<=', now).execute();
  await db.insertInto('console_sessions').values({ id_hash: hashOf(id), csrf: s.csrf, created_at: now, expires_at: s.expiresAt }).execute();
}

/**
 * The live session with this id, its expiry moved to `renewTo` (any process may serve the next
 * request); undefined when unknown or expired.
 */
export async function touchConsoleSession(db: LedgerDb, id: string, now: number, renewTo: number): Promise<StoredSession | undefined> {
  const row = await db
    .updateTable('console_sessions')
    .set({ expires_at: renewTo })
    .where('id_hash', '=', hashOf(id))
    .where('expires_at', '>', now)
    .returning(['csrf', 'expires_at'])
    .executeTakeFirst();
  return row ? { csrf: row.csrf, expiresAt: row.expires_at } : undefined;
}

export async function deleteConsoleSession(db: LedgerDb, id: string): Promise<void> {
  await db.deleteFrom('console_sessions').where('id_hash', '=', hashOf(id)).execute();
}

/** A pending OAuth connect as the ledger keeps it. */
export interface StoredOAuthState {
  provider: string;
  accountId: string;
  redirectUri: string;
  expiresAt: number;
}

export async function saveOAuthState(db: LedgerDb, state: string, p: StoredOAuthState): Promise<void> {
  await db.insertInto('oauth_states').values({ state_hash: hashOf(state), provider: p.provider, account_id: p.accountId, redirect_uri: p.redirectUri, expires_at: p.expiresAt }).execute();
}

/**
 * Takes a state in one statement (deleted and returned), so it is used at most once even when
 * two processes get the same callback at the same time.
 */
export async function takeOAuthState(db: LedgerDb, state: string): Promise<StoredOAuthState | undefined> {
  const row = await db
    .deleteFrom('oauth_states')
    .where('state_hash', '=', hashOf(state))
    .returning(['provider', 'account_id', 'redirect_uri', 'expires_at'])
    .executeTakeFirst();
  return row ? { provider: row.provider, accountId: row.account_id, redirectUri: row.redirect_uri, expiresAt: row.expires_at } : undefined;
}
