import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { avitoWebhookUrl, webhookSecret } from '../../sync/webhook-secret.js';
import type { Runtime } from '../../runtime.js';
import { out, pickAccount, withRuntime, type GlobalOptions } from '../context.js';

async function defaultUrl(rt: Runtime, given: string | undefined): Promise<string> {
  if (given) return given;
  if (!rt.config.publicUrl) throw new ConfigError('PUBLIC_URL is not set: give the URL to use, or set PUBLIC_URL so the daemon can say where Avito reaches it.', 'PUBLIC_URL');
  return avitoWebhookUrl(rt.config.publicUrl, await webhookSecret(rt.ledger.db, rt.config.webhookSecret));
}

/** The URL with the webhook secret cut to its first 4 characters (`…/webhooks/avito/abcd…`). */
export function maskSecret(url: string, secret: string): string {
  return url.split(secret).join(`${secret.slice(0, 4)}…`);
}

/** `webhooks list|subscribe|unsubscribe`: Avito webhook subscriptions of an account. */
export function registerWebhooks(program: Command): void {
  const webhooks = program.command('webhooks').description('Avito webhook subscriptions');
  webhooks
    .command('list')
    .description("the account's webhook subscriptions")
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await withRuntime(g, { avito: true, connectors: false, interactive: true }, async (rt) => {
        const subs = await pickAccount(rt, g.account).client.listSubscriptions();
        const secret = await webhookSecret(rt.ledger.db, rt.config.webhookSecret);
        const ours = rt.config.publicUrl ? avitoWebhookUrl(rt.config.publicUrl, secret) : undefined;
        // The secret authenticates Avito: a terminal or a pasted log must not show it.
        const shown = subs.map((s) => ({ ...s, url: maskSecret(s.url, secret), ours: s.url === ours }));
        if (opts.json) out(JSON.stringify(shown, null, 2));
        else out(shown.map((s) => `${s.url}  (v${s.version ?? '?'})${s.ours ? '  ← this daemon' : ''}`).join('\n') || '(no subscriptions)');
      });
    });
  webhooks
    .command('subscribe [url]')
    .description('subscribe to webhooks (default: PUBLIC_URL/webhooks/avito/<secret>)')
    .action(async (url: string | undefined, _opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await withRuntime(g, { avito: true, connectors: false, interactive: true }, async (rt) => {
        const target = await defaultUrl(rt, url);
        await pickAccount(rt, g.account).client.subscribeWebhook(target);
        out(`subscribed ${url ? target : `${rt.config.publicUrl}/webhooks/avito/…`}`);
      });
    });
  webhooks
    .command('unsubscribe [url]')
    .description('stop webhooks to a URL (default: this daemon\'s)')
    .action(async (url: string | undefined, _opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      await withRuntime(g, { avito: true, connectors: false, interactive: true }, async (rt) => {
        const target = await defaultUrl(rt, url);
        await pickAccount(rt, g.account).client.unsubscribeWebhook(target);
        out(`unsubscribed ${url ? target : `${rt.config.publicUrl}/webhooks/avito/…`}`);
      });
    });
}
