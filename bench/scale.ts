import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { markerOf } from '../connectors/amocrm/mappers.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { openLedger } from '../src/ledger/database.js';
import { SandboxAvito, type FakeChat } from '../src/sandbox/sandbox-avito.js';
import { freePort } from '../src/sandbox/net.js';
import { fmt, percentile, postWebhook, until, PRODUCT_NODE_FLAGS } from './util.js';

const SECRET = 'bench-secret-0123456789';
const ACCOUNTS = 4;
const KNOWN_CHATS = 10;
const EVENTS_PER_ACCOUNT = 400;
const CONCURRENCY = 24;

interface Result {
  daemons: number;
  events: number;
  ackMs: number[];
  /** Events acknowledged per second (first send → last ack). */
  intakePerS: number;
  /** Notes in amoCRM per second (first send → last note). */
  deliveryPerS: number;
  http429: number;
  duplicates: number;
  /** SIGKILL of the busiest daemon → its last account held again (wall clock), and the same from the lease table. */
  takeover?: { wallMs: number; tableMs: number; accounts: number };
}

function psql(url: string, command: string): void {
  execFileSync('psql', [url, '-qtAX', '-v', 'ON_ERROR_STOP=1', '-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** N `avito-sync run` processes on one fresh PostgreSQL database, four accounts, webhooks spread over all of them. */
async function scenario(pgUrl: string, daemons: number, takeover: boolean): Promise<Result> {
  const name = `avito_bench_${randomBytes(5).toString('hex')}`;
  psql(pgUrl, `CREATE DATABASE ${name}`);
  const u = new URL(pgUrl);
  u.pathname = `/${name}`;
  const db = u.toString();
  const dir = mkdtempSync(path.join(tmpdir(), 'avito-bench-scale-'));
  const avitos: SandboxAvito[] = [];
  const amos: SandboxAmo[] = [];
  const chats: FakeChat[][] = [];
  const children: ChildProcess[] = [];
  try {
    for (let i = 0; i < ACCOUNTS; i++) {
      const avito = new SandboxAvito({ userId: 3_000_001 + i });
      const amo = new SandboxAmo();
      await avito.start();
      await amo.start();
      chats.push(avito.seed(KNOWN_CHATS, 1));
      avitos.push(avito);
      amos.push(amo);
    }
    const config = path.join(dir, 'avito-sync.json');
    writeFileSync(config, JSON.stringify({
      accounts: avitos.map((a, i) => ({ id: `acc${i}`, avito: { clientId: a.clientId, clientSecret: a.clientSecret, apiUrl: a.url, requestsPerSecond: 100 }, amocrm: { baseUrl: amos[i]!.url, accessToken: amos[i]!.token } })),
    }));
    const ports: number[] = [];
    for (let d = 0; d < daemons; d++) {
      const port = await freePort();
      ports.push(port);
      children.push(spawn(process.execPath, [...PRODUCT_NODE_FLAGS, path.resolve('dist/src/cli/main.js'), 'run'], {
        env: {
          PATH: process.env.PATH ?? '', AVITO_SYNC_CONFIG: config, AVITO_SYNC_DB: db, AVITO_SYNC_DATA_DIR: path.join(dir, `d${d}`), AVITO_SYNC_CONNECTORS: 'amocrm',
          PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, WEBHOOK_SECRET: SECRET, LOG_LEVEL: 'error',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      }));
    }
    const notes = () => amos.reduce((n, a) => n + a.notes.size, 0);
    await until(() => notes() >= ACCOUNTS * KNOWN_CHATS, 180_000, 'the known chats delivered', 20);

    const events: { port: number; body: string }[] = [];
    for (let i = 0; i < EVENTS_PER_ACCOUNT; i++) {
      for (let a = 0; a < ACCOUNTS; a++) {
        const chat = chats[a]![i % KNOWN_CHATS]!;
        const m = avitos[a]!.addMessage(chat.id, { text: `scale ${i}` });
        events.push({ port: ports[events.length % daemons]!, body: JSON.stringify(avitos[a]!.webhookBody(chat.id, m)) });
      }
    }
    const before = notes();
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const ackMs: number[] = [];
    const started = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < events.length; i = next++) {
        const t = performance.now();
        const status = await postWebhook(agent, events[i]!.port, SECRET, events[i]!.body);
        if (status !== 200) throw new Error(`webhook answered ${status}`);
        ackMs.push(performance.now() - t);
      }
    }));
    const acked = performance.now();
    agent.destroy();
    await until(() => notes() >= before + events.length, 300_000, 'every event delivered', 5);
    const delivered = performance.now();
    const ids = amos.flatMap((a) => [...a.notes.values()].map((n) => markerOf(String(n.params.text ?? ''))).filter(Boolean));
    const result: Result = {
      daemons,
      events: events.length,
      ackMs: ackMs.sort((a, b) => a - b),
      intakePerS: events.length / ((acked - started) / 1000),
      deliveryPerS: events.length / ((delivered - started) / 1000),
      http429: amos.reduce((n, a) => n + a.requests.filter((r) => r.status === 429).length, 0),
      duplicates: ids.length - new Set(ids).size,
    };

    if (takeover) {
      const ledger = await openLedger(db);
      try {
        const leases = await ledger.db.selectFrom('account_leases as l').innerJoin('lease_owners as o', 'o.owner', 'l.owner').select(['l.account_id', 'l.owner', 'o.pid']).execute();
        const byPid = new Map<number, string[]>();
        for (const l of leases) byPid.set(Number(l.pid), [...(byPid.get(Number(l.pid)) ?? []), l.account_id]);
        const [pid, accounts] = [...byPid].sort((a, b) => b[1].length - a[1].length)[0]!;
        const victim = children.find((c) => c.pid === pid)!;
        const killedAt = Date.now();
        victim.kill('SIGKILL');
        const owner = leases.find((l) => Number(l.pid) === pid)!.owner;
        let rows: { acquired_at: number; previous_expires_at: number | null }[] = [];
        for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
          rows = await ledger.db.selectFrom('account_leases').select(['acquired_at', 'previous_expires_at']).where('account_id', 'in', accounts).where('owner', '!=', owner).where('expires_at', '>', Date.now()).execute();
          if (rows.length === accounts.length) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        if (rows.length !== accounts.length) throw new Error('the accounts of the killed daemon were not taken over within 60 s');
        const last = Math.max(...rows.map((r) => Number(r.acquired_at)));
        result.takeover = { wallMs: last - killedAt, tableMs: Math.max(...rows.map((r) => Number(r.acquired_at) - Number(r.previous_expires_at ?? r.acquired_at))), accounts: accounts.length };
      } finally {
        await ledger.close();
      }
    }
    return result;
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    for (const a of avitos) await a.stop();
    for (const a of amos) await a.stop();
    rmSync(dir, { recursive: true, force: true });
    try {
      psql(pgUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } catch {
      /* left for the cluster's owner */
    }
  }
}

/**
 * Several daemons on PostgreSQL (issue 12): webhook intake and delivery throughput with three
 * `run` processes against one (same machine, same run), ack p99, and the takeover time after a
 * SIGKILL. Needs a PostgreSQL the bench may create databases on: AVITO_SYNC_BENCH_PG (or
 * AVITO_SYNC_TEST_PG).
 */
export async function scaleBench(): Promise<string> {
  const pgUrl = (process.env.AVITO_SYNC_BENCH_PG ?? process.env.AVITO_SYNC_TEST_PG)?.trim();
  if (!pgUrl) return '### Several daemons on PostgreSQL\n\nSkipped: set AVITO_SYNC_BENCH_PG (or AVITO_SYNC_TEST_PG) to a PostgreSQL the bench may create databases on.';
  const load = loadavg().map((l) => fmt(l, 1)).join(' / ');
  const one = await scenario(pgUrl, 1, false);
  const three = await scenario(pgUrl, 3, true);
  const ms = (l: number[], p: number) => `${fmt(percentile(l, p), 0)} ms`;
  const row = (r: Result) => `| ${r.daemons} | ${r.events} | ${fmt(r.intakePerS, 0)}/s | ${ms(r.ackMs, 50)} | ${ms(r.ackMs, 99)} | ${fmt(r.deliveryPerS, 0)}/s | ${r.http429} | ${r.duplicates} |`;
  const t = three.takeover!;
  return [
    '### Several daemons on PostgreSQL (issue 12): webhook intake, delivery, takeover',
    '',
    `${ACCOUNTS} accounts (each its own fake Avito and fake amoCRM at 7 requests/s), ${KNOWN_CHATS} known chats each; ${EVENTS_PER_ACCOUNT} webhook events per account sent ${CONCURRENCY} at a time, spread round-robin over the daemons. Load average at the start: ${load}.`,
    '',
    '| daemons | events | intake (acknowledged) | ack p50 | ack p99 | delivery (event → note) | 429s | notes twice |',
    '|---|---|---|---|---|---|---|---|',
    row(one),
    row(three),
    '',
    `Takeover: the busiest of the three daemons (${t.accounts} accounts) SIGKILLed; its last account was held again ${fmt(t.wallMs / 1000, 1)} s later (lease TTL 20 s + at most one 5 s tick); from the lease table, the new holder's acquired_at came ${fmt(t.tableMs / 1000, 1)} s after the dead lease ran out.`,
  ].join('\n');
}
