import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { fakeEnv, runCli, tempDir } from './helpers.js';
import { namedLedger } from './dialects.js';

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

describe('CLI', () => {
  it('sync --once with no credentials exits 2 naming AVITO_CLIENT_ID', async () => {
    const r = await runCli(['sync', '--once'], { AVITO_SYNC_DB: path.join(dir, 'none.db') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/AVITO_CLIENT_ID/);
    expect(r.stderr).not.toMatch(/at .*\.js/); // one sentence, no stack
  });

  it('a bad value exits 2 with a sentence naming the key', async () => {
    const r = await runCli(['status'], { PORT: 'eighty', AVITO_SYNC_DB: path.join(dir, 'x.db') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PORT/);
    const r2 = await runCli(['status'], { AVITO_CHAT_TYPES: 'u2i,chats', AVITO_SYNC_DB: path.join(dir, 'x.db') });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/AVITO_CHAT_TYPES/);
  });

  it('a bad config file value names its path', async () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'accounts:\n  - id: main\n    avito:\n      clientId: a\n      clientSecret: b\n      requestsPerSecond: -3\n');
    const r = await runCli(['--config', file, 'status'], { AVITO_SYNC_DB: path.join(dir, 'y.db') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/AVITO_REQUESTS_PER_SECOND \(or accounts\[0\]\.avito\.requestsPerSecond/);
  });

  it('unknown commands and options exit 2', async () => {
    expect((await runCli(['frobnicate'], {})).code).toBe(2);
    expect((await runCli(['status', '--bogus'], {})).code).toBe(2);
  });

  it('--help exits 0', async () => {
    const r = await runCli(['--help'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/sync/);
  });

  it('sync --once with AVITO_SYNC_CONNECTORS=none fills the ledger; status --json shows it', async () => {
    fake.seed(5, 4);
    const env = fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'cli.db') });
    const r = await runCli(['sync', '--once'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/20 new messages/);
    const s = await runCli(['status', '--json'], env);
    expect(s.code).toBe(0);
    const status = JSON.parse(s.stdout) as { accounts: { messages: number; chats: number; cursors: Record<string, string>; token: { expired: boolean } }[] };
    expect(status.accounts[0]!.messages).toBe(20);
    expect(status.accounts[0]!.chats).toBe(5);
    expect(Object.keys(status.accounts[0]!.cursors)).toEqual(['chats:u2i,u2u']);
    expect(status.accounts[0]!.token.expired).toBe(false);
  });

  it('the same key from flags beats env, env beats the file', async () => {
    const file = path.join(dir, 'prec.json');
    writeFileSync(file, JSON.stringify({ db: path.join(dir, 'from-file.db'), accounts: [{ id: 'main' }] }));
    // status never creates a ledger: an empty file is one SQLite opens.
    for (const n of ['from-env.db', 'from-flag.db', 'from-file.db']) writeFileSync(path.join(dir, n), '');
    const viaEnv = await runCli(['--config', file, 'status', '--json'], { AVITO_SYNC_DB: path.join(dir, 'from-env.db') });
    expect(JSON.parse(viaEnv.stdout).ledger).toMatch(/from-env\.db$/);
    const viaFlag = await runCli(['--config', file, '--db', path.join(dir, 'from-flag.db'), 'status', '--json'], { AVITO_SYNC_DB: path.join(dir, 'from-env.db') });
    expect(JSON.parse(viaFlag.stdout).ledger).toMatch(/from-flag\.db$/);
    const viaFile = await runCli(['--config', file, 'status', '--json'], {});
    expect(JSON.parse(viaFile.stdout).ledger).toMatch(/from-file\.db$/);
  });

  it('operator commands: chats list, messages list, send, delete, blacklist', async () => {
    const chat = fake.addChat({ buyerName: 'Ivan' });
    fake.addMessage(chat.id, { text: 'Is it still for sale?' });
    const env = fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'ops.db') });
    const list = await runCli(['chats', 'list', '--limit', '100'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/Ivan/);
    const msgs = await runCli(['messages', 'list', chat.id], env);
    expect(msgs.stdout).toMatch(/Is it still for sale\?/);
    const sent = await runCli(['send', chat.id, 'Yes, it is'], env);
    expect(sent.code, sent.stderr).toBe(0);
    const id = /sent (\S+)/.exec(sent.stdout)![1]!;
    expect((await runCli(['delete', chat.id, id], env)).code).toBe(0);
    expect((await runCli(['blacklist', String(chat.buyer.id)], env)).code).toBe(0);
    expect(fake.blacklist.some((b) => b.user_id === chat.buyer.id)).toBe(true);
    const tooLong = await runCli(['send', chat.id, 'x'.repeat(1001)], env);
    expect(tooLong.code).toBe(2);
  });

  it('doctor explains a tariff without the Messenger API and exits 1', async () => {
    fake.mode.tariff = true;
    try {
      const r = await runCli(['doctor'], fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'doc.db') }));
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/FAIL Avito Messenger API: Avito answered 402/);
      expect(r.stdout).toMatch(/tariff/);
    } finally {
      fake.mode.tariff = false;
    }
  });

  it('doctor flags the employee-key symptom on a chat the ledger knows', async () => {
    const env = fakeEnv(fake, dir, { AVITO_SYNC_DB: namedLedger(dir, 'doc2.db') });
    expect((await runCli(['sync', '--once'], env)).code).toBe(0);
    fake.mode.employeeKey = true;
    try {
      const r = await runCli(['doctor'], env);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/FAIL Avito chat access: Avito answered 403: permission denied/);
      expect(r.stdout).toMatch(/company's main account key/);
    } finally {
      fake.mode.employeeKey = false;
    }
  });
});
