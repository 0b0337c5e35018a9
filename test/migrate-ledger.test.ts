import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { openLedger, type Ledger } from '../src/ledger/database.js';
import { COPIED_TABLES } from '../src/ledger/migrate-ledger.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { createTestDatabase, SUITE_DIALECT, TEST_PG } from './dialects.js';
import { deliveredIds, fakeEnvWithAmo, runCli, tempDir } from './helpers.js';

/**
 * Issue 12, item 5: `avito-sync migrate-ledger --from FILE --to postgres://…` moves a real SQLite
 * ledger (made by `sync` against the fakes) into a real PostgreSQL without losing a cursor, a
 * token or an outbox row: after the move, `sync` on PostgreSQL sends nothing again. Runs in the
 * matrix's SQLite column when AVITO_SYNC_TEST_PG is set (the source is always SQLite).
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe.skipIf(!TEST_PG || SUITE_DIALECT === 'postgres')('migrate-ledger: SQLite → PostgreSQL (needs AVITO_SYNC_TEST_PG)', () => {
  it('copies every table in one transaction, checks the counts, refuses a non-empty target unless --replace, and the daemon goes on from the copy without sending anything twice', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const pg = createTestDatabase();
    cleanups.push(() => pg.drop());
    const avito = new SandboxAvito();
    const amo = new SandboxAmo();
    await avito.start();
    await amo.start();
    cleanups.push(() => avito.stop(), () => amo.stop());
    const file = path.join(dir, 'ledger.db');
    const sqliteEnv = fakeEnvWithAmo(avito, amo, dir, { AVITO_SYNC_DB: file });
    const chats = avito.seed(4, 3);

    // A lived-in ledger: messages delivered, a reply sent, an operator action, a dead letter.
    expect((await runCli(['sync', '--once'], sqliteEnv)).code).toBe(0);
    const leads = [...amo.leads.values()];
    amo.managerNote(leads[0]!.id, '/avito Приезжайте завтра');
    amo.tagLead(leads[1]!.id, 'avito-blacklist');
    expect((await runCli(['sync', '--once'], sqliteEnv)).code).toBe(0);
    const src: Ledger = await openLedger(file);
    const now = Date.now();
    // Tables a short sync leaves empty get a row each, so that every table is seen to move.
    await src.db.insertInto('webhook_events').values({ source: 'avito', account_id: 'default', event_id: 'evt-1', received_at: now, body: '{}', status: 'processed', error: null }).execute();
    await src.db.insertInto('item_errors').values({ account_id: 'default', scope: 'poll.message', ref: 'm-1', error: 'bad shape', at: now }).execute();
    await src.db.insertInto('voice_files').values({ account_id: 'default', voice_id: 'v-1', path: null, size: null, fetched_at: null, error: null, attempts: 1 }).onConflict((oc) => oc.doNothing()).execute();
    await src.db.insertInto('settings').values({ key: 'migrate-test', value: 'kept' }).onConflict((oc) => oc.doNothing()).execute();
    const dead = await src.db.selectFrom('deliveries').select('id').orderBy('id', 'desc').executeTakeFirstOrThrow();
    await src.db.updateTable('deliveries').set({ status: 'dead', last_error: 'kept as a dead letter' }).where('id', '=', dead.id).execute();
    const counts = async (l: Ledger) => Object.fromEntries(await Promise.all(COPIED_TABLES.map(async (t) => [t, Number((await l.db.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)] as const)));
    const before = await counts(src);
    for (const t of COPIED_TABLES) expect(before[t], `${t} has rows in the source`).toBeGreaterThan(0);
    const cursors = await src.db.selectFrom('cursors').selectAll().orderBy('account_id').orderBy('name').execute();
    const tokens = await src.db.selectFrom('tokens').selectAll().orderBy('provider').execute();
    const outbox = await src.db.selectFrom('deliveries').selectAll().orderBy('id').execute();
    await src.close();

    const r = await runCli(['migrate-ledger', '--from', file, '--to', pg.url], {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/in one transaction: \d+ rows in 16 tables, each count checked/);
    expect(r.stdout).toMatch(/deliveries\s+\d+/);
    const password = new URL(pg.url).password;
    if (password) expect(r.stdout + r.stderr).not.toContain(password);

    const dst: Ledger = await openLedger(pg.url);
    cleanups.push(() => dst.close());
    expect(await counts(dst)).toEqual(before);
    expect(await dst.db.selectFrom('cursors').selectAll().orderBy('account_id').orderBy('name').execute()).toEqual(cursors);
    expect(await dst.db.selectFrom('tokens').selectAll().orderBy('provider').execute()).toEqual(tokens);
    expect(await dst.db.selectFrom('deliveries').selectAll().orderBy('id').execute()).toEqual(outbox);

    // A target that holds a ledger is refused (exit 2), and left as it is; --replace takes it over.
    const again = await runCli(['migrate-ledger', '--from', file, '--to', pg.url], {});
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already holds a ledger \(.*messages: \d+.*\); nothing was copied\. .*--replace/);
    expect(await counts(dst)).toEqual(before);
    const replaced = await runCli(['migrate-ledger', '--from', file, '--to', pg.url, '--replace'], {});
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(replaced.stdout).toMatch(/rows the target held before were removed/);
    expect(await counts(dst)).toEqual(before);

    // The daemon's work goes on from the copy: nothing delivered or replied twice, new ids after the copied ones.
    const notes = deliveredIds(amo).length;
    const sellerTexts = () => [...avito.chats.values()].flatMap((c) => c.messages.filter((m) => m.author_id === avito.userId && m.content.text === 'Приезжайте завтра'));
    expect(sellerTexts()).toHaveLength(1);
    const fresh = avito.addMessage(chats[0]!.id, { text: 'after the move' });
    const pgEnv = { ...sqliteEnv, AVITO_SYNC_DB: pg.url };
    const after = await runCli(['sync', '--once'], pgEnv);
    expect(after.code, after.stderr).toBe(0);
    expect(deliveredIds(amo)).toHaveLength(notes + 1);
    expect(deliveredIds(amo)).toContain(fresh.id);
    expect(new Set(deliveredIds(amo)).size).toBe(notes + 1);
    expect(sellerTexts()).toHaveLength(1);

    // Not a PostgreSQL URL: exit 2 naming --to.
    const wrong = await runCli(['migrate-ledger', '--from', file, '--to', path.join(dir, 'other.db')], {});
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--to must be a PostgreSQL URL/);
  });
});
