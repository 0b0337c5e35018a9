import { afterEach, describe, expect, it } from 'vitest';
import { OAuthStates } from '../src/console/oauth-states.js';
import { SessionStore } from '../src/console/sessions.js';
import { openLedger, type Ledger } from '../src/ledger/database.js';
import { CONSOLE_PASSWORD, ConsoleClient, consoleWorld, type ConsoleWorld } from './console-fixture.js';
import { SUITE_DIALECT, createTestDatabase, ledgerLocation } from './dialects.js';
import { tempDir } from './helpers.js';

/**
 * The console's sessions and OAuth states live in the ledger, so several daemons behind one load
 * balancer serve one operator: a login, a form or a provider's callback may reach any of them.
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Two handles on one ledger: what two processes sharing it see. */
async function twoHandles(dialect = SUITE_DIALECT): Promise<[Ledger, Ledger]> {
  const t = tempDir('avito-sync-console-shared-');
  const where = ledgerLocation(t.dir, dialect);
  const a = await openLedger(where);
  const b = await openLedger(where);
  cleanups.push(t.cleanup, () => a.close(), () => b.close());
  return [a, b];
}

describe(`console state in the ledger (${SUITE_DIALECT})`, () => {
  const dialect = SUITE_DIALECT;
  it('an OAuth state issued by one process is taken by another, once, for its provider only, and expires', async () => {
    let now = 1_000_000;
    const [a, b] = await twoHandles(dialect);
    const issuer = new OAuthStates(a.db, 1000, () => now);
    const taker = new OAuthStates(b.db, 1000, () => now);
    const forAvito = await issuer.issue({ provider: 'avito', accountId: 'x', redirectUri: 'https://d/oauth/avito/callback' });
    expect(await taker.take(forAvito, 'amocrm')).toBeUndefined();
    // Presented for another provider it is spent all the same: a state is one try.
    expect(await taker.take(forAvito, 'avito')).toBeUndefined();
    const s = await issuer.issue({ provider: 'avito', accountId: 'x', redirectUri: 'https://d/oauth/avito/callback' });
    // The same callback reaching both processes at once: exactly one accepts it.
    const both = await Promise.all([issuer.take(s, 'avito'), taker.take(s, 'avito')]);
    expect(both.filter((p) => p?.accountId === 'x' && p.redirectUri === 'https://d/oauth/avito/callback')).toHaveLength(1);
    expect(both.filter((p) => p === undefined)).toHaveLength(1);
    const late = await issuer.issue({ provider: 'avito', accountId: 'x', redirectUri: 'u' });
    now += 1001;
    expect(await taker.take(late, 'avito')).toBeUndefined();
    expect(await taker.take('never-issued', 'avito')).toBeUndefined();
  });

  it('a session made by one process is live in another, renewed while used, gone everywhere at logout or when idle', async () => {
    let now = 5_000_000;
    const [a, b] = await twoHandles(dialect);
    const here = new SessionStore(a.db, 1000, () => now);
    const there = new SessionStore(b.db, 1000, () => now);
    const s = await here.create();
    expect((await there.get(s.id))?.csrf).toBe(s.csrf);
    now += 900;
    expect(await there.get(s.id)).toBeDefined(); // renewed: idle time counts from here
    now += 900;
    expect(await here.get(s.id)).toBeDefined();
    await there.destroy(s.id);
    expect(await here.get(s.id)).toBeUndefined();
    const idle = await here.create();
    now += 1001;
    expect(await there.get(idle.id)).toBeUndefined();
    expect(await there.get('forged-session-id')).toBeUndefined();
  });

  it('the ledger holds no live session id or state, only their hashes', async () => {
    const [a] = await twoHandles(dialect);
    const s = await new SessionStore(a.db).create();
    const state = await new OAuthStates(a.db).issue({ provider: 'avito', accountId: 'x', redirectUri: 'u' });
    const sessions = JSON.stringify(await a.db.selectFrom('console_sessions').selectAll().execute());
    const states = JSON.stringify(await a.db.selectFrom('oauth_states').selectAll().execute());
    expect(sessions).not.toContain(s.id);
    expect(states).not.toContain(state);
  });
});

// The matrix's PostgreSQL column only: one SQLite file takes one daemon.
describe.skipIf(SUITE_DIALECT !== 'postgres')('console behind a load balancer: two daemons on one PostgreSQL ledger', () => {
  let worlds: ConsoleWorld[] = [];
  afterEach(async () => {
    for (const w of worlds) await w.stop();
    worlds = [];
  });

  it('a login at one daemon is good at the other; a form from one is accepted by the other; logging out at one ends it at both', async () => {
    const pg = createTestDatabase();
    cleanups.push(pg.drop);
    worlds.push(await consoleWorld({ AVITO_SYNC_DB: pg.url }));
    worlds.push(await consoleWorld({ AVITO_SYNC_DB: pg.url }));
    const [a, b] = worlds as [ConsoleWorld, ConsoleWorld];
    const atA = new ConsoleClient(a.url);
    expect((await atA.login(CONSOLE_PASSWORD)).status).toBe(303);
    // The same browser, its next request balanced to B.
    const atB = new ConsoleClient(b.url);
    for (const [k, v] of atA.cookies) atB.cookies.set(k, v);
    const page = await atB.request('/console/accounts');
    expect(page.status).toBe(200);
    const csrf = await atA.csrf();
    const logout = await atB.request('/console/logout', { form: { _csrf: csrf } });
    expect(logout.status).toBe(303);
    expect(logout.headers.get('location')).toBe('/console/login');
    const after = await atA.request('/console/accounts');
    expect(after.status).toBe(303);
    expect(after.headers.get('location')).toBe('/console/login');
  });
});
