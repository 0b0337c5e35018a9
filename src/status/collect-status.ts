import type { LedgerDb } from '../ledger/database.js';
import { listAccounts } from '../ledger/accounts.js';
import { listCursors } from '../ledger/cursors.js';
import { recentItemErrors } from '../ledger/item-errors.js';

export interface AccountStatus {
  id: string;
  avitoUserId: string | null;
  chats: number;
  messages: number;
  voicePending: number;
  cursors: Record<string, string>;
  token: { expiresAt: string | null; expired: boolean } | null;
  lastErrors: { at: string; scope: string; ref: string | null; error: string }[];
}

export interface StatusReport {
  ledger: string;
  accounts: AccountStatus[];
}

async function count(db: LedgerDb, table: 'chats' | 'messages', accountId: string): Promise<number> {
  const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).where('account_id', '=', accountId).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** What `status` shows: read from the ledger only, no remote calls. */
export async function collectStatus(db: LedgerDb, ledgerFile: string, now = Date.now()): Promise<StatusReport> {
  const accounts: AccountStatus[] = [];
  for (const a of await listAccounts(db)) {
    const token = await db.selectFrom('tokens').select(['expires_at']).where('account_id', '=', a.id).where('provider', '=', 'avito').executeTakeFirst();
    const voice = await db.selectFrom('voice_files').select((eb) => eb.fn.countAll<number>().as('n')).where('account_id', '=', a.id).where('path', 'is', null).executeTakeFirstOrThrow();
    const cursors: Record<string, string> = {};
    for (const c of await listCursors(db, a.id)) cursors[c.name] = c.value;
    accounts.push({
      id: a.id,
      avitoUserId: a.avito_user_id,
      chats: await count(db, 'chats', a.id),
      messages: await count(db, 'messages', a.id),
      voicePending: Number(voice.n),
      cursors,
      token: token ? { expiresAt: token.expires_at ? new Date(token.expires_at).toISOString() : null, expired: token.expires_at !== null && token.expires_at <= now } : null,
      lastErrors: (await recentItemErrors(db, 5, a.id)).map((e) => ({ at: new Date(e.at).toISOString(), scope: e.scope, ref: e.ref, error: e.error })),
    });
  }
  return { ledger: ledgerFile, accounts };
}
