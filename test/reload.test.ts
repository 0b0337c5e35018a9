import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { freePort } from '../src/sandbox/net.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { deliveredIds, runCli, tempDir, waitFor } from './helpers.js';
import { ledgerLocation } from './dialects.js';

/**
 * Issue 17 item 4: accounts added, changed or removed without a restart. The daemon runs as a
 * child process (`avito-sync --config FILE run`); the test edits the file and sends SIGHUP.
 */

const SECRET = 'test-secret-0123456789';
const fakes: { stop(): Promise<void> }[] = [];
let child: ChildProcess | undefined;
let cleanup: (() => void) | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
  for (const f of fakes.splice(0)) await f.stop();
  cleanup?.();
  cleanup = undefined;
});

interface Shop {
  id: string;
  avito: SandboxAvito;
  amo: SandboxAmo;
}

async function shop(i: number): Promise<Shop> {
  const avito = new SandboxAvito({ userId: 3_000_001 + i, clientId: `reload-client-${i}` });
  const amo = new SandboxAmo({ accountId: 50_000_001 + i, subdomain: `reload${i}` });
  await avito.start();
  await amo.start();
  fakes.push(avito, amo);
  return { id: `shop${i}`, avito, amo };
}

const account = (s: Shop, extra: Record<string, unknown> = {}) => ({
  id: s.id,
  avito: { clientId: s.avito.clientId, clientSecret: s.avito.clientSecret, apiUrl: s.avito.url, requestsPerSecond: 1000, ...extra },
  amocrm: { baseUrl: s.amo.url, accessToken: s.amo.token },
});

describe('config reload on SIGHUP (issue 17 item 4)', () => {
  it('adds a third account and removes one without a restart; a changed one restarts; a bad file is refused naming the key and the old one keeps running', async () => {
    const shops = [await shop(0), await shop(1), await shop(2)];
    const [s0, s1, s2] = shops as [Shop, Shop, Shop];
    const t = tempDir();
    cleanup = t.cleanup;
    const port = await freePort();
    const file = path.join(t.dir, 'accounts.json');
    const write = (accounts: unknown[]) => writeFileSync(file, JSON.stringify({
      db: ledgerLocation(t.dir), port, webhookSecret: SECRET, connectors: ['amocrm'],
      pollIntervalSeconds: 3600, crmPollIntervalSeconds: 3600, accounts,
    }));
    for (const s of shops) s.avito.addMessage(s.avito.addChat().id, { text: `Здравствуйте, ${s.id}` });
    write([account(s0), account(s1)]);

    let logs = '';
    const env = { LOG_LEVEL: 'info' };
    const run = runCli(['--config', file, 'run'], env, { onSpawn: (c) => {
      child = c;
      c.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
      c.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
    } });
    // A wait that fails shows the daemon's last log lines.
    const until = <T>(check: () => T | Promise<T>, ms: number, what: string) => waitFor(check, ms, what).catch((err: Error) => {
      throw new Error(`${err.message}\n--- daemon log ---\n${logs.slice(-4000)}`);
    });
    const health = async () => (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { accounts: { id: string; state: string }[]; removedAccounts: { id: string }[] };
    await until(() => deliveredIds(s0.amo).length === 1 && deliveredIds(s1.amo).length === 1, 60_000, 'both accounts delivered their first message');
    expect((await health()).accounts.map((a) => [a.id, a.state])).toEqual([['shop0', 'running'], ['shop1', 'running']]);
    expect(deliveredIds(s2.amo)).toEqual([]);

    // shop0 goes, shop2 comes, shop1 changes (a new request budget): one SIGHUP.
    s1.avito.addMessage([...s1.avito.chats.keys()][0]!, { text: 'Ещё вопрос' });
    write([account(s1, { requestsPerSecond: 999 }), account(s2)]);
    child!.kill('SIGHUP');
    await until(async () => (await health()).accounts.map((a) => a.id).join() === 'shop1,shop2', 30_000, 'the reloaded accounts in /healthz');
    await until(() => deliveredIds(s2.amo).length === 1 && deliveredIds(s1.amo).length === 2, 30_000, "the added account's first message, and the changed account polled again");
    const h = await health();
    expect(h.accounts.map((a) => [a.id, a.state])).toEqual([['shop1', 'running'], ['shop2', 'running']]);
    expect(h.removedAccounts.map((a) => a.id)).toEqual(['shop0']);
    expect(logs).toMatch(/"added":\["shop2"\],"removed":\["shop0"\],"changed":\["shop1"\]/);

    // The removed account's Avito webhooks are no longer taken, and nothing more goes to its CRM.
    const chat0 = [...s0.avito.chats.keys()][0]!;
    const late = s0.avito.addMessage(chat0, { text: 'Вы тут?' });
    const refused = await fetch(`http://127.0.0.1:${port}/webhooks/avito/${SECRET}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(s0.avito.webhookBody(chat0, late)) });
    expect(refused.status).toBe(422);
    const amo0Requests = s0.amo.requests.length;

    const status = await runCli(['--config', file, 'status'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/account shop0 \(Avito user 3000001\): removed since /);
    expect(status.stdout).toMatch(/account shop1 \(Avito user 3000002\): running/);
    expect(status.stdout).toMatch(/account shop2 \(Avito user 3000003\): running/);

    // A bad file: refused with a line naming the key; the running accounts stay as they are.
    writeFileSync(file, JSON.stringify({ db: ledgerLocation(t.dir), port, webhookSecret: SECRET, connectors: ['amocrm'], accounts: [account(s1), { ...account(s2), avito: { ...account(s2).avito, requestsPerSecond: 'many' } }] }));
    child!.kill('SIGHUP');
    await until(() => /configuration reload refused/.test(logs), 30_000, 'the refusal in the log');
    const refusal = logs.split('\n').find((l) => l.includes('configuration reload refused'))!;
    expect(refusal).toMatch(/accounts\[1\]\.avito\.requestsPerSecond/);
    expect(refusal).toMatch(/The running configuration stays/);
    expect((await health()).accounts.map((a) => [a.id, a.state])).toEqual([['shop1', 'running'], ['shop2', 'running']]);
    expect(s0.amo.requests.length).toBe(amo0Requests);

    child!.kill('SIGTERM');
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
  });
});
