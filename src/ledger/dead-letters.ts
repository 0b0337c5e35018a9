import type { LedgerDb } from './database.js';

export interface DeadLetter {
  /** `d<n>` a delivery to a CRM, `r<n>` a reply to Avito. */
  id: string;
  kind: 'delivery' | 'reply';
  account: string;
  connector: string;
  chat: string;
  /** The Avito message id (delivery) or the CRM's reply id (reply). */
  ref: string;
  attempts: number;
  error: string | null;
  at: string;
}

/** What failed for good, newest first: deliveries to CRMs and replies to Avito. */
export async function listDeadLetters(db: LedgerDb, accountId?: string): Promise<DeadLetter[]> {
  let d = db.selectFrom('deliveries').select(['id', 'account_id', 'connector', 'chat_id', 'message_id', 'kind', 'attempts', 'last_error', 'updated_at']).where('status', '=', 'dead');
  let r = db.selectFrom('replies').select(['id', 'account_id', 'connector', 'chat_id', 'remote_id', 'attempts', 'last_error', 'updated_at']).where('status', '=', 'dead');
  if (accountId) {
    d = d.where('account_id', '=', accountId);
    r = r.where('account_id', '=', accountId);
  }
  const out: DeadLetter[] = [
    ...(await d.execute()).map((x) => ({ id: `d${x.id}`, kind: 'delivery' as const, account: x.account_id, connector: x.connector, chat: x.chat_id, ref: x.kind === 'deletion' ? `${x.message_id} (deletion)` : x.message_id, attempts: x.attempts, error: x.last_error, at: new Date(x.updated_at).toISOString() })),
    ...(await r.execute()).map((x) => ({ id: `r${x.id}`, kind: 'reply' as const, account: x.account_id, connector: x.connector, chat: x.chat_id, ref: x.remote_id, attempts: x.attempts, error: x.last_error, at: new Date(x.updated_at).toISOString() })),
  ];
  return out.sort((a, b) => b.at.localeCompare(a.at));
}

/** Puts dead letters back in line (all, or the given ids); returns how many. */
export async function retryDeadLetters(db: LedgerDb, ids: 'all' | readonly string[]): Promise<number> {
  const now = Date.now();
  const pick = (prefix: string) => (ids === 'all' ? undefined : ids.filter((i) => i.startsWith(prefix)).map((i) => Number(i.slice(1))).filter(Number.isInteger));
  const dIds = pick('d');
  const rIds = pick('r');
  let n = 0;
  if (ids === 'all' || dIds!.length) {
    let q = db.updateTable('deliveries').set({ status: 'pending', attempts: 0, next_attempt_at: now, lease_until: null, updated_at: now }).where('status', '=', 'dead');
    if (dIds) q = q.where('id', 'in', dIds);
    n += Number((await q.executeTakeFirst()).numUpdatedRows);
  }
  if (ids === 'all' || rIds!.length) {
    let q = db.updateTable('replies').set({ status: 'pending', attempts: 0, next_attempt_at: now, reported: 0, updated_at: now }).where('status', '=', 'dead');
    if (rIds) q = q.where('id', 'in', rIds);
    n += Number((await q.executeTakeFirst()).numUpdatedRows);
  }
  return n;
}
