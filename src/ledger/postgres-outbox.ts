import { sql, type Transaction } from 'kysely';
import type { LedgerDb } from './ledger.js';
import { LEASE_MS, type ClaimedDelivery, type Outbox, type OutboxCounts } from './outbox.js';
import type { LedgerTables } from './tables.js';

type Trx = Transaction<LedgerTables>;

interface Row {
  id: number;
  message_id: string;
  kind: 'message' | 'deletion';
  chat_id: string;
  status: string;
  attempts: number;
  next_attempt_at: number;
  lease_until: number | null;
  lease_owner: string | null;
}

/**
 * The PostgreSQL outbox, shared by several processes. A claim is one short transaction:
 * read the candidates in chat order, lock them with `FOR UPDATE SKIP LOCKED`, and walk each
 * chat's rows in order, stopping the chat at the first row that is not due or that another
 * process holds (locked right now, or leased) — so each chat's order is kept across processes.
 * The claimed rows are leased (owner, expiry) and the transaction commits before any CRM call.
 */
export class PostgresOutbox implements Outbox {
  constructor(
    private readonly db: LedgerDb,
    private readonly run: <T>(fn: (trx: Trx) => Promise<T>) => Promise<T>,
    /** This process's lease owner id (registered in `lease_owners` while the ledger is open). */
    private readonly owner: string,
    readonly accountId: string,
    readonly connector: string,
  ) {}

  async catchUp(batch = 20_000): Promise<number> {
    const name = `enqueue:${this.connector}`;
    const delName = `enqueue-deleted:${this.connector}`;
    return this.run(async (trx) => {
      const now = Date.now();
      let added = 0;
      const from = Number((await cursor(trx, this.accountId, name)) ?? 0);
      const top = await sql<{ to: number | null }>`SELECT max(seq) AS "to" FROM (SELECT seq FROM messages WHERE account_id = ${this.accountId} AND seq > ${from} ORDER BY seq LIMIT ${batch}) s`.execute(trx);
      const to = top.rows[0]?.to ?? null;
      if (to !== null) {
        const r = await sql`INSERT INTO deliveries (account_id, connector, message_id, kind, chat_id, created, seq, status, attempts, next_attempt_at, updated_at)
          SELECT m.account_id, ${this.connector}, m.message_id, 'message', m.chat_id, m.created, m.seq,
            CASE WHEN EXISTS (SELECT 1 FROM reply_sends r WHERE r.account_id = m.account_id AND r.avito_message_id = m.message_id) THEN 'skipped' ELSE 'pending' END,
            0, ${now}, ${now}
          FROM messages m WHERE m.account_id = ${this.accountId} AND m.seq > ${from} AND m.seq <= ${Number(to)}
          ON CONFLICT (account_id, connector, message_id, kind) DO NOTHING`.execute(trx);
        added += Number(r.numAffectedRows ?? 0n);
        await setCursor(trx, this.accountId, name, String(to), now);
      }
      const delFrom = Number((await cursor(trx, this.accountId, delName)) ?? 0);
      const delTop = await sql<{ to: number | null }>`SELECT max(deleted_at) AS "to" FROM messages WHERE account_id = ${this.accountId} AND deleted_at > ${delFrom}`.execute(trx);
      const delTo = delTop.rows[0]?.to ?? null;
      if (delTo !== null) {
        const r = await sql`INSERT INTO deliveries (account_id, connector, message_id, kind, chat_id, created, seq, status, attempts, next_attempt_at, updated_at)
          SELECT m.account_id, ${this.connector}, m.message_id, 'deletion', m.chat_id, m.created, m.seq, 'pending', 0, ${now}, ${now}
          FROM messages m WHERE m.account_id = ${this.accountId} AND m.deleted_at > ${delFrom} AND m.deleted_at <= ${Number(delTo)}
            AND EXISTS (SELECT 1 FROM deliveries d WHERE d.account_id = m.account_id AND d.connector = ${this.connector} AND d.message_id = m.message_id AND d.kind = 'message' AND d.status = 'delivered')
          ON CONFLICT (account_id, connector, message_id, kind) DO NOTHING`.execute(trx);
        added += Number(r.numAffectedRows ?? 0n);
        await setCursor(trx, this.accountId, delName, String(delTo), now);
      }
      return added;
    });
  }

  async claim(limit: number, now = Date.now(), skipChat?: (chatId: string) => boolean): Promise<ClaimedDelivery[]> {
    // Owners whose registration ran out (the process died: its heartbeat stopped), looked up
    // before the transaction (it stays short): their leases are free now, not when they expire.
    const goneOwners = await this.db
      .selectFrom('deliveries as d')
      .select('d.lease_owner')
      .distinct()
      .where('d.account_id', '=', this.accountId)
      .where('d.connector', '=', this.connector)
      .where('d.status', '=', 'leased')
      .where('d.lease_owner', 'is not', null)
      .where('d.lease_owner', '!=', this.owner)
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('lease_owners as o').select('o.owner').whereRef('o.owner', '=', 'd.lease_owner').where('o.expires_at', '>=', now))))
      .execute();
    const gone = new Set(goneOwners.map((r) => r.lease_owner!));

    return this.run(async (trx) => {
      const take = limit * 2;
      // Chat order, one status at a time (the deliveries_due index gives it); merged below.
      const [pending, leased] = await Promise.all(['pending', 'leased'].map((status) =>
        sql<Row & { created: number; seq: number }>`SELECT id, message_id, kind, chat_id, status, attempts, next_attempt_at, lease_until, lease_owner, created, seq
          FROM deliveries WHERE account_id = ${this.accountId} AND connector = ${this.connector} AND status = ${status}
          ORDER BY chat_id COLLATE "C", created, seq LIMIT ${take}`.execute(trx).then((r) => r.rows)));
      const order = (a: { chat_id: string; created: number; seq: number }, b: { chat_id: string; created: number; seq: number }) =>
        a.chat_id < b.chat_id ? -1 : a.chat_id > b.chat_id ? 1 : a.created - b.created || a.seq - b.seq;
      const cuts = [pending!, leased!].filter((l) => l.length === take).map((l) => l[l.length - 1]!).sort(order);
      const upTo = cuts[0];
      const rows = [...pending!, ...leased!].filter((r) => !upTo || order(r, upTo) <= 0).sort(order);
      if (rows.length === 0) return [];
      // Lock what no other claim holds right now; the locked rows are re-read at their latest version.
      const locked = new Map<number, Row>();
      const got = await sql<Row>`SELECT id, message_id, kind, chat_id, status, attempts, next_attempt_at, lease_until, lease_owner FROM deliveries
        WHERE id = ANY(${rows.map((r) => r.id)}::bigint[]) FOR UPDATE SKIP LOCKED`.execute(trx);
      for (const r of got.rows) locked.set(Number(r.id), r);
      const out: ClaimedDelivery[] = [];
      let blockedChat: string | undefined;
      for (const seen of rows) {
        if (out.length >= limit) break;
        if (seen.chat_id === blockedChat) continue;
        const r = locked.get(Number(seen.id));
        const free = (x: Row) =>
          x.status === 'pending' ? Number(x.next_attempt_at) <= now
            : x.status === 'leased' ? Number(x.lease_until ?? 0) < now || (x.lease_owner !== null && gone.has(x.lease_owner))
              : false;
        if (!r || !free(r) || skipChat?.(r.chat_id)) {
          // Another process holds it, it is not due, or it is done already: the chat waits.
          if (!r || r.status === 'pending' || r.status === 'leased') {
            blockedChat = seen.chat_id;
          }
          continue;
        }
        out.push({ id: Number(r.id), messageId: r.message_id, kind: r.kind, chatId: r.chat_id, priorAttempts: Number(r.attempts) });
      }
      if (out.length) {
        await trx
          .updateTable('deliveries')
          .set((eb) => ({ status: 'leased', lease_until: now + LEASE_MS, lease_owner: this.owner, attempts: eb('attempts', '+', 1), updated_at: now }))
          .where('id', 'in', out.map((c) => c.id))
          .execute();
      }
      return out;
    });
  }

  async markDelivered(items: readonly { id: number; remoteId: string }[]): Promise<void> {
    if (items.length === 0) return;
    const now = Date.now();
    await this.run(async (trx) => {
      for (const i of items) {
        await trx.updateTable('deliveries').set({ status: 'delivered', remote_id: i.remoteId, lease_until: null, last_error: null, updated_at: now }).where('id', '=', i.id).execute();
      }
    });
  }

  async retryLater(items: readonly { id: number; error: string; at: number }[]): Promise<void> {
    if (items.length === 0) return;
    const now = Date.now();
    await this.run(async (trx) => {
      for (const i of items) {
        await trx.updateTable('deliveries').set({ status: 'pending', next_attempt_at: i.at, last_error: i.error.slice(0, 1000), lease_until: null, updated_at: now }).where('id', '=', i.id).execute();
      }
    });
  }

  async release(ids: readonly number[], at = Date.now()): Promise<void> {
    if (ids.length === 0) return;
    await this.db
      .updateTable('deliveries')
      .set({ status: 'pending', attempts: sql`greatest(attempts - 1, 0)`, next_attempt_at: at, lease_until: null, updated_at: Date.now() })
      .where('id', 'in', [...ids])
      .execute();
  }

  async markDead(items: readonly { id: number; error: string }[]): Promise<void> {
    if (items.length === 0) return;
    const now = Date.now();
    await this.run(async (trx) => {
      for (const i of items) {
        await trx.updateTable('deliveries').set({ status: 'dead', last_error: i.error.slice(0, 1000), lease_until: null, updated_at: now }).where('id', '=', i.id).execute();
      }
    });
  }

  async markSkipped(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.db.updateTable('deliveries').set({ status: 'skipped', lease_until: null, updated_at: Date.now() }).where('id', 'in', [...ids]).execute();
  }

  async counts(): Promise<OutboxCounts> {
    const rows = await this.db
      .selectFrom('deliveries')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('account_id', '=', this.accountId)
      .where('connector', '=', this.connector)
      .groupBy('status')
      .execute();
    const out: OutboxCounts = { pending: 0, leased: 0, delivered: 0, dead: 0, skipped: 0 };
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }
}

async function cursor(trx: Trx, accountId: string, name: string): Promise<string | undefined> {
  const row = await trx.selectFrom('cursors').select('value').where('account_id', '=', accountId).where('name', '=', name).executeTakeFirst();
  return row?.value;
}

async function setCursor(trx: Trx, accountId: string, name: string, value: string, now: number): Promise<void> {
  await trx
    .insertInto('cursors')
    .values({ account_id: accountId, name, value, updated_at: now })
    .onConflict((oc) => oc.columns(['account_id', 'name']).doUpdateSet({ value, updated_at: now }))
    .execute();
}
