import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { fakeEnv, runCli, tempDir, waitFor } from './helpers.js';
import { namedLedger } from './dialects.js';
import { runInPty } from './pty.js';

/**
 * The operator's first hour (issue 10) at a terminal: Ctrl-C during a backfill under a
 * pseudo-terminal, NO_COLOR, and a demo a person can then use and play in.
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

const ESC = '\x1b';

describe('first hour: at a terminal', { timeout: 120_000 }, () => {
  it('item 10: Ctrl-C during backfill restores the cursor and says how to resume; the bar moves while chats are stored; the resumed summary counts right', async () => {
    const chats = fake.seed(30, 3);
    let release!: () => void;
    // The first 10 chats' messages come back; the rest wait: a backfill visibly under way.
    fake.hold('getMessagesV3', new Promise<void>((r) => (release = r)), 10);
    const env = fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'backfill.db'), LOG_LEVEL: 'info' });
    const pty = runInPty(['backfill', '--ledger-only'], env);
    try {
      await waitFor(() => /recent chats +[1-9]\d* chats stored/.test(pty.output()), 60_000, 'the bar to count stored chats');
      pty.send('\x03');
      const r = await pty.done;
      expect(r.code).toBe(130);
      expect(r.output).toContain('backfill interrupted; everything stored so far is kept. Run the same command again to resume where it stopped.');
      const lastHide = r.output.lastIndexOf(`${ESC}[?25l`);
      expect(r.output.lastIndexOf(`${ESC}[?25h`)).toBeGreaterThan(lastHide);
    } finally {
      release();
    }
    const resumed = await runCli(['backfill', '--ledger-only'], env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/backfill resumed/);
    expect(resumed.stdout).toContain(`chats in the ledger: ${chats.length};`);
  });

  it('item 10: log lines written while the bar shows clear its line first', async () => {
    const env = fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'backfill-logs.db'), LOG_LEVEL: 'info' });
    fake.inject({ op: 'getMessagesV3', kind: '500', times: 1 });
    const r = await runInPty(['backfill', '--ledger-only'], env).done;
    expect(r.code).toBe(0);
    const warn = r.output.indexOf('Avito call failed, retrying');
    expect(warn).toBeGreaterThan(0);
    // The log line starts on a cleared line, not glued to the bar.
    expect(r.output.slice(Math.max(0, warn - 200), warn)).toContain(`\r${ESC}[2K`);
  });

  it('item 11: NO_COLOR turns colour off on a terminal', async () => {
    const env = fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'color.db'), LOG_LEVEL: 'info' });
    const coloured = await runInPty(['sync'], env).done;
    expect(coloured.code).toBe(0);
    expect(coloured.output).toMatch(new RegExp(`${ESC}\\[3\\dm`));
    const plain = await runInPty(['sync'], { ...env, NO_COLOR: '1' }).done;
    expect(plain.code).toBe(0);
    expect(plain.output).toMatch(/Avito pass done/);
    expect(plain.output).not.toMatch(new RegExp(`${ESC}\\[3\\dm`));
  });

  it('item 8: demo --keep prints an export block that works with the other commands, and lets a person act as buyer and manager', async () => {
    const stateFile = path.join(dir, 'demo-state.json');
    let child: ChildProcess | undefined;
    let stdout = '';
    const demo = runCli(['demo', '--keep'], { AVITO_SYNC_DEMO_STATE: stateFile }, {
      onSpawn: (c) => {
        child = c;
        c.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      },
    });
    try {
      await waitFor(() => /Play a part/.test(stdout), 60_000, 'the demo to finish its story');
      const env: Record<string, string> = { AVITO_SYNC_DEMO_STATE: stateFile };
      for (const m of stdout.matchAll(/^export ([A-Z_]+)=(.*)$/gm)) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
      expect(Object.keys(env)).toEqual(expect.arrayContaining(['AVITO_CLIENT_ID', 'AVITO_CLIENT_SECRET', 'AVITO_API_URL', 'AMOCRM_BASE_URL', 'AMOCRM_ACCESS_TOKEN', 'AVITO_SYNC_DB']));
      const status = await runCli(['status'], env);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/daemon: running/);
      const chats = await runCli(['chats', 'list'], env);
      expect(chats.code, chats.stderr).toBe(0);
      expect(chats.stdout).toMatch(/Иван/);
      const buyer = await runCli(['demo', 'buyer', 'Можно посмотреть завтра?'], env);
      expect(buyer.code, buyer.stderr).toBe(0);
      expect(buyer.stdout).toMatch(/Иван wrote «Можно посмотреть завтра\?» on Avito → note on lead #\d+ in amoCRM/);
      const manager = await runCli(['demo', 'manager', 'Да, приходите к 12:00'], env);
      expect(manager.code, manager.stderr).toBe(0);
      expect(manager.stdout).toMatch(/Иван got «Да, приходите к 12:00» on Avito/);
    } finally {
      child?.kill('SIGINT');
      const r = await demo;
      expect(r.code).toBe(0);
    }
    const after = await runCli(['demo', 'buyer', 'hello'], { AVITO_SYNC_DEMO_STATE: stateFile });
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/No demo is running: start one with `avito-sync demo --keep`/);
  });
});
