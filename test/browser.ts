import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from './helpers.js';

/** Debian's chromium (`.ci/run` installs it with apt-get); playwright never downloads a browser here. */
export const CHROMIUM = '/usr/bin/chromium';
/** Screenshots of every console page, kept as CI artefacts (git-ignored). */
export const SCREENSHOTS = path.join(ROOT, 'test-results', 'console');

export function haveChromium(): boolean {
  return existsSync(CHROMIUM);
}

/**
 * Launches headless chromium with nothing that calls home. Playwright gives every launch a fresh
 * temporary profile (it refuses a --user-data-dir argument), and removes it on close.
 */
export async function launchChromium(): Promise<{ browser: Browser; close: () => Promise<void> }> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
    },
  };
}

/** Saves a full-page screenshot as test-results/console/<name>.png. */
export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
