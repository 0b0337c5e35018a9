import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { openLedger } from '../src/ledger/database.js';
import { getToken } from '../src/ledger/tokens.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/sandbox/net.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { fakeEnv, fakeEnvWithAmo, runCli, tempDir, waitFor } from './helpers.js';
import { namedLedger } from './dialects.js';

/**
 * The operator's first hour (issue 10): start-up failures are loud and final when they are
 * permanent; a running daemon tells the truth in status and metrics. Each test drives the
 * built CLI as a child process.
 */
let fake: SandboxAvito;
let dir: string;
let cleanup: () => void;

beforeAll(async () => {
  fake = new SandboxAvito();
  await fake.start();
  ({ dir, cleanup } = tempDir());
});
afterAll(async () => {
  await fake.stop();
  cleanup();
});

describe('first hour: starting the daemon', { timeout: 120_000 }, () => {
  it('item 1: run with bad Avito credentials says so in one sentence and exits 1', async () => {
    const r = await runCli(['run'], fakeEnv(fake, dir, { AVITO_CLIENT_SECRET: 'wrong-secret-123456', AVITO_SYNC_DB: namedLedger(dir, 'bad-creds.db'), PORT: '0' }));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/avito-sync: avito-sync cannot start: account default: Avito answered 400 to POST \/token .*invalid_client.*copy AVITO_CLIENT_ID and AVITO_CLIENT_SECRET again/);
    expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('avito-sync:'))).toHaveLength(1);
    // A permanent refusal is not retried: one /token request.
    expect(fake.requests.filter((q) => q.op === 'getAccessToken' && q.status === 400).length).toBeLessThanOrEqual(1);
  });

  it('item 1: a transient failure at start (a 500 from /token) is retried and the daemon runs', async () => {
    const port = await freePort();
    fake.inject({ op: 'getAccessToken', kind: '500', times: 1 });
    let child: import('node:child_process').ChildProcess | undefined;
    const run = runCli(['run'], fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'transient.db'), PORT: String(port) }), { onSpawn: (c) => (child = c) });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status !== undefined, 60_000, 'the daemon to listen');
    child!.kill('SIGTERM');
    const r = await run;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/Avito call failed, retrying/);
    expect(r.stderr).not.toMatch(/cannot start/);
  });

  it('item 2: run with no CRM connector warns loudly that nothing reaches a CRM', async () => {
    const port = await freePort();
    let child: import('node:child_process').ChildProcess | undefined;
    const env = fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'no-crm.db'), PORT: String(port) });
    delete env.AVITO_SYNC_CONNECTORS;
    const run = runCli(['run'], env, { onSpawn: (c) => (child = c) });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.status !== undefined, 60_000, 'the daemon to listen');
    child!.kill('SIGTERM');
    const r = await run;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/avito-sync: WARNING: No CRM connector is enabled: Avito messages are kept in the ledger and reach no CRM\. To deliver to a CRM set /);
  });

  it('item 4: a second run on a busy PORT exits 1 naming the port', async () => {
    const busy: Server = createServer();
    const port = await new Promise<number>((resolve) => busy.listen(0, '0.0.0.0', () => resolve((busy.address() as { port: number }).port)));
    try {
      const r = await runCli(['run'], fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'busy.db'), PORT: String(port) }));
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`avito-sync: Port ${port} is already in use (EADDRINUSE): another avito-sync or another program listens there; stop it, or set PORT (or run --port) to a free port.`);
      expect(r.stderr).not.toMatch(/destroyed/);
    } finally {
      busy.close();
    }
  });

  it('item 7: a spent refresh token with a fresh AVITO_AUTH_CODE uses the code; auth reset forgets the grant', async () => {
    const oauth = new SandboxAvito();
    await oauth.start();
    try {
      const db = namedLedger(dir, 'oauth.db');
      const first = oauth.issueAuthCode();
      expect((await runCli(['sync'], fakeEnv(oauth, dir, { AVITO_SYNC_DB: db, AVITO_AUTH_CODE: first }))).code).toBe(0);
      // The stored refresh token dies (spent elsewhere); the access token expires.
      oauth.revokeRefreshTokens();
      oauth.expireTokens();
      const stale = await runCli(['sync'], fakeEnv(oauth, dir, { AVITO_SYNC_DB: db, AVITO_AUTH_CODE: first }));
      expect(stale.code).toBe(1);
      expect(stale.stderr).toMatch(/Avito refused both the stored refresh token and AVITO_AUTH_CODE .*authorize the app again, set the fresh code and restart/);
      const fresh = oauth.issueAuthCode();
      const ok = await runCli(['sync'], fakeEnv(oauth, dir, { AVITO_SYNC_DB: db, AVITO_AUTH_CODE: fresh }));
      expect(ok.code, ok.stderr).toBe(0);
      const reset = await runCli(['auth', 'reset'], { AVITO_SYNC_DB: db });
      expect(reset.code, reset.stderr).toBe(0);
      expect(reset.stdout).toMatch(/default: Avito tokens forgotten/);
      const ledger = await openLedger(db);
      try {
        expect(await getToken(ledger.db, 'default', 'avito')).toBeUndefined();
      } finally {
        await ledger.close();
      }
      const connectorReset = await runCli(['auth', 'reset', '--connector', 'amocrm'], { AVITO_SYNC_DB: db });
      expect(connectorReset.stdout).toMatch(/amocrm grant was not stored/);
      expect((await runCli(['auth', 'reset', '--connector', 'nope'], { AVITO_SYNC_DB: db })).code).toBe(2);
    } finally {
      await oauth.stop();
    }
  });

  it('item 13: /metrics has the CRM side; status shows a running daemon and its last poll, no internal cursors', async () => {
    const amo = new SandboxAmo();
    await amo.start();
    const port = await freePort();
    const env = fakeEnvWithAmo(fake, amo, dir, { AVITO_SYNC_DB: namedLedger(dir, 'metrics.db'), PORT: String(port) });
    fake.seed(2, 2);
    let child: import('node:child_process').ChildProcess | undefined;
    const run = runCli(['run'], env, { onSpawn: (c) => (child = c) });
    try {
      const metrics = await waitFor(async () => {
        const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
        return /avito_sync_crm_delivered_total\{account="default",connector="amocrm"\} [1-9]/.test(text) ? text : undefined;
      }, 60_000, 'deliveries in /metrics');
      expect(metrics).toMatch(/avito_sync_crm_calls_total\{account="default",connector="amocrm",operation="deliver"\} [1-9]/);
      expect(metrics).toMatch(/avito_sync_crm_dead_letters_total\{account="default",connector="amocrm"\} 0/);
      const status = await runCli(['status'], env);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/^daemon: running \(pid \d+ on .+, since .+, last heartbeat .+\)$/m);
      expect(status.stdout).toMatch(/^ {2}last poll: \S+, ok$/m);
      expect(status.stdout).not.toMatch(/enqueue:amocrm/);
      expect((await runCli(['--verbose', 'status'], env)).stdout).toMatch(/internal cursor enqueue:amocrm = /);
    } finally {
      child?.kill('SIGTERM');
      await run;
      await amo.stop();
    }
    const after = await runCli(['status'], env);
    expect(after.stdout).toMatch(/^daemon: not running \(last seen /m);
  });
});
