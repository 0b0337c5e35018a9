import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { AmoConnector } from '../connectors/amocrm/connector.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import type { Runtime } from '../src/runtime.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { ledgerLocation, SUITE_DIALECT } from './dialects.js';
import { fakeEnv, tempDir, testRuntime, waitFor } from './helpers.js';

/**
 * Issue 12, item 3: any daemon delivers for any account (only Avito polling and replies are
 * leased), so two processes can find one amoCRM token stale together. amoCRM's refresh token
 * works once (the fake answers a second use with 400 "Token has been revoked", as amoCRM does),
 * so the CRM token's refresh runs under `ConnectorStore.update`'s lock. Two runtimes, each with its
 * own ledger handle (its own SQLite connection, its own PostgreSQL pool) on one database, stand
 * for two daemons; the fake holds the first refresh until the second is seen waiting for the
 * lock, so the race happens every run.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const account = (rt: Runtime) => (rt.connectors[0]!.instance as unknown as AmoConnector).client.request({ method: 'GET', path: '/api/v4/account', schema: z.unknown() });

describe(`amoCRM OAuth with several daemons on ${SUITE_DIALECT}`, () => {
  it('a single-use refresh token is used once across daemons: the second waits for the lock and uses the pair the first stored', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const db = ledgerLocation(dir); // the matrix's column: a SQLite file, or a PostgreSQL database dropped with the folder
    const avito = new SandboxAvito();
    const amo = new SandboxAmo();
    await avito.start();
    await amo.start();
    cleanups.push(() => avito.stop(), () => amo.stop());
    const env = fakeEnv(avito, dir, {
      AVITO_SYNC_DB: db, AVITO_SYNC_CONNECTORS: 'amocrm', AMOCRM_BASE_URL: amo.url,
      AMOCRM_CLIENT_ID: amo.oauth.clientId, AMOCRM_CLIENT_SECRET: amo.oauth.clientSecret, AMOCRM_REDIRECT_URI: amo.oauth.redirectUri,
      AMOCRM_AUTH_CODE: amo.issueAuthCode(),
    });
    const a = await testRuntime(env, 'debug');
    cleanups.push(() => a.rt.close());
    await account(a.rt); // the code becomes the first pair, stored in the shared ledger
    const b = await testRuntime(env, 'debug');
    cleanups.push(() => b.rt.close());
    expect(amo.count('/oauth2/access_token', 'POST', 200)).toBe(1);

    // Both daemons' access token stops working: each gets a 401 and wants to refresh.
    amo.expireOAuthTokens();
    let release!: () => void;
    amo.hold('/oauth2/access_token', new Promise<void>((r) => (release = r)));
    const first = account(a.rt);
    await waitFor(() => amo.held === 1, 10_000, "the first daemon's refresh at amoCRM");
    const second = account(b.rt);
    await waitFor(() => b.lines.some((l) => l.includes('connector state locked by another process')), 10_000, 'the second daemon waiting for the lock');
    expect(amo.held).toBe(1);
    release();
    await Promise.all([first, second]);

    // One refresh reached amoCRM (plus the code exchange); none was refused as spent.
    expect(amo.count('/oauth2/access_token', 'POST', 200)).toBe(2);
    expect(amo.count('/oauth2/access_token', 'POST', 400)).toBe(0);
    expect(b.lines.some((l) => l.includes('already refreshed by another process'))).toBe(true);
    // Both keep working with the pair now stored; neither refreshes again.
    await Promise.all([account(a.rt), account(b.rt)]);
    expect(amo.count('/oauth2/access_token', 'POST')).toBe(2);
    expect(amo.count('/api/v4/account', 'GET', 200)).toBe(5);
  });
});
