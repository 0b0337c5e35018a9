import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LEASE_MS } from '../src/ledger/outbox.js';
import type { Runtime } from '../src/runtime.js';
import { startDaemon, type Daemon } from '../src/sync/daemon.js';
import { Delivery } from '../src/sync/delivery.js';
import { pollAccount } from '../src/sync/poller.js';
import { syncOnce } from '../src/sync/sync-once.js';
import { freePort } from '../src/sandbox/net.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { printable } from '../src/cli/sanitize.js';
import { deliveredIds, fakeEnv, fakeEnvWithAmo, runCli, tempDir, testRuntime, waitFor } from './helpers.js';
import { namedLedger, SUITE_DIALECT } from './dialects.js';

/** Issue 9, items 6, 10 and 11: terminal-safe output, one daemon per SQLite file, a quick restart. */

let avito: SandboxAvito | undefined;
let amo: SandboxAmo | undefined;
let rt: Runtime | undefined;
let daemon: Daemon | undefined;
let cleanup: (() => void) | undefined;
let dir: string;
const children: ChildProcess[] = [];

async function fakes(withAmo = false) {
  avito = new SandboxAvito();
  await avito.start();
  if (withAmo) {
    amo = new SandboxAmo();
    await amo.start();
  }
  ({ dir, cleanup } = tempDir());
}

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (daemon) await daemon.stop();
  else await rt?.close().catch(() => undefined);
  daemon = undefined;
  rt = undefined;
  await avito?.stop();
  await amo?.stop();
  avito = undefined;
  amo = undefined;
  cleanup?.();
  cleanup = undefined;
});

describe('issue 9: terminal injection', () => {
  it('printable shows control characters and bidi overrides instead of obeying them', () => {
    expect(printable('Ivan\u001b[2J\u001b[H\rok\nline 2\tx\u202eevil\u0085')).toBe('Ivan\\x1b[2J\\x1b[H\\x0dok\nline 2\tx\\u202eevil\\x85');
  });

  it('escape sequences in buyer names and texts are shown, not obeyed, by chats list, messages list and status', async () => {
    await fakes();
    const chat = avito!.addChat({ buyerName: 'Ivan\u001b[2J\u001b[H' });
    avito!.addMessage(chat.id, { text: 'hi\r\u001b[31mFAKE: all good\u001b[0m' });
    const env = fakeEnv(avito!, dir, { AVITO_SYNC_DB: namedLedger(dir, 'ops.db') });
    const list = await runCli(['chats', 'list', '--limit', '100'], env);
    expect(list.code, list.stderr).toBe(0);
    const msgs = await runCli(['messages', 'list', chat.id], env);
    expect(msgs.code, msgs.stderr).toBe(0);
    const synced = await runCli(['sync', '--once'], env);
    expect(synced.code, synced.stderr).toBe(0);
    const status = await runCli(['status'], env);
    for (const r of [list, msgs, status]) {
      expect(r.stdout).not.toMatch(/[\u001b\r]/);
    }
    expect(list.stdout).toContain('Ivan\\x1b[2J\\x1b[H');
    expect(msgs.stdout).toContain('hi\\x0d\\x1b[31mFAKE: all good\\x1b[0m');
  });
});

// SQLite only: a SQLite file takes one daemon (its writer lock); PostgreSQL takes several by design (several-daemons.test.ts).
describe.skipIf(SUITE_DIALECT !== 'sqlite')('issue 9: one daemon per SQLite ledger', () => {
  it('a second daemon on the same file exits 2 naming the first one\'s pid; status still works', async () => {
    await fakes();
    const port = await freePort();
    const env = fakeEnv(avito!, dir, { PORT: String(port), LOG_LEVEL: 'info' });
    let first: ChildProcess | undefined;
    const firstDone = runCli(['run'], env, { onSpawn: (c) => { first = c; children.push(c); } });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status === 200, 60_000, 'first daemon up');
    const second = await runCli(['run'], { ...env, PORT: String(await freePort()) });
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`pid ${first!.pid}`);
    expect(second.stderr).toMatch(/one daemon per SQLite file/i);
    const once = await runCli(['sync', '--once'], env);
    expect(once.code).toBe(2);
    const status = await runCli(['status', '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    first!.kill('SIGKILL'); // a dead holder never blocks the next start
    await firstDone;
    const third = await runCli(['sync', '--once'], env);
    expect(third.code, third.stderr).toBe(0);
  });
});

describe('issue 9: a restart picks up where the killed process left', () => {
  // SQLite only: there a lease found at start is an orphan (the writer lock admits one process). On PostgreSQL a claim
  // is free once its owner's registration runs out, which delivery.test.ts's SIGKILL test waits for.
  it.skipIf(SUITE_DIALECT !== 'sqlite')('dispatch at start picks up orphaned leases at once (even with the same pid, as in a container)', async () => {
    await fakes(true);
    ({ rt } = await testRuntime(fakeEnvWithAmo(avito!, amo!, dir, { WEBHOOK_SECRET: 'test-secret-0123456789' })));
    const chat = avito!.addChat();
    for (let i = 0; i < 3; i++) avito!.addMessage(chat.id, { text: `m${i}` });
    await pollAccount({ ledger: rt.ledger, client: rt.accounts[0]!.client, log: rt.log, voice: rt.voice }, { chatTypes: ['u2i', 'u2u'] });
    // Claimed by a process that was then killed; its pid is ours now (pid 1 in a container).
    const outbox = rt.ledger.outbox('default', 'amocrm');
    await (outbox as unknown as { catchUp?: () => Promise<unknown> }).catchUp?.();
    expect(await outbox.claim(100)).toHaveLength(3);
    const leased = await rt.ledger.db.selectFrom('deliveries').select(['lease_owner', 'lease_until']).execute();
    expect(leased.every((l) => l.lease_owner === rt!.ledger.owner && l.lease_until! > Date.now() + LEASE_MS / 2)).toBe(true);
    daemon = await startDaemon(rt, { port: 0, host: '127.0.0.1', initialPoll: false });
    await waitFor(() => deliveredIds(amo!).length === 3, 20_000, 'orphaned deliveries sent at start');
  });

  it('after a kill during a reply, the chat\'s buyer messages go in the next pass, not after a backoff', async () => {
    await fakes(true);
    const env = fakeEnvWithAmo(avito!, amo!, dir);
    const chat = avito!.addChat();
    avito!.addMessage(chat.id, { text: 'Можно дешевле?' });
    expect((await runCli(['sync', '--once'], env)).code).toBe(0);
    const leadId = [...amo!.leads.values()][0]!.id;
    amo!.managerNote(leadId, '/avito Могу уступить 500 ₽');
    let child: ChildProcess | undefined;
    avito!.stall = { op: 'postSendMessage', onStall: () => child?.kill('SIGKILL') };
    const killed = await runCli(['sync', '--once'], env, { onSpawn: (c) => (child = c) });
    expect(killed.signal).toBe('SIGKILL');
    const late = avito!.addMessage(chat.id, { text: 'Договорились, беру' });
    ({ rt } = await testRuntime(env));
    await syncOnce(rt);
    expect(deliveredIds(amo!)).toContain(late.id);
    expect(avito!.count('postSendMessage')).toBe(1);
  });
});

describe('issue 9: engines and dependencies are consistent', () => {
  it('no runtime dependency in the lock file wants a newer Node than engines (>=20.19)', async () => {
    const { readFileSync } = await import('node:fs');
    const { ROOT } = await import('./helpers.js');
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe('>=20.19');
    const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; engines?: { node?: string } | string[] }> };
    /** True when some alternative of an engines range admits Node 20.19. */
    const admits20 = (range: string) => range.split('||').some((alt) => {
      const min = /\s*>=?\s*v?(\d+)(?:\.(\d+))?/.exec(alt);
      if (min) return Number(min[1]) < 20 || (Number(min[1]) === 20 && Number(min[2] ?? 0) <= 19);
      const caret = /^\s*[\^~]?\s*v?(\d+)/.exec(alt);
      return caret ? Number(caret[1]) <= 20 : true;
    });
    const bad = Object.entries(lock.packages)
      .filter(([name, p]) => name && !p.dev && !Array.isArray(p.engines) && p.engines?.node && !admits20(p.engines.node))
      .map(([name, p]) => `${name} wants node ${(p.engines as { node: string }).node}`);
    expect(bad).toEqual([]);
  });
});
