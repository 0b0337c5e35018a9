import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { getToken } from '../src/ledger/tokens.js';
import { listDeadLetters } from '../src/ledger/dead-letters.js';
import { connectorStore } from '../src/ledger/connector-state.js';
import { haveChromium, launchChromium, shot } from './browser.js';
import { CONSOLE_PASSWORD, consoleWorld, type ConsoleWorld } from './console-fixture.js';
import { deliveredIds, waitFor } from './helpers.js';

/**
 * The console in a real browser (Debian's chromium driven by playwright-core): one daemon between
 * the sandboxes, walked through like an operator would, a screenshot of every page.
 */
describe.skipIf(!haveChromium() && !process.env.CI)('console in chromium', () => {
  let world: ConsoleWorld;
  let browser: Browser;
  let closeBrowser: () => Promise<void>;
  let page: Page;

  beforeAll(async () => {
    world = await consoleWorld();
    ({ browser, close: closeBrowser } = await launchChromium());
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  });
  afterAll(async () => {
    await closeBrowser?.();
    await world?.stop();
  });

  it('a wrong password is refused, the right one opens the accounts page', async () => {
    await page.goto(`${world.url}/console`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await shot(page, '01-login');
    await page.fill('#password', 'wrong-password');
    await page.click('#login');
    expect(await page.textContent('#flash')).toContain('Wrong password');
    await page.fill('#password', CONSOLE_PASSWORD);
    await page.click('#login');
    expect(new URL(page.url()).pathname).toBe('/console/accounts');
    expect(await page.textContent('#todo')).toContain('Connect amoCRM for account "default"');
    await expect.poll(() => page.locator('a.account-link').first().textContent()).toBe('default');
    await shot(page, '02-accounts-not-connected');
  });

  it('Connect amoCRM walks the consent page and delivers what waited', async () => {
    const chat = world.avito.addChat({ buyerName: 'Иван' });
    const msg = world.avito.addMessage(chat.id, { text: 'Здравствуйте! Ещё продаётся?' });
    await world.daemon.pollJobs.get('default')!.trigger();
    await page.goto(`${world.url}/console/accounts`);
    await page.click('#connect-amocrm-default');
    expect(page.url().startsWith(`${world.amo.url}/oauth?`)).toBe(true);
    await shot(page, '03-amocrm-consent');
    await page.click('#allow');
    expect(new URL(page.url()).pathname).toBe('/oauth/amocrm/callback');
    expect(await page.textContent('#flash')).toContain('amoCRM is connected');
    await shot(page, '04-amocrm-connected');
    await page.click('#continue');
    expect(await page.locator('#todo').count()).toBe(0);
    expect(await page.textContent('body')).toContain('connected (OAuth)');
    await waitFor(() => deliveredIds(world.amo).includes(msg.id), 15_000, 'the waiting message in amoCRM');
    expect(await connectorStore(world.rt.ledger.db, 'default', 'amocrm').get('oauth_refresh_token')).toMatch(/^amo-refresh-/);
  });

  it('Connect Avito walks the consent page; the refresh token lands in the ledger', async () => {
    await page.goto(`${world.url}/console/accounts`);
    await page.click('#connect-avito-default');
    expect(page.url().startsWith(`${world.avito.url}/oauth?`)).toBe(true);
    expect(await page.textContent('body')).toContain('messenger:write');
    await shot(page, '05-avito-consent');
    await page.click('#allow');
    expect(await page.textContent('#flash')).toContain('is connected for account "default"');
    await page.click('#continue');
    expect(await page.textContent('body')).toContain('authorization_code');
    expect((await getToken(world.rt.ledger.db, 'default', 'avito'))?.refresh_token).toBeTruthy();
    await shot(page, '06-accounts-connected');
  });

  it('a forged state is refused', async () => {
    const code = world.amo.issueAuthCode();
    const res = await page.goto(`${world.url}/oauth/amocrm/callback?code=${code}&state=forged&referer=evil.example`);
    expect(res?.status()).toBe(400);
    expect(await page.textContent('#flash')).toContain('not started from this console');
    expect(world.amo.authCodes.has(code)).toBe(true);
    await shot(page, '07-forged-state');
  });

  it('shows an account: recent conversations linked to the CRM and the hourly chart', async () => {
    await page.goto(`${world.url}/console/accounts`);
    await page.click('a.account-link');
    expect(new URL(page.url()).pathname).toBe('/console/accounts/default');
    expect(await page.locator('#activity-chart rect').count()).toBeGreaterThan(0);
    const lead = page.locator('a[href*="/leads/detail/"]');
    expect(await lead.count()).toBeGreaterThan(0);
    await shot(page, '08-account');
  });

  it('a dead letter is retried from its page and reaches the CRM', async () => {
    const chat = world.avito.addChat({ buyerName: 'Мария' });
    world.amo.inject({ path: '/api/v4/leads/notes', method: 'POST', kind: '400', times: 1 });
    const msg = world.avito.addMessage(chat.id, { text: 'Торг уместен?' });
    await world.daemon.pollJobs.get('default')!.trigger();
    const dead = await waitFor(async () => (await listDeadLetters(world.rt.ledger.db))[0], 15_000, 'a dead letter');
    await page.goto(`${world.url}/console/dead-letters`);
    expect(await page.textContent('body')).toContain('amoCRM answered 400');
    await shot(page, '09-dead-letters');
    await page.click(`#retry-${dead!.id}`);
    expect(await page.textContent('#flash')).toContain('1 put back in line');
    await waitFor(() => deliveredIds(world.amo).includes(msg.id), 15_000, 'the retried message in amoCRM');
    await page.reload();
    expect(await page.textContent('body')).toContain('no dead letters');
    await shot(page, '10-dead-letters-retried');
  });

  it('the gap report compares Avito, the ledger and the CRM', async () => {
    await page.goto(`${world.url}/console/gaps`);
    await page.fill('input[name=hours]', '24');
    await page.click('#run-gaps');
    expect(await page.textContent('#gap-count-default')).toBe('0 gaps');
    await shot(page, '11-gaps');
  });
});
