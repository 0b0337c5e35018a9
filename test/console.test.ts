import { afterEach, describe, expect, it } from 'vitest';
import { baseUrlFromReferer } from '../connectors/amocrm/client.js';
import { getToken } from '../src/ledger/tokens.js';
import { connectorStore } from '../src/ledger/connector-state.js';
import { CONSOLE_PASSWORD, ConsoleClient, consoleWorld, type ConsoleWorld } from './console-fixture.js';
import { deliveredIds, runCli, waitFor } from './helpers.js';

let world: ConsoleWorld | undefined;
afterEach(async () => {
  await world?.stop();
  world = undefined;
});

describe('console: access', () => {
  it('is off without CONSOLE_PASSWORD', async () => {
    world = await consoleWorld({ CONSOLE_PASSWORD: '' });
    expect((await fetch(`${world.url}/console`)).status).toBe(404);
    expect((await fetch(`${world.url}/oauth/avito/callback?code=x&state=y`)).status).toBe(404);
  });

  it('asks for a login; a wrong password is refused; the session cookie is HttpOnly, SameSite=Strict, Secure behind HTTPS', async () => {
    world = await consoleWorld();
    const c = new ConsoleClient(world.url);
    const first = await c.request('/console/accounts');
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/console/login');
    const wrong = await c.login('not-the-password');
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('Wrong password');
    const ok = await c.login(CONSOLE_PASSWORD);
    expect(ok.status).toBe(303);
    const set = ok.headers.getSetCookie().find((v) => v.startsWith('avito_sync_console='))!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).not.toMatch(/Secure/);
    const page = await c.request('/console/accounts');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'/);

    const behindProxy = new ConsoleClient(world.url);
    const form = await (await behindProxy.request('/console/login', { headers: { 'x-forwarded-proto': 'https' } })).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(form)![1]!;
    const secure = await behindProxy.request('/console/login', { form: { _csrf: csrf, password: CONSOLE_PASSWORD }, headers: { 'x-forwarded-proto': 'https' } });
    expect(secure.headers.getSetCookie().find((v) => v.startsWith('avito_sync_console='))).toMatch(/; Secure/);
  });

  it('rate-limits login attempts', async () => {
    world = await consoleWorld();
    const c = new ConsoleClient(world.url);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await c.login('wrong-password-guess')).status);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses[5]).toBe(429);
  });

  it('refuses an action without the CSRF token, and a login without the form token', async () => {
    world = await consoleWorld();
    const c = new ConsoleClient(world.url);
    expect((await c.request('/console/login', { form: { password: CONSOLE_PASSWORD } })).status).toBe(403);
    await c.login(CONSOLE_PASSWORD);
    expect((await c.request('/console/dead-letters/retry', { form: { id: 'all' } })).status).toBe(403);
    expect((await c.request('/console/dead-letters/retry', { form: { id: 'all', _csrf: 'forged' } })).status).toBe(403);
    expect((await c.request('/console/connect/amocrm/default', { form: {} })).status).toBe(403);
    const csrf = await c.csrf();
    const ok = await c.request('/console/dead-letters/retry', { form: { id: 'all', _csrf: csrf } });
    expect(ok.status).toBe(303);
  });
});

describe('console: connect flows', () => {
  it('a forged, reused or cross-provider state is refused and nothing is exchanged', async () => {
    world = await consoleWorld();
    const code = world.amo.issueAuthCode();
    const forged = await fetch(`${world.url}/oauth/amocrm/callback?code=${code}&state=forged-state&referer=evil.example`);
    expect(forged.status).toBe(400);
    expect(await forged.text()).toContain('not started from this console');
    expect(world.amo.authCodes.has(code)).toBe(true); // never sent to amoCRM
    const store = connectorStore(world.rt.ledger.db, 'default', 'amocrm');
    expect(await store.get('oauth_refresh_token')).toBeUndefined();

    // A real state for Avito is no good at amoCRM's callback, and works once only.
    const c = new ConsoleClient(world.url);
    await c.login(CONSOLE_PASSWORD);
    const start = await c.request('/console/connect/avito/default', { form: { _csrf: await c.csrf() } });
    expect(start.status).toBe(303);
    const consent = new URL(start.headers.get('location')!);
    expect(consent.origin + consent.pathname).toBe(`${world.avito.url}/oauth`);
    expect(consent.searchParams.get('scope')).toBe('messenger:read,messenger:write,user:read,items:info');
    expect(consent.searchParams.get('response_type')).toBe('code');
    const state = consent.searchParams.get('state')!;
    expect(state.length).toBeGreaterThanOrEqual(32);
    expect((await fetch(`${world.url}/oauth/amocrm/callback?code=${code}&state=${state}`)).status).toBe(400);
    expect((await fetch(`${world.url}/oauth/avito/callback?code=${world.avito.issueAuthCode()}&state=${state}`)).status).toBe(400); // already taken
    expect((await getToken(world.rt.ledger.db, 'default', 'avito'))?.refresh_token ?? null).toBeNull();
  });

  it('with only client id and secret, run starts, the console says what to connect; connecting amoCRM delivers without a restart; no token in a page or a log', async () => {
    world = await consoleWorld();
    const chat = world.avito.addChat();
    const msg = world.avito.addMessage(chat.id, { text: 'before connecting' });
    await world.daemon.pollJobs.get('default')!.trigger();
    const c = new ConsoleClient(world.url);
    await c.login(CONSOLE_PASSWORD);
    const before = await (await c.request('/console/accounts')).text();
    expect(before).toContain('Connect amoCRM for account &#34;default&#34;');
    expect(deliveredIds(world.amo)).toEqual([]);

    const start = await c.request('/console/connect/amocrm/default', { form: { _csrf: await c.csrf() } });
    const consentUrl = start.headers.get('location')!;
    expect(consentUrl.startsWith(`${world.amo.url}/oauth?`)).toBe(true);
    const allowHref = /id="allow" href="([^"]+)"/.exec(await (await fetch(consentUrl)).text())![1]!.replace(/&amp;/g, '&');
    const back = await fetch(world.amo.url + allowHref, { redirect: 'manual' });
    const callback = back.headers.get('location')!;
    expect(callback.startsWith(`${world.url}/oauth/amocrm/callback?`)).toBe(true);
    const done = await fetch(callback);
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('amoCRM is connected');
    await waitFor(() => deliveredIds(world!.amo).includes(msg.id), 15_000, 'the waiting message in amoCRM');

    const store = connectorStore(world.rt.ledger.db, 'default', 'amocrm');
    const refresh = (await store.get('oauth_refresh_token'))!;
    const access = (await store.get('oauth_access_token'))!;
    expect(refresh).toMatch(/^amo-refresh-/);
    const after = await (await c.request('/console/accounts')).text();
    expect(after).toContain('connected (OAuth)');
    expect(after).not.toContain('Connect amoCRM for account');
    const code = new URL(callback).searchParams.get('code')!;
    for (const secret of [refresh, access, code, world.amo.oauth.clientSecret, world.avito.clientSecret, CONSOLE_PASSWORD]) {
      expect(after).not.toContain(secret);
      expect(world.lines.join('\n')).not.toContain(secret);
    }
  });

  it('Connect Avito keeps the rotating refresh token in the ledger and uses it', async () => {
    world = await consoleWorld();
    const c = new ConsoleClient(world.url);
    await c.login(CONSOLE_PASSWORD);
    const start = await c.request('/console/connect/avito/default', { form: { _csrf: await c.csrf() } });
    const allowHref = /id="allow" href="([^"]+)"/.exec(await (await fetch(start.headers.get('location')!)).text())![1]!.replace(/&amp;/g, '&');
    const callback = (await fetch(world.avito.url + allowHref, { redirect: 'manual' })).headers.get('location')!;
    const done = await fetch(callback);
    expect(done.status).toBe(200);
    const row = (await getToken(world.rt.ledger.db, 'default', 'avito'))!;
    expect(row.refresh_token).toBeTruthy();
    // The next refresh rotates it and saves the new one.
    world.avito.expireTokens();
    world.rt.accounts[0]!.client.tokens.invalidate(row.access_token);
    await world.rt.accounts[0]!.client.tokens.refresh('test');
    const rotated = (await getToken(world.rt.ledger.db, 'default', 'avito'))!;
    expect(rotated.refresh_token).toBeTruthy();
    expect(rotated.refresh_token).not.toBe(row.refresh_token);
    expect(world.lines.join('\n')).not.toContain(row.refresh_token!);
  });
});

describe('console: pieces', () => {
  it("amoCRM's referer is trusted only when it names an amoCRM or Kommo host", () => {
    expect(baseUrlFromReferer('shop.amocrm.ru')).toBe('https://shop.amocrm.ru');
    expect(baseUrlFromReferer('shop.kommo.com')).toBe('https://shop.kommo.com');
    expect(baseUrlFromReferer('evil.example')).toBeUndefined();
    expect(baseUrlFromReferer('shop.amocrm.ru.evil.example')).toBeUndefined();
    expect(baseUrlFromReferer('127.0.0.1:8080')).toBeUndefined();
    expect(baseUrlFromReferer(undefined)).toBeUndefined();
  });
});

describe('demo --console', () => {
  it('opens the console on the sandboxes with a printed password', async () => {
    let child: import('node:child_process').ChildProcess | undefined;
    let out = '';
    const done = runCli(['demo', '--console'], {}, {
      onSpawn: (c) => {
        child = c;
        c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      },
    });
    try {
      const url = await waitFor(() => /console: (http:\/\/127\.0\.0\.1:\d+)\/console/.exec(out)?.[1], 60_000, 'the console address');
      const password = await waitFor(() => /console password: (\S+)/.exec(out)?.[1], 5_000, 'the password');
      const c = new ConsoleClient(url!);
      expect((await c.login(password!)).status).toBe(303);
      const page = await (await c.request('/console/accounts')).text();
      expect(page).toContain('Connect Avito');
      expect(page).toContain('healthy');
    } finally {
      child?.kill('SIGTERM');
    }
    const r = await done;
    expect(r.code).toBe(0);
  });
});
