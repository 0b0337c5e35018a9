import { AVITO_PAGE_LIMIT } from '../avito/client.js';
import { describeError } from '../errors.js';
import { countChats } from '../ledger/chats.js';
import { getCursor } from '../ledger/cursors.js';
import { LEASE_TTL_MS } from '../ledger/leases.js';
import { undeliveredCounts } from '../ledger/deliveries.js';
import { getSetting, setSetting } from '../ledger/settings.js';
import type { AccountRuntime, Runtime } from '../runtime.js';
import type { DispatchReport } from './dispatcher.js';
import { Delivery } from './delivery.js';
import { pollAccount, type PollReport } from './poller.js';

/** Items per `item_ids` partition; a partition that still hits the 1,100-chat cap is halved. */
export const PARTITION_ITEMS = 20;
/** Every item status the items API knows: chats about removed or old items are history too. */
const ALL_STATUSES = 'active,removed,old,blocked,rejected';

export interface BackfillOptions {
  /** Only chats updated since (epoch seconds). */
  since?: number;
  /** Fill the ledger only; deliver nothing. */
  ledgerOnly?: boolean;
  /** Fill the ledger and count what the CRM would get; write nothing to the CRM. */
  dryRun?: boolean;
  partitionItems?: number;
  onProgress?: (p: BackfillProgress) => void;
}

export interface BackfillProgress {
  account: string;
  phase: 'recent chats' | 'items' | 'partitions' | 'delivery';
  done: number;
  total: number;
  messages: number;
  unit: string;
  /** Messages delivered into the CRM so far in this run (delivery runs while the ledger fills). */
  delivered: number;
}

export interface BackfillReport {
  account: string;
  run: string;
  resumed: boolean;
  partitions: { total: number; skipped: number; fetched: number };
  items: number;
  /** Chat listings read in this run (a chat can be listed by several partitions). */
  chatsSeen: number;
  /** Distinct chats of the account in the ledger after the run: what "chats" means to a person. */
  chatsInLedger: number;
  messagesNew: number;
  avitoRequests: number;
  /** What Avito's paging caps kept out of reach. */
  unreachable: string[];
  /**
   * Per connector: what this run delivered, and `held`, deliveries still claimed by another
   * process at the end (a running daemon delivers them; absent when none).
   */
  delivery: { connector: string; report: DispatchReport; held?: number }[];
  dryRun?: { connector: string; contacts: number; leads: number; notes: number }[];
  /** Seconds from the start until the last partition was in the ledger (the Avito side). */
  avitoSeconds: number;
  /** Seconds from the start until the CRM had everything too (or the run stopped). */
  totalSeconds: number;
  error?: string;
}

/**
 * `avito-sync backfill` for one account (design.md §3, §5): all reachable history into the ledger,
 * resumable after a kill (each partition's completion is a cursor written with its last rows), then
 * into the CRM. Reaches past the 1,100-chat cap by partitioning on `item_ids` from the items API.
 */
export async function backfillAccount(rt: Runtime, acc: AccountRuntime, opts: BackfillOptions = {}): Promise<BackfillReport> {
  const accountId = acc.config.id;
  const runKey = `backfill_run:${accountId}`;
  const previous = await getSetting(rt.ledger.db, runKey);
  const resumed = Boolean(previous?.startsWith('running:'));
  const run = resumed ? previous!.slice('running:'.length) : String(Date.now());
  await setSetting(rt.ledger.db, runKey, `running:${run}`);
  const report: BackfillReport = {
    account: accountId, run, resumed, partitions: { total: 0, skipped: 0, fetched: 0 }, items: 0, chatsSeen: 0, chatsInLedger: 0, messagesNew: 0, avitoRequests: 0, unreachable: [], delivery: [], avitoSeconds: 0, totalSeconds: 0,
  };
  const started = performance.now();
  const seconds = () => Math.round(performance.now() - started) / 1000;
  const requestsBefore = acc.client.requestCount;
  let deliveredSoFar = 0;
  const progress = (phase: BackfillProgress['phase'], done: number, total: number, unit: string) => {
    currentPhase = { phase, done, total, unit };
    opts.onProgress?.({ account: accountId, phase, done, total, messages: report.messagesNew, unit, delivered: deliveredSoFar });
  };
  // Chats stored so far in this run: the bar moves while a pass stores chats, not only between passes.
  let chatsStored = 0;
  let messagesStored = 0;
  let currentPhase: { phase: BackfillProgress['phase']; done: number; total: number; unit: string } | undefined;
  const ctx = {
    ledger: rt.ledger, client: acc.client, log: rt.log, voice: rt.voice,
    onStored: (_: string, n: number) => {
      chatsStored++;
      messagesStored += n;
      if (n > 0) deliverer?.wake();
      if (currentPhase?.phase === 'recent chats') opts.onProgress?.({ account: accountId, phase: 'recent chats', done: chatsStored, total: 0, messages: messagesStored, unit: 'chats stored', delivered: deliveredSoFar });
    },
  };
  const since = opts.since;

  // 3 (overlapping 1 and 2). Into the CRM while the ledger fills (issue 13 item 3): the wall time
  // is the longer of the Avito and the CRM phase, not their sum. Routing the connectors before
  // the first partition enqueues each message's deliveries in the transaction that stores it.
  const deliverer = opts.dryRun || opts.ledgerOnly ? undefined : new BackfillDeliverer(rt, accountId, (n) => {
    deliveredSoFar = n;
    if (currentPhase && currentPhase.phase !== 'delivery') opts.onProgress?.({ account: accountId, ...currentPhase, messages: report.messagesNew, delivered: n });
  });
  const delivering = deliverer?.run();

  /** One partition: skipped when this run already finished it. */
  const partition = async (name: string, chatTypes: readonly string[], itemIds?: readonly string[]): Promise<PollReport | undefined> => {
    report.partitions.total++;
    if (await getCursor(rt.ledger.db, accountId, name)) {
      report.partitions.skipped++;
      return undefined;
    }
    const r = await pollAccount(ctx, { chatTypes, cursorName: name, full: true, ...(itemIds ? { itemIds } : {}), ...(since !== undefined ? { since } : {}) });
    report.partitions.fetched++;
    report.chatsSeen += r.chatsSeen;
    report.messagesNew += r.messagesNew;
    return r;
  };

  try {
    // 1. The newest chats of every type, up to the cap.
    progress('recent chats', 0, 0, 'chats stored');
    const first = await partition(`backfill:${run}:all`, acc.config.avito.chatTypes);
    const capped = first ? first.unreachable.some((u) => u.startsWith('chats past')) : await getSetting(rt.ledger.db, `backfill_capped:${accountId}:${run}`) === '1';
    if (first) await setSetting(rt.ledger.db, `backfill_capped:${accountId}:${run}`, capped ? '1' : '0');
    for (const u of first?.unreachable ?? []) if (!u.startsWith('chats past')) report.unreachable.push(u);

    // 2. Past the cap: item chats by item_ids partitions.
    if (capped) {
      // Profile chats cannot be filtered by item: each type gets its own pass, with its own cap.
      for (const type of acc.config.avito.chatTypes.filter((t) => t !== 'u2i')) {
        const r = await partition(`backfill:${run}:type:${type}`, [type]);
        if (r?.unreachable.some((u) => u.startsWith('chats past'))) report.unreachable.push(`${type} chats past the newest 1,100: Avito cannot filter them by item`);
        for (const u of r?.unreachable ?? []) if (!u.startsWith('chats past')) report.unreachable.push(u);
      }
      if (acc.config.avito.chatTypes.includes('u2i')) {
        progress('items', 0, 1, 'items');
        const items: string[] = [];
        for (let page = 1; ; page++) {
          const list = await acc.client.listItems({ page, perPage: AVITO_PAGE_LIMIT, status: ALL_STATUSES });
          items.push(...list.map((i) => i.id));
          progress('items', items.length, items.length, 'items');
          if (list.length < AVITO_PAGE_LIMIT) break;
        }
        items.sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
        report.items = items.length;
        const size = opts.partitionItems ?? PARTITION_ITEMS;
        const groups: string[][] = [];
        for (let i = 0; i < items.length; i += size) groups.push(items.slice(i, i + size));
        let done = 0;
        const walk = async (group: string[]): Promise<void> => {
          const r = await partition(`backfill:${run}:items:${group[0]}-${group[group.length - 1]}:${group.length}`, ['u2i'], group);
          for (const u of r?.unreachable ?? []) {
            if (!u.startsWith('chats past')) report.unreachable.push(u);
            else if (group.length === 1) report.unreachable.push(`chats about item ${group[0]} past the newest 1,100 (Avito's paging cap)`);
          }
          if (r?.unreachable.some((u) => u.startsWith('chats past')) && group.length > 1) {
            const half = Math.ceil(group.length / 2);
            await walk(group.slice(0, half));
            await walk(group.slice(half));
          }
        };
        for (const g of groups) {
          await walk(g);
          progress('partitions', ++done, groups.length, 'partitions');
        }
      }
    }
    await setSetting(rt.ledger.db, runKey, `done:${run}`);
  } catch (err) {
    report.error = describeError(err);
    deliverer?.stop(); // what was stored stays in the ledger; the resumed run delivers it
  }
  report.avitoRequests = acc.client.requestCount - requestsBefore;
  report.avitoSeconds = seconds();
  report.chatsInLedger = await countChats(rt.ledger.db, accountId);
  if (report.error) {
    if (delivering) report.delivery = await delivering;
    report.totalSeconds = seconds();
    return report;
  }

  // 3. Into the CRM (or what it would get): the rest of the delivery, after the last partition.
  if (opts.dryRun) report.dryRun = await dryRunCounts(rt, accountId);
  if (deliverer) {
    deliverer.fetchingDone(async (connector) => Math.max(deliveredSoFar, deliveredSoFar + (await deliveriesToMake(rt, accountId, connector))), (done, total) => progress('delivery', done, total, 'messages'));
    report.delivery = await delivering!;
  }
  report.totalSeconds = seconds();
  return report;
}

/**
 * The delivery side of a backfill: dispatch rounds while partitions are still being fetched,
 * waiting for new messages when a round finds nothing, and on until the outbox is empty once the
 * fetching is done (or a connector halts).
 */
class BackfillDeliverer {
  private fetching = true;
  private stopped = false;
  private waiting: (() => void) | undefined;
  /** Messages were stored since the last round began (a wake with no one waiting is not lost). */
  private stored = false;
  private finalTotal: ((connector: string) => Promise<number>) | undefined;
  private onFinalProgress: ((done: number, total: number) => void) | undefined;

  constructor(private readonly rt: Runtime, private readonly accountId: string, private readonly onDelivered: (n: number) => void) {
    this.delivery = new Delivery(rt);
  }

  private readonly delivery: Delivery;

  /** New messages are in the ledger: a waiting round starts. */
  wake(): void {
    this.stored = true;
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  /** The fetch phase ended: deliver what is left, then stop; `total` sizes the final bar. */
  fetchingDone(total: (connector: string) => Promise<number>, onProgress: (done: number, total: number) => void): void {
    this.fetching = false;
    this.finalTotal = total;
    this.onFinalProgress = onProgress;
    this.wake();
  }

  /** The fetch phase failed: stop after the round in progress. */
  stop(): void {
    this.stopped = true;
    this.fetching = false;
    this.wake();
  }

  async run(): Promise<{ connector: string; report: DispatchReport; held?: number }[]> {
    const units = this.delivery.units.filter((x) => x.accountId === this.accountId);
    // Summed over every round: the last round alone said "0 new conversations" after 1,500.
    const sums = new Map(units.map((u) => [u.connectorId, { enqueued: 0, delivered: 0, reconciled: 0, retried: 0, dead: 0, skipped: 0, conversationsCreated: 0, conversationsUpdated: 0 } as DispatchReport]));
    const active = new Set(units);
    let total = 0;
    /** In the last round: until when deliveries claimed by another process are waited for. */
    let heldDeadline: number | undefined;
    const held = new Map<string, number>();
    try {
      while (active.size > 0 && !this.stopped) {
        const lastRound = !this.fetching;
        if (lastRound && this.finalTotal && total === 0) for (const u of active) total = Math.max(total, await this.finalTotal(u.connectorId));
        let progressed = false;
        this.stored = false;
        for (const u of [...active]) {
          const r = await u.dispatcher.run();
          const sum = sums.get(u.connectorId)!;
          for (const k of ['enqueued', 'delivered', 'reconciled', 'retried', 'dead', 'skipped', 'conversationsCreated', 'conversationsUpdated'] as const) sum[k] += r[k];
          if (r.halted) {
            sum.halted = r.halted;
            active.delete(u);
          }
          if (r.delivered || r.reconciled) progressed = true;
        }
        const delivered = Math.max(...[...sums.values()].map((x) => x.delivered + x.reconciled), 0);
        this.onDelivered(delivered);
        if (lastRound) this.onFinalProgress?.(delivered, Math.max(total, delivered));
        if (progressed || (this.stored && !lastRound)) continue;
        if (lastRound) {
          // On a shared ledger (PostgreSQL) a backfill killed halfway leaves its claims behind;
          // they are free once its registration runs out (LEASE_TTL_MS without a heartbeat), so
          // a resumed run waits that long for them instead of ending with them undelivered. What a
          // live daemon holds, it delivers itself; the report says how many were left to it.
          let waiting = 0;
          for (const u of active) {
            const n = (await this.rt.ledger.outbox(this.accountId, u.connectorId).counts()).leased;
            held.set(u.connectorId, n);
            waiting += n;
          }
          heldDeadline ??= Date.now() + LEASE_TTL_MS + 5_000;
          if (waiting === 0 || this.stopped || Date.now() >= heldDeadline) break;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 1_000);
            this.waiting = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          continue;
        }
        // Nothing due now: wait for the next stored chat or the end of the fetch phase.
        await new Promise<void>((resolve) => (this.waiting = resolve));
      }
    } finally {
      await this.delivery.drain();
    }
    return units.map((u) => {
      const sum = sums.get(u.connectorId)!;
      const left = held.get(u.connectorId) ?? 0;
      return { connector: u.connectorId, report: { ...sum, delivered: sum.delivered + sum.reconciled }, ...(left ? { held: left } : {}) };
    });
  }
}

/** Deliveries still to make (after catching up on messages stored while the connector was not routed). */
async function deliveriesToMake(rt: Runtime, accountId: string, connector: string): Promise<number> {
  const outbox = rt.ledger.outbox(accountId, connector);
  await outbox.catchUp();
  const c = await outbox.counts();
  return c.pending + c.leased;
}

/** What delivery would create: notes for messages not delivered yet, leads for their chats without one, contacts for their buyers (at most). */
async function dryRunCounts(rt: Runtime, accountId: string): Promise<{ connector: string; contacts: number; leads: number; notes: number }[]> {
  const out = [];
  for (const c of rt.connectors.filter((x) => x.accountId === accountId)) out.push({ connector: c.definition.id, ...(await undeliveredCounts(rt.ledger.db, accountId, c.definition.id)) });
  return out;
}
