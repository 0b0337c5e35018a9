import type { ActiveConnector } from '../connector/registry.js';
import type { Runtime } from '../runtime.js';
import type { HealthReport } from '../server/http-server.js';
import { collectStatus, type AccountStatus } from '../status/collect-status.js';

/** Avito's scopes the daemon needs (authorization.json): read and send messages, the user, items. */
export const AVITO_SCOPES = ['messenger:read', 'messenger:write', 'user:read', 'items:info'] as const;

/** What `/healthz` says about one account (daemon.ts `health`). */
export interface AccountHealth {
  /** The account's state in the daemon (`running`; a reload: `restarting`). */
  state?: string;
  lastGoodPoll: string | null;
  lastPollError: { at: string; message: string } | null;
  lastWebhook: string | null;
  token: { expiresAt: string | null; state: string };
  healthy: boolean;
}

export interface ConnectorView {
  id: string;
  name: string;
  /** Undefined when the connector has no OAuth connect; else whether it is connected. */
  oauthConnected: boolean | undefined;
}

/** One account as the console shows it: `status` (ledger) plus the daemon's live health. */
export interface AccountView {
  id: string;
  status: AccountStatus | undefined;
  health: AccountHealth | undefined;
  avito: { configured: boolean; oauthConnected: boolean };
  connectors: ConnectorView[];
}

export interface Overview {
  accounts: AccountView[];
  /** Sentences telling the operator what to connect or set, if anything. */
  todo: string[];
}

/** Gathers the accounts page: the CLI's `status` (collect-status.ts) and `/healthz`, no SQL of its own. */
export async function collectOverview(rt: Runtime, health: () => Promise<HealthReport>): Promise<Overview> {
  const status = await collectStatus(rt.ledger.db, rt.ledger.file);
  const live = await health().catch(() => undefined);
  const liveAccounts = (Array.isArray(live?.accounts) ? live.accounts : []) as (AccountHealth & { id: string })[];
  const todo: string[] = [];
  const accounts: AccountView[] = [];
  for (const a of rt.config.accounts) {
    const client = rt.accounts.find((x) => x.config.id === a.id)?.client;
    const connectors: ConnectorView[] = [];
    for (const c of rt.connectors.filter((x) => x.accountId === a.id)) {
      const view = await connectorView(c);
      connectors.push(view);
      if (view.oauthConnected === false) todo.push(`Connect ${view.name} for account "${a.id}".`);
    }
    if (!client) todo.push(`Set AVITO_CLIENT_ID and AVITO_CLIENT_SECRET for account "${a.id}" (your Avito app: Avito Pro → Settings → API integration).`);
    accounts.push({
      id: a.id,
      status: status.accounts.find((s) => s.id === a.id),
      health: liveAccounts.find((h) => h.id === a.id),
      avito: { configured: Boolean(client), oauthConnected: client ? await client.tokens.connected() : false },
      connectors,
    });
  }
  return { accounts, todo };
}

async function connectorView(c: ActiveConnector): Promise<ConnectorView> {
  const oauth = c.instance.oauth;
  return { id: c.definition.id, name: c.definition.displayName, oauthConnected: oauth ? await oauth.connected().catch(() => false) : undefined };
}
