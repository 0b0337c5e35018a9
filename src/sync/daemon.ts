import type { FastifyInstance } from 'fastify';
import PQueue from 'p-queue';
import { consoleRoutes, type ConsoleEvent } from '../console/console-routes.js';
import { OperationalError, describeError } from '../errors.js';
import type { AppConfig } from '../config/load-config.js';
import { planReload, type ReloadPlan } from '../config/reload-plan.js';
import { ConfigError } from '../errors.js';
import { addAccount, buildAccount, closeAccount, registerSecrets, removeAccount, type AccountParts, type AccountRuntime, type Runtime } from '../runtime.js';
import { buildHttpServer, type ServerLimits } from '../server/http-server.js';
import { CrmMetrics } from '../server/crm-metrics.js';
import { isLedgerError } from '../ledger/write-probe.js';
import { releaseLeases } from '../ledger/outbox.js';
import { voiceFilePath } from '../ledger/voice-files.js';
import { acquireWriterLock } from '../ledger/writer-lock.js';
import { AccountLeases } from '../ledger/leases.js';
import { healthReport } from './health.js';
import { applyRetention } from './retention.js';
import { Metrics } from '../server/metrics.js';
import { HEARTBEAT_SECONDS, recordPoll, writeHeartbeat } from '../status/daemon-heartbeat.js';
import { DaemonState } from './daemon-state.js';
import { requireAvitoCredentials } from '../config/load-config.js';
import { fetchStubChats, pollAccount, type PollContext } from './poller.js';
import { Scheduler, type Job } from './scheduler.js';
import { CrmWebhooks } from './crm-webhooks.js';
import { Delivery, type DeliveryUnit } from './delivery.js';
import { READ_RECEIPTS_SECONDS } from './read-receipts.js';
import { voiceLinkTtlSeconds, voiceSignatureOk } from './voice-links.js';
import { AvitoWebhookIntake } from './webhook-intake.js';
import { avitoWebhookUrl, webhookSecret } from './webhook-secret.js';

/** Accounts whose Avito user id is learned at once at start (each a token and `GET /core/v1/accounts/self` on a first start). */
const USER_ID_CONCURRENCY = 8;

export interface DaemonOptions {
  /** Listen here; default the configured PORT. 0 picks a free port (tests). */
  port?: number;
  host?: string;
  /** Socket limits of the HTTP server (tests shorten them). */
  serverLimits?: Partial<ServerLimits>;
  /** Run the first poll right away (default true). */
  initialPoll?: boolean;
}

export interface Daemon {
  app: FastifyInstance;
  /** The port actually listened on. */
  port: number;
  webhookSecret: string;
  metrics: Metrics;
  state: DaemonState;
  scheduler: Scheduler;
  /** The poll job of each account. */
  pollJobs: Map<string, Job>;
  /** The CRM reply job of each (account, connector), keyed `account/connector`. */
  replyJobs: Map<string, Job>;
  /** The dispatch job of each (account, connector), keyed `account/connector`. */
  dispatchJobs: Map<string, Job>;
  /** The accounts this process works (polls, refreshes, sends replies for): its account leases. */
  leases: AccountLeases;
  /** CRM webhooks: routing, verification by the connector, storing replies. */
  crmWebhooks: CrmWebhooks;
  /**
   * Applies a new configuration's accounts without a restart (SIGHUP): added accounts start,
   * removed ones stop their jobs cleanly, changed ones restart theirs. `load` reads and validates
   * the configuration; a bad one (ConfigError: a sentence naming the key) is refused and logged,
   * and the running accounts stay as they are. Reloads run one at a time.
   */
  reload(load: () => AppConfig): Promise<ReloadResult>;
  /** Stops intake, finishes in-flight work, closes the ledger. */
  stop(): Promise<void>;
}

/** What a reload did, or why it was refused (nothing changed then). */
export type ReloadResult = ({ applied: true } & ReloadPlan) | { applied: false; error: string; key?: string };

/** How long shutdown may take before it stops waiting for jobs (SIGTERM must exit within 10 s). */
const STOP_BUDGET_MS = 8_000;

/**
 * `avito-sync run`: the HTTP server (webhooks, health, metrics), the schedule (reconciliation
 * polls, token refresh, voice files, chat details) and the work loops, for every account.
 */
export async function startDaemon(rt: Runtime, opts: DaemonOptions = {}): Promise<Daemon> {
  const { config, log, ledger } = rt;
  // One daemon per SQLite file (issue 9, item 10): a second one exits 2 naming the holder.
  const lock = ledger.dialect === 'sqlite' ? acquireWriterLock(ledger.file) : { release() {} };
  // Leases in the ledger now were held by a process that is gone (the lock says no other daemon
  // runs): free them so the first dispatch takes them at once (issue 9, item 11).
  await releaseLeases(ledger).catch((err: unknown) => {
    lock.release();
    throw err;
  });
  const state = new DaemonState();
  const metrics = new Metrics({
    queueDepths: () => rt.accounts.map((a) => ({ account: a.config.id, queue: 'avito_requests', depth: a.client.queueDepth })).concat(backlog),
    tokenExpiries: () => rt.accounts.map((a) => ({ account: a.config.id, provider: 'avito', expiresAt: a.client.tokens.expiresAt })),
  });
  const secret = await webhookSecret(ledger.db, config.webhookSecret);
  // Delivery backlogs, refreshed after each dispatch run (the metrics callback cannot await).
  let backlog: { account: string; queue: string; depth: number }[] = [];
  const webhooksOn = Boolean(config.publicUrl);
  const pollEvery = webhooksOn ? config.pollIntervalWithWebhooksSeconds : config.pollIntervalSeconds;

  // Know every account's Avito user id before webhooks arrive: they are routed by it.
  const accountsByUserId = new Map<string, string>();
  const learnUserId = async (acc: AccountRuntime) => {
    acc.client.onCall((e) => metrics.recordApiCall('avito', e.operation, e.status));
    try {
      accountsByUserId.set(await acc.client.userId(), acc.config.id);
    } catch (err) {
      log.error({ account: acc.config.id, err: describeError(err) }, 'Avito account not reachable at start; polling will keep trying');
    }
  };
  // Side by side (a few at a time): one account's slow Avito must not hold up the others' start,
  // and hundreds of accounts must not all ask for a token at once.
  const learning = new PQueue({ concurrency: USER_ID_CONCURRENCY });
  await Promise.all(rt.accounts.map((acc) => learning.add(() => learnUserId(acc))));

  const scheduler = new Scheduler(log);
  const stopSignal = new AbortController();
  // Several daemons on one PostgreSQL ledger share the accounts (design.md §8.5): each account's
  // Avito polling, token refresh, CRM reply look-ups and reply sending run only in the process
  // holding its lease. Webhooks are taken by any process, and deliveries are claimed row by row
  // (FOR UPDATE SKIP LOCKED) by any process. On SQLite this process holds every account.
  let leasesStarted = false;
  // The accounts of the current configuration (a SIGHUP reload adds and removes some).
  const leases = new AccountLeases(ledger, () => rt.accounts.map((a) => a.config.id), {
    log,
    heartbeatMs: config.leaseHeartbeatSeconds * 1000,
    onAcquired: (accountId) => {
      if (leasesStarted) startAccountWork(accountId); // taken over from a process that died or handed it back
    },
  });
  const leased = <T>(accountId: string, fn: () => Promise<T>) => () => leases.use(accountId, fn).then(() => undefined);
  const pollJobs = new Map<string, Job>();
  const detailJobs = new Map<string, Job>();
  const voiceJobs = new Map<string, Job>();
  /** Each account's own stop signal: a reload that removes or restarts it aborts its work. */
  const accountStops = new Map<string, AbortController>();
  const startAccountJobs = (acc: AccountRuntime) => {
    const id = acc.config.id;
    const own = new AbortController();
    accountStops.set(id, own);
    const signal = AbortSignal.any([stopSignal.signal, own.signal]);
    const ctx: PollContext = {
      ledger, client: acc.client, log, voice: rt.voice, signal,
      onStored: (accountId, n) => {
        metrics.messagesStored.inc({ account: accountId, source: 'poll' }, n);
        kickDelivery(accountId);
      },
    };
    pollJobs.set(id, scheduler.add(`poll:${id}`, leased(id, async () => {
      try {
        const uid = await acc.client.userId();
        accountsByUserId.set(uid, id);
        await pollAccount(ctx, { chatTypes: acc.config.avito.chatTypes });
        state.pollSucceeded(id);
        metrics.pollRuns.inc({ account: id, result: 'ok' });
        await recordPoll(ledger.db, id, true).catch(() => undefined);
      } catch (err) {
        if (own.signal.aborted) return; // stopped by a reload: not a failure of the account
        state.pollFailed(id, describeError(err));
        if (isLedgerError(err)) state.writeFailed(describeError(err));
        metrics.pollRuns.inc({ account: id, result: 'failed' });
        await recordPoll(ledger.db, id, false, describeError(err)).catch(() => undefined);
        throw err;
      }
    }), pollEvery));
    detailJobs.set(id, scheduler.add(`chat-details:${id}`, leased(id, async () => {
      await fetchStubChats(ctx, await acc.client.userId());
      kickDelivery(id); // messages waiting for the chat's details can go now
    })));
    voiceJobs.set(id, scheduler.add(`voice:${id}`, leased(id, () => rt.voice.keepPending(acc.client, signal)), 300));
    state.setAccountState(id, 'running');
  };
  for (const acc of rt.accounts) startAccountJobs(acc);
  // `status` (another process) reads this to say whether a daemon runs and when it last polled.
  const accountStates = () => Object.fromEntries([...state.accountStates].map(([id, a]) => [id, { state: a.state, since: a.since }]));
  const heartbeat = scheduler.add('heartbeat', () => writeHeartbeat(ledger.db, state.startedAt, false, accountStates()), HEARTBEAT_SECONDS);
  // RETENTION_DAYS: old webhook bodies and voice files go, at start and then hourly.
  const retention = scheduler.add('retention', () => applyRetention(ledger, rt.voice, config.retentionDays, log), 3600);
  scheduler.add('token-refresh', async () => {
    // All accounts at once: one account's slow or refusing token endpoint must not hold up another's refresh.
    await Promise.all(rt.accounts.map((acc) => stopSignal.signal.aborted ? undefined
      : leases.use(acc.config.id, () => acc.client.tokens.get()).catch((err: unknown) => log.warn({ account: acc.config.id, err: describeError(err) }, 'token refresh failed'))));
  }, 60);

  // CRM-side metrics: every connector call counted (wrapped before delivery takes the instances).
  const crmMetrics = new CrmMetrics(metrics.registry, rt.connectors, ledger.db);
  for (const c of rt.connectors) crmMetrics.instrument(c);
  // Delivery to connectors: right after every intake (poll or webhook) and on schedule for retries.
  const delivery = new Delivery(rt, config.publicUrl ? { voice: { publicUrl: config.publicUrl, secret, ttlSeconds: voiceLinkTtlSeconds(config.retentionDays) } } : {});
  const dispatchJobs = new Map<string, Job>();
  const replyJobs = new Map<string, Job>();
  const sendJobs = new Map<string, Job>();
  const readJobs = new Map<string, Job>();
  // CRM → Avito: replies and operator actions, polled always; webhooks only make it sooner.
  const crmEvery = config.publicUrl ? config.crmPollIntervalWithWebhooksSeconds : config.crmPollIntervalSeconds;
  const startUnitJobs = (u: DeliveryUnit) => {
    dispatchJobs.set(`${u.accountId}/${u.connectorId}`, scheduler.add(`dispatch:${u.accountId}/${u.connectorId}`, async () => {
      if (stopSignal.signal.aborted) return;
      crmMetrics.dispatched(u.accountId, u.connectorId, await tracked('delivery', u.accountId, u.connectorId, () => u.dispatcher.run()));
      const counts = await u.dispatcher.outboxCounts;
      backlog = backlog.filter((b) => !(b.account === u.accountId && b.queue.startsWith(`${u.connectorId}_`)));
      backlog.push({ account: u.accountId, queue: `${u.connectorId}_pending`, depth: counts.pending + counts.leased }, { account: u.accountId, queue: `${u.connectorId}_dead`, depth: counts.dead });
    }, 30));
    const key = `${u.accountId}/${u.connectorId}`;
    // Avito's read marks on our replies, for connectors that show them (capability readReceipts).
    if (u.reads?.enabled) {
      readJobs.set(key, scheduler.add(`read-receipts:${key}`, leased(u.accountId, async () => {
        if (stopSignal.signal.aborted) return;
        const r = await u.reads!.run(stopSignal.signal);
        if (r.read || r.reported) log.debug({ account: u.accountId, connector: u.connectorId, ...r }, 'read receipts');
      }), READ_RECEIPTS_SECONDS));
    }
    if (!u.replies) return;
    // One job sends, so two runs never take the same reply; polling and webhooks both trigger it.
    const send = scheduler.add(`reply-send:${key}`, leased(u.accountId, async () => {
      if (stopSignal.signal.aborted) return;
      const r = await tracked('reply-send', u.accountId, u.connectorId, () => u.replies!.run());
      crmMetrics.replied(u.accountId, u.connectorId, r);
      // A send that was cut short (a kill) held its chat's buyer messages: they go now, not at the next tick.
      if (r.sent || r.dead) kickDelivery(u.accountId);
    }));
    sendJobs.set(key, send);
    replyJobs.set(key, scheduler.add(`replies:${key}`, leased(u.accountId, async () => {
      if (stopSignal.signal.aborted) return;
      const problem = await delivery.lookForReplies(u);
      if (problem) state.loopFailed('replies', u.accountId, u.connectorId, problem);
      else state.loopSucceeded('replies', u.accountId, u.connectorId);
      await send.trigger({ coalesce: true });
    }), crmEvery));
  };
  for (const u of delivery.units) startUnitJobs(u);
  /** Runs one loop's work, keeping its run of failures for `/healthz`. */
  async function tracked<T>(loop: 'delivery' | 'reply-send', accountId: string, connectorId: string, fn: () => Promise<T>): Promise<T> {
    try {
      const r = await fn();
      state.loopSucceeded(loop, accountId, connectorId);
      return r;
    } catch (err) {
      state.loopFailed(loop, accountId, connectorId, describeError(err));
      if (isLedgerError(err)) state.writeFailed(describeError(err));
      throw err;
    }
  }
  const kickDelivery = (accountId: string) => {
    for (const u of delivery.units) if (u.accountId === accountId) void dispatchJobs.get(`${u.accountId}/${u.connectorId}`)?.trigger({ coalesce: true });
  };
  /** An account this process just took: its poll, reply look-ups and sends (a killed holder's half-sent replies) go now. */
  function startAccountWork(accountId: string): void {
    void pollJobs.get(accountId)?.trigger({ coalesce: true });
    void detailJobs.get(accountId)?.trigger({ coalesce: true });
    for (const [key, job] of [...replyJobs, ...sendJobs]) if (key.startsWith(`${accountId}/`)) void job.trigger({ coalesce: true });
    kickDelivery(accountId);
  }
  if (ledger.dialect === 'postgres') {
    // Work another process stored for an account this one holds (a webhook's new chat, a CRM
    // webhook's reply) has no in-process trigger here: look for it at every lease heartbeat.
    scheduler.add('leased-work', async () => {
      for (const accountId of leases.held()) {
        void detailJobs.get(accountId)?.trigger({ coalesce: true });
        for (const [key, job] of sendJobs) if (key.startsWith(`${accountId}/`)) void job.trigger({ coalesce: true });
      }
    }, config.leaseHeartbeatSeconds);
  }

  const crmWebhooks = new CrmWebhooks(
    () => delivery.units.flatMap((u) => {
      const c = rt.connectors.find((x) => x.accountId === u.accountId && x.definition.id === u.connectorId)!;
      if (!u.replies || !c.definition.capabilities.webhooks || !c.instance.webhook) return [];
      return [{ accountId: u.accountId, connectorId: u.connectorId, aliases: c.definition.webhookAliases, instance: c.instance, replies: u.replies, onStored: () => void sendJobs.get(`${u.accountId}/${u.connectorId}`)?.trigger({ coalesce: true }) }];
    }),
    log,
  );
  const intake = new AvitoWebhookIntake({ ledger, log, accountsByUserId: () => accountsByUserId, onLedgerError: (err) => state.writeFailed(describeError(err)) });
  const app = buildHttpServer({
    log,
    metrics,
    webhookSecret: secret,
    avitoIntake: intake,
    onAvitoStored: (r) => {
      if (!r.accountId) return;
      state.webhookReceived(r.accountId);
      if (r.result !== 'stored') return;
      metrics.messagesStored.inc({ account: r.accountId, source: 'webhook' });
      kickDelivery(r.accountId);
      if (r.newChat) void detailJobs.get(r.accountId)?.trigger({ coalesce: true });
      void voiceJobs.get(r.accountId)?.trigger({ coalesce: true });
    },
    health: () => healthReport(rt, state, pollEvery, (id) => leases.holds(id)),
    crmRoutes: crmWebhooks,
    ...(config.metricsToken ? { metricsToken: config.metricsToken } : {}),
    ...(opts.serverLimits ? { limits: opts.serverLimits } : {}),
    voiceFile: async (accountId, voiceId, sig, exp) => {
      if (!voiceSignatureOk(secret, accountId, voiceId, sig, exp)) return undefined;
      const kept = await voiceFilePath(ledger.db, accountId, voiceId);
      return kept ? rt.voice.absolutePath(kept) : undefined;
    },
  });
  if (config.consolePassword) {
    // The operator's console (design.md §8.6); off without CONSOLE_PASSWORD.
    const onConsoleEvent = (e: ConsoleEvent) => {
      if (e.kind === 'retried') {
        for (const job of [...dispatchJobs.values(), ...sendJobs.values()]) void job.trigger({ coalesce: true });
        return;
      }
      if (e.provider === 'avito') {
        void pollJobs.get(e.accountId)?.trigger({ coalesce: true });
        return;
      }
      const key = `${e.accountId}/${e.provider}`;
      void dispatchJobs.get(key)?.trigger({ coalesce: true });
      void replyJobs.get(key)?.trigger({ coalesce: true });
      const c = rt.connectors.find((x) => x.accountId === e.accountId && x.definition.id === e.provider);
      if (config.publicUrl && c?.definition.capabilities.webhooks && c.instance.ensureWebhook) {
        c.instance.ensureWebhook(`${config.publicUrl}/webhooks/${e.provider}/${secret}`).catch((err: unknown) => log.error({ account: e.accountId, connector: e.provider, err: describeError(err) }, 'could not subscribe to CRM webhooks; polling covers'));
      }
    };
    await app.register(consoleRoutes({ rt, password: config.consolePassword, publicUrl: config.publicUrl, health: () => healthReport(rt, state, pollEvery, (id) => leases.holds(id)), onEvent: onConsoleEvent }));
  }
  const listenPort = opts.port ?? config.port;
  const listenHost = opts.host ?? config.host;
  try {
    await app.listen({ port: listenPort, host: listenHost });
  } catch (err) {
    // Nothing may keep running after a failed start: the caller exits 1 and the supervisor sees it.
    stopSignal.abort();
    for (const acc of rt.accounts) acc.client.stop();
    await scheduler.stop();
    await delivery.drain();
    await app.close().catch(() => undefined);
    lock.release();
    const code = (err as NodeJS.ErrnoException).code;
    throw new OperationalError(code === 'EADDRINUSE'
      ? `Port ${listenPort} is already in use (EADDRINUSE): another avito-sync or another program listens there; stop it, or set PORT (or run --port) to a free port.`
      : `The daemon cannot listen on ${listenHost}:${listenPort}: ${(err as Error).message}; check PORT and HOST.`, { cause: err });
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (opts.port ?? config.port);
  log.info({ port, webhooks: webhooksOn, pollEverySeconds: pollEvery, accounts: rt.accounts.length }, 'avito-sync is running');

  const subscribeAvito = async (acc: AccountRuntime) => {
    if (!config.publicUrl) return;
    const url = avitoWebhookUrl(config.publicUrl, secret);
    try {
      const subs = await acc.client.listSubscriptions();
      if (!subs.some((s) => s.url === url)) {
        await acc.client.subscribeWebhook(url);
        log.info({ account: acc.config.id }, 'subscribed to Avito webhooks');
      }
    } catch (err) {
      log.error({ account: acc.config.id, err: describeError(err) }, 'could not subscribe to Avito webhooks; polling covers until the next start');
    }
  };
  const subscribeCrm = async (u: DeliveryUnit) => {
    if (!config.publicUrl) return;
    const c = rt.connectors.find((x) => x.accountId === u.accountId && x.definition.id === u.connectorId)!;
    if (!c.definition.capabilities.webhooks || !c.instance.ensureWebhook) return;
    await c.instance.ensureWebhook(`${config.publicUrl}/webhooks/${u.connectorId}/${secret}`).then(
      () => log.info({ account: u.accountId, connector: u.connectorId }, 'CRM webhook in place'),
      (err: unknown) => log.error({ account: u.accountId, connector: u.connectorId, err: describeError(err) }, 'could not subscribe to CRM webhooks; polling covers'),
    );
  };
  for (const acc of rt.accounts) await subscribeAvito(acc);
  for (const u of delivery.units) await subscribeCrm(u);

  await heartbeat.trigger();
  // The accounts this process works, taken before the first poll (on SQLite: all of them).
  await leases.start();
  leasesStarted = true;
  if (opts.initialPoll !== false) {
    for (const job of pollJobs.values()) void job.trigger();
    for (const job of replyJobs.values()) void job.trigger();
  }
  // Work left by a killed process goes at once, not at the next tick (issue 9, item 11): sends cut
  // short are settled (which frees their chats), and due or orphaned deliveries are claimed.
  for (const job of sendJobs.values()) void job.trigger({ coalesce: true });
  for (const job of dispatchJobs.values()) void job.trigger({ coalesce: true });
  void retention.trigger();

  /** Stops one account's jobs cleanly (the run in progress finishes or is aborted), then forgets it. */
  const stopAccountJobs = async (id: string) => {
    accountStops.get(id)?.abort();
    accountStops.delete(id);
    const jobs: (Job | undefined)[] = [pollJobs.get(id), detailJobs.get(id), voiceJobs.get(id)];
    for (const m of [pollJobs, detailJobs, voiceJobs]) m.delete(id);
    for (const u of delivery.remove(id)) {
      const key = `${u.accountId}/${u.connectorId}`;
      jobs.push(dispatchJobs.get(key), replyJobs.get(key), sendJobs.get(key), readJobs.get(key));
      for (const m of [dispatchJobs, replyJobs, sendJobs, readJobs]) m.delete(key);
    }
    await Promise.all(jobs.filter((j): j is Job => j !== undefined).map((j) => scheduler.remove(j)));
    for (const [uid, acc] of accountsByUserId) if (acc === id) accountsByUserId.delete(uid);
    backlog = backlog.filter((b) => b.account !== id);
  };
  /** Starts a built account: it joins the runtime, its jobs are scheduled, webhooks subscribed, a first poll runs. */
  const startAccount = async (parts: AccountParts) => {
    await addAccount(rt, parts);
    // Its lease first (on PostgreSQL another daemon may take it; then this one only takes webhooks).
    if (leasesStarted) await leases.tick().catch((err: unknown) => log.warn({ account: parts.id, err: describeError(err) }, 'account lease round failed; the next one takes it'));
    for (const c of parts.connectors) crmMetrics.instrument(c);
    const units = delivery.add(parts.connectors);
    if (parts.account) {
      await learnUserId(parts.account);
      startAccountJobs(parts.account);
    } else state.setAccountState(parts.id, 'running');
    for (const u of units) startUnitJobs(u);
    if (parts.account) await subscribeAvito(parts.account);
    for (const u of units) await subscribeCrm(u);
    void pollJobs.get(parts.id)?.trigger();
    for (const u of units) {
      void replyJobs.get(`${u.accountId}/${u.connectorId}`)?.trigger();
      void dispatchJobs.get(`${u.accountId}/${u.connectorId}`)?.trigger({ coalesce: true });
    }
  };
  let reloading: Promise<unknown> = Promise.resolve();
  const reload = (load: () => AppConfig): Promise<ReloadResult> => {
    const run = reloading.then(async (): Promise<ReloadResult> => {
      let next: AppConfig;
      let plan: ReloadPlan;
      const built: AccountParts[] = [];
      try {
        next = load();
        requireAvitoCredentials(next);
        plan = planReload(rt.config, next);
        // Only the accounts change; the rest of the running configuration stays until a restart.
        const merged: AppConfig = { ...rt.config, accounts: next.accounts };
        // Everything is built (and so checked by each connector's schema) before anything stops.
        for (const a of merged.accounts) if (plan.added.includes(a.id) || plan.changed.includes(a.id)) built.push(buildAccount(merged, a.id, ledger, log, rt.options));
        next = merged;
      } catch (err) {
        for (const b of built) await closeAccount(b);
        if (!(err instanceof ConfigError)) throw err;
        log.error({ key: err.key }, `configuration reload refused: ${err.message} The running configuration stays.`);
        return { applied: false, error: err.message, ...(err.key ? { key: err.key } : {}) };
      }
      for (const id of plan.removed) state.setAccountState(id, 'stopping');
      for (const id of plan.changed) state.setAccountState(id, 'restarting');
      for (const id of [...plan.removed, ...plan.changed]) {
        await stopAccountJobs(id);
        await removeAccount(rt, id);
      }
      for (const id of plan.removed) state.forgetAccount(id);
      rt.config = next;
      registerSecrets(next);
      for (const parts of built) await startAccount(parts);
      // Accounts in the file's order again (status, /healthz and the console list them so).
      const order = new Map(next.accounts.map((a, i) => [a.id, i]));
      rt.accounts.sort((x, y) => order.get(x.config.id)! - order.get(y.config.id)!);
      rt.connectors.sort((x, y) => order.get(x.accountId)! - order.get(y.accountId)!);
      await heartbeat.trigger();
      log.info({ added: plan.added, removed: plan.removed, changed: plan.changed, unchanged: plan.unchanged.length }, 'configuration reloaded');
      if (plan.restartKeys.length) log.warn({ keys: plan.restartKeys }, `configuration reload: ${plan.restartKeys.join(', ')} changed; these take effect at the next restart`);
      return { applied: true, ...plan };
    });
    reloading = run.catch(() => undefined);
    return run;
  };

  let stopping: Promise<void> | undefined;
  return {
    app, port, webhookSecret: secret, metrics, state, scheduler, pollJobs, dispatchJobs, replyJobs, crmWebhooks, reload, leases,
    stop() {
      stopping ??= (async () => {
        await reloading; // a reload in progress finishes first: no account is left half started
        log.info('stopping: no new webhooks, finishing in-flight work');
        await app.close();
        stopSignal.abort();
        for (const acc of rt.accounts) acc.client.stop();
        const finished = scheduler.stop().then(() => true);
        const inTime = await Promise.race([finished, new Promise<false>((r) => setTimeout(() => r(false), STOP_BUDGET_MS).unref())]);
        if (!inTime) log.warn('some work did not finish in time; it resumes from the ledger at the next start');
        await crmWebhooks.drain();
        await delivery.drain();
        // The accounts are free for the other daemons at once, not when the leases run out.
        await leases.stop().catch((err: unknown) => log.warn({ err: describeError(err) }, 'account leases could not be handed back; they run out by themselves'));
        await writeHeartbeat(ledger.db, state.startedAt, true, accountStates()).catch(() => undefined);
        await rt.close();
        lock.release();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}
