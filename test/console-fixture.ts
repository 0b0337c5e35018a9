import { loadConfig } from '../src/config/load-config.js';
import { memoryLogger } from '../src/log/logger.js';
import { createRuntime, type Runtime } from '../src/runtime.js';
import { SandboxAmo } from '../connectors/amocrm/sandbox.js';
import { SandboxAvito } from '../src/sandbox/sandbox-avito.js';
import { freePort } from '../src/sandbox/net.js';
import { startDaemon, type Daemon } from '../src/sync/daemon.js';
import { FAST_RETRY, fakeEnv, tempDir } from './helpers.js';

export const CONSOLE_PASSWORD = 'console-pass-0123456789';

export interface ConsoleWorld {
  avito: SandboxAvito;
  amo: SandboxAmo;
  rt: Runtime;
  daemon: Daemon;
  /** The daemon's base URL (= PUBLIC_URL). */
  url: string;
  lines: string[];
  stop(): Promise<void>;
}

/**
 * The daemon with the console on, between a sandbox Avito (client id and secret only) and a
 * sandbox amoCRM configured for OAuth but not connected yet: the state a new user starts in.
 * Both sandboxes' consent pages send codes back to the daemon's callbacks.
 */
export async function consoleWorld(extra: Record<string, string> = {}): Promise<ConsoleWorld> {
  const avito = new SandboxAvito();
  const amo = new SandboxAmo();
  await avito.start();
  await amo.start();
  const t = tempDir('avito-sync-console-');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  avito.oauthRedirectUri = `${url}/oauth/avito/callback`;
  amo.oauth.redirectUri = `${url}/oauth/amocrm/callback`;
  const config = loadConfig({
    env: fakeEnv(avito, t.dir, {
      AVITO_SYNC_CONNECTORS: 'amocrm',
      AMOCRM_BASE_URL: amo.url,
      AMOCRM_CLIENT_ID: amo.oauth.clientId,
      AMOCRM_CLIENT_SECRET: amo.oauth.clientSecret,
      AVITO_OAUTH_URL: `${avito.url}/oauth`,
      AMOCRM_OAUTH_URL: `${amo.url}/oauth`,
      PUBLIC_URL: url,
      PORT: String(port),
      WEBHOOK_SECRET: 'console-test-secret-0123',
      CONSOLE_PASSWORD,
      ...extra,
    }),
  });
  const { logger, lines } = memoryLogger('info');
  const rt = await createRuntime(config, logger, { retry: FAST_RETRY });
  const daemon = await startDaemon(rt, { host: '127.0.0.1' });
  return {
    avito, amo, rt, daemon, url, lines,
    async stop() {
      await daemon.stop();
      await avito.stop();
      await amo.stop();
      t.cleanup();
    },
  };
}

/** A tiny cookie-keeping HTTP client for the console (no browser). */
export class ConsoleClient {
  readonly cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  async request(path: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Response> {
    const res = await fetch(this.base + path, {
      method: init.method ?? (init.form ? 'POST' : 'GET'),
      redirect: 'manual',
      headers: {
        ...(this.cookies.size ? { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...init.headers,
      },
      ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i);
      const value = pair!.slice(i + 1);
      if (/Max-Age=0/.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  /** The login form's token, then a login with `password`. */
  async login(password: string): Promise<Response> {
    const form = await (await this.request('/console/login')).text();
    const csrf = /name="_csrf" value="([^"]+)"/.exec(form)![1]!;
    return this.request('/console/login', { form: { _csrf: csrf, password } });
  }

  /** The CSRF token of the session, read from a page. */
  async csrf(): Promise<string> {
    const html = await (await this.request('/console/accounts')).text();
    return /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
  }
}
