import type { LedgerDb } from './database.js';

/** One hour of traffic: buyers' messages that reached the ledger, and CRM replies sent to Avito. */
export interface HourActivity {
  /** Start of the hour, epoch ms. */
  hour: number;
  messagesIn: number;
  repliesOut: number;
}

const HOUR_MS = 3_600_000;

/**
 * Messages in (written by others than the account, by their Avito `created` time) and replies
 * out (sent, by when they were sent) per hour over the last `hours` hours, oldest first, every
 * hour present. Counted here rather than in SQL so the same code runs on every dialect.
 */
export async function hourlyActivity(db: LedgerDb, accountId: string, hours: number, now = Date.now()): Promise<HourActivity[]> {
  const first = Math.floor(now / HOUR_MS) * HOUR_MS - (hours - 1) * HOUR_MS;
  const out: HourActivity[] = Array.from({ length: hours }, (_, i) => ({ hour: first + i * HOUR_MS, messagesIn: 0, repliesOut: 0 }));
  const slot = (ms: number) => out[Math.floor((ms - first) / HOUR_MS)];
  const messages = await db
    .selectFrom('messages')
    .select('created')
    .where('account_id', '=', accountId)
    .where('is_own', '=', 0)
    .where('created', '>=', Math.floor(first / 1000))
    .execute();
  for (const m of messages) {
    const s = slot(m.created * 1000);
    if (s) s.messagesIn++;
  }
  const replies = await db
    .selectFrom('replies')
    .select('updated_at')
    .where('account_id', '=', accountId)
    .where('status', '=', 'sent')
    .where('updated_at', '>=', first)
    .execute();
  for (const r of replies) {
    const s = slot(r.updated_at);
    if (s) s.repliesOut++;
  }
  return out;
}

/** A chat as the console lists it, with the CRM conversations it has. */
export interface RecentChat {
  chatId: string;
  chatType: string | null;
  itemTitle: string | null;
  buyerName: string | null;
  /** Avito's `updated`, epoch seconds. */
  updated: number | null;
  messages: number;
  /** Per connector: the stored ConversationRef (JSON-parsed). */
  conversations: { connector: string; ref: { id: string; [key: string]: unknown } }[];
}

/** The account's most recently updated chats, newest first. */
export async function recentChats(db: LedgerDb, accountId: string, limit: number): Promise<RecentChat[]> {
  const chats = await db
    .selectFrom('chats')
    .select(['chat_id', 'chat_type', 'item_title', 'buyer_name', 'updated'])
    .where('account_id', '=', accountId)
    .orderBy('updated', 'desc')
    .orderBy('chat_id')
    .limit(limit)
    .execute();
  if (chats.length === 0) return [];
  const ids = chats.map((c) => c.chat_id);
  const counts = await db
    .selectFrom('messages')
    .select(['chat_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('account_id', '=', accountId)
    .where('chat_id', 'in', ids)
    .groupBy('chat_id')
    .execute();
  const convs = await db.selectFrom('conversations').select(['chat_id', 'connector', 'ref']).where('account_id', '=', accountId).where('chat_id', 'in', ids).execute();
  const n = new Map(counts.map((c) => [c.chat_id, Number(c.n)]));
  return chats.map((c) => ({
    chatId: c.chat_id,
    chatType: c.chat_type,
    itemTitle: c.item_title,
    buyerName: c.buyer_name,
    updated: c.updated,
    messages: n.get(c.chat_id) ?? 0,
    conversations: convs.filter((x) => x.chat_id === c.chat_id).map((x) => ({ connector: x.connector, ref: JSON.parse(x.ref) as { id: string } })),
  }));
}
