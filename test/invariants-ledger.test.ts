import { statSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { getCursor } from '../src/ledger/cursors.js';
import { openLedger, type Ledger } from '../src/ledger/database.js';
import { getToken } from '../src/ledger/tokens.js';
import { memoryLogger, secretScrubber } from '../src/log/logger.js';
import type { Runtime } from '../src/runtime.js';
import { pollAccount } from '../src/sync/poller.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { failInserts, SUITE_DIALECT } from './dialects.js';
import { fakeEnv, runCli, tempDir, testRuntime } from './helpers.js';

let fake: SandboxAvito;
let rt: Runtime | undefined;
let cleanup: () => void;

afterEach(async () => {
  await rt?.close();
  rt = undefined;
  await fake?.stop();
  cleanup?.();
});

async function setup(env: Record<string, string> = {}, level = 'warn') {
  fake = new SandboxAvito();
  await fake.start();
  const t = tempDir();
  cleanup = t.cleanup;
  const made = await testRuntime(fakeEnv(fake, t.dir, env), level);
  rt = made.rt;
  return { dir: t.dir, lines: made.lines };
}

function poll() {
  const acc = rt!.accounts[0]!;
  return pollAccount({ ledger: rt!.ledger, client: acc.client, log: rt!.log, voice: rt!.voice }, { chatTypes: ['u2i', 'u2u'] });
}

async function duplicateCount(file: string): Promise<{ total: number; distinct: number }> {
  const ledger = await openLedger(file);
  const counts = await duplicateCountIn(ledger);
  await ledger.close();
  return counts;
}

async function duplicateCountIn(ledger: Ledger): Promise<{ total: number; distinct: number }> {
  const row = await ledger.db
    .selectFrom('messages')
    .select([sql<number>`count(*)`.as('total'), sql<number>`count(distinct account_id || ':' || message_id)`.as('distinct')])
    .executeTakeFirstOrThrow();
  return { total: Number(row.total), distinct: Number(row.distinct) };
}

describe('invariant 1: every Avito message is in the ledger once (unique by account and message id)', () => {
  it('repeated and overlapping passes store each message once', async () => {
    await setup();
    const chats = fake.seed(120, 7);
    await poll();
    // Force every chat to be fetched again, and add messages that shift the pages.
    await rt!.ledger.db.updateTable('chats').set({ synced_updated: null }).execute();
    await rt!.ledger.db.deleteFrom('cursors').execute();
    for (const c of chats.slice(0, 10)) fake.addMessage(c.id, { text: 'late' });
    await poll();
    await poll();
    const counts = await duplicateCountIn(rt!.ledger);
    expect(counts.total).toBe(120 * 7 + 10);
    expect(counts.distinct).toBe(counts.total);
  });

  it('the ledger refuses a second row for the same account and message id', async () => {
    await setup();
    const row = {
      account_id: 'default', message_id: 'm1', chat_id: 'c1', author_id: null, direction: 'in', type: 'text', created: 1, text: 'x',
      content: '{}', quote: null, flow_id: null, bot_name: null, is_own: 0, voice_id: null, source: 'poll', inserted_at: 1,
    };
    await rt!.ledger.db.insertInto('messages').values(row).execute();
    await expect(rt!.ledger.db.insertInto('messages').values(row).execute()).rejects.toThrow(/UNIQUE|unique constraint/);
  });

  it('a sync killed mid-pass (SIGKILL), chat writes waiting for a shared commit, and run again leaves every message exactly once; no chat is marked synced without its messages (invariant 5)', async () => {
    fake = new SandboxAvito();
    await fake.start();
    const t = tempDir();
    cleanup = t.cleanup;
    fake.seed(300, 20);
    const env = fakeEnv(fake, t.dir, { AVITO_REQUESTS_PER_SECOND: '200' });

    let messagePages = 0;
    let killed = false;
    const first = await runCli(['sync', '--once'], env, {
      onSpawn: (child) => {
        fake.onRequest = (r) => {
          if (r.op === 'getMessagesV3' && ++messagePages === 150 && !killed) {
            killed = true;
            child.kill('SIGKILL');
          }
        };
      },
    });
    fake.onRequest = undefined;
    expect(first.signal).toBe('SIGKILL');
    const partial = await duplicateCount(env.AVITO_SYNC_DB!);
    expect(partial.total).toBeLessThan(300 * 20);
    // What the kill left: each chat's sync mark came with all its messages, or neither did (the
    // next pass skips a marked chat, so a mark without its rows would lose them for good).
    const left = await openLedger(env.AVITO_SYNC_DB!);
    const marked = await left.db.selectFrom('chats').select('chat_id').where('synced_updated', 'is not', null).execute();
    const perChat = await left.db.selectFrom('messages').select(['chat_id', sql<number>`count(*)`.as('n')]).groupBy('chat_id').execute();
    await left.close();
    const stored = new Map(perChat.map((r) => [r.chat_id, Number(r.n)]));
    expect(marked.length).toBeGreaterThan(0);
    for (const c of marked) expect(stored.get(c.chat_id) ?? 0).toBe(20);
    expect([...stored.values()].every((n) => n === 20)).toBe(true);

    const second = await runCli(['sync', '--once'], env);
    expect(second.code, second.stderr).toBe(0);
    const counts = await duplicateCount(env.AVITO_SYNC_DB!);
    expect(counts).toEqual({ total: 6000, distinct: 6000 });
  });
});

describe('invariant 5: a cursor moves only in the same transaction as the rows it covers', () => {
  it('a failed page write leaves neither its rows nor a moved cursor', async () => {
    await setup();
    const chats = fake.seed(150, 2);
    // The oldest chat is on the second chat page; its first message cannot be written.
    const victim = fake.chats.get(chats[0]!.id)!.messages[0]!.id;
    const undo = await failInserts(rt!.ledger, 'messages', 'disk says no', { column: 'message_id', value: victim });

    await expect(poll()).rejects.toThrow(/disk says no/);
    expect(await getCursor(rt!.ledger.db, 'default', 'chats:u2i,u2u')).toBeUndefined();
    const stored = await rt!.ledger.db.selectFrom('chats').select('chat_id').execute();
    expect(stored).toHaveLength(149); // every other chat committed; the victim's chat row and messages rolled back together
    expect(stored.some((c) => c.chat_id === chats[0]!.id)).toBe(false);

    await undo();
    const report = await poll();
    expect(report.messagesNew).toBe(2); // only the victim chat was left to fetch
    const high = Math.max(...chats.map((c) => fake.chats.get(c.id)!.updated));
    expect(await getCursor(rt!.ledger.db, 'default', 'chats:u2i,u2u')).toBe(String(high));
  });

  it('a pass cut short by Avito errors does not move the cursor', async () => {
    await setup();
    fake.seed(150, 1);
    fake.inject({ op: 'getChatsV2', kind: '503', times: 100 });
    await poll().catch(() => undefined);
    fake.clearFaults();
    expect(await getCursor(rt!.ledger.db, 'default', 'chats:u2i,u2u')).toBeUndefined();
    // The second chat page fails for good: the first page's rows stay, the cursor does not move.
    let pages = 0;
    fake.onRequest = (r) => {
      if (r.op === 'getChatsV2' && ++pages === 1) fake.inject({ op: 'getChatsV2', kind: '503', times: 100 });
    };
    await expect(poll()).rejects.toThrow(/503/);
    fake.onRequest = undefined;
    fake.clearFaults();
    expect(await rt!.ledger.db.selectFrom('chats').select('chat_id').execute()).toHaveLength(100);
    expect(await getCursor(rt!.ledger.db, 'default', 'chats:u2i,u2u')).toBeUndefined();
    await poll();
    expect(await getCursor(rt!.ledger.db, 'default', 'chats:u2i,u2u')).toBeDefined();
  });
});

describe('invariant 6: secrets never reach logs; the ledger file is readable by its owner only', () => {
  it('no token, client secret or refresh token appears in trace-level logs', async () => {
    fake = new SandboxAvito();
    await fake.start();
    const code = fake.issueAuthCode();
    const t = tempDir();
    cleanup = t.cleanup;
    const made = await testRuntime(fakeEnv(fake, t.dir, { AVITO_AUTH_CODE: code, WEBHOOK_SECRET: 'whsec_0123456789abcdef' }), 'trace');
    rt = made.rt;
    fake.seed(2, 2);
    await poll();
    fake.expireTokens();
    await poll();
    const token = (await getToken(rt.ledger.db, 'default', 'avito'))!;
    // Deliberate attempts to log secrets: by field, nested, and inside a message string.
    rt.log.info({ access_token: token.access_token, headers: { authorization: `Bearer ${token.access_token}` }, cfg: { clientSecret: fake.clientSecret } }, `token is ${token.access_token}`);
    const text = made.lines.join('\n');
    expect(made.lines.length).toBeGreaterThan(5);
    for (const secret of [fake.clientSecret, token.access_token, token.refresh_token!, code, 'whsec_0123456789abcdef']) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('[Redacted]');
  });

  it('the scrubber also covers secrets registered later (rotated tokens)', () => {
    const { logger, lines } = memoryLogger();
    secretScrubber.add('rotated-secret-value-123');
    logger.warn({ nested: { deeper: { value: 'rotated-secret-value-123' } } }, 'x rotated-secret-value-123');
    expect(lines.join('')).not.toContain('rotated-secret-value-123');
  });

  it.skipIf(SUITE_DIALECT !== 'sqlite')('the ledger, its WAL and kept voice files are mode 0600 in a 0700 folder', async () => {
    const { dir } = await setup();
    const chat = fake.addChat();
    fake.addMessage(chat.id, { type: 'voice', content: { voice: { voice_id: 'v1' } } });
    await poll();
    const mode = (f: string) => statSync(f).mode & 0o777;
    expect(mode(path.join(dir, 'ledger.db'))).toBe(0o600);
    expect(mode(path.join(dir, 'ledger.db-wal'))).toBe(0o600);
    const voice = await rt!.ledger.db.selectFrom('voice_files').select('path').executeTakeFirstOrThrow();
    expect(mode(path.join(dir, voice.path!))).toBe(0o600);
    expect(mode(path.join(dir, 'voice'))).toBe(0o700);
  });

  it.skipIf(SUITE_DIALECT !== 'sqlite')('a ledger created with a loose mode is tightened on open', async () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const file = path.join(t.dir, 'loose.db');
    const { writeFileSync, chmodSync } = await import('node:fs');
    writeFileSync(file, '');
    chmodSync(file, 0o644);
    const ledger = await openLedger(file);
    await ledger.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
