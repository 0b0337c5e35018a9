/**
 * What the HTTP server needs from the rest of the daemon, as small port types: the server knows
 * these shapes, never the classes behind them (the intake, the reply service, the connectors).
 */

/** The largest webhook body accepted; Avito's are a few hundred bytes, a CRM's a few KB. */
export const WEBHOOK_BODY_LIMIT = 64 * 1024;

/** The answer of the Avito webhook intake: 200 only once stored (invariant 4). */
export type IntakeResult =
  | { status: 200; result: 'stored' | 'duplicate' | 'probe' | 'ignored'; accountId?: string; newChat?: boolean; newMessage?: boolean }
  | { status: 400 | 422; result: 'rejected'; reason: string };

/** Stores one Avito webhook body; throws when the ledger cannot (the server answers 5xx). */
export interface AvitoIntakePort {
  accept(raw: Buffer): Promise<IntakeResult>;
}

/**
 * Which CRM route a call came by. `connectorId`: `/webhooks/<connector id>/<WEBHOOK_SECRET>`, the
 * secret already checked. `alias`: `/webhooks/<alias>/<token>`, a path the CRM fixes itself (no
 * WEBHOOK_SECRET in it); it reaches only an instance that verifies the CRM's signature.
 */
export type CrmWebhookRoute = { connectorId: string } | { alias: string; token: string };

/** A CRM's call as the server hands it on: the raw body and every header, names lower-cased. */
export interface CrmWebhookCall {
  route: CrmWebhookRoute;
  method: string;
  body: Buffer;
  headers: Readonly<Record<string, string>>;
  contentType: string;
}

/**
 * What became of a CRM webhook. `stored`: 202 (something new was stored before this answer);
 * `duplicate`/`hint`: 200 (nothing new yet); a 4xx: nothing stored.
 */
export type CrmWebhookResult =
  | { status: 200 | 202; result: 'stored' | 'duplicate' | 'hint' }
  | { status: 400 | 401 | 403 | 404 | 409 | 413 | 422; result: 'refused' | 'unknown_connector' | 'unknown_account'; reason: string };

/**
 * The CRM routes the server knows, asked before a body is read (so synchronous): the one family
 * `POST /webhooks/<segment>/<secret or token>`. The set changes when accounts are reloaded.
 */
export interface CrmRoutes {
  /** `segment` is a running connector's id: its calls must carry WEBHOOK_SECRET. */
  isConnector(segment: string): boolean;
  /** `segment` is an alias a running instance serves, verifying the CRM's signature itself. */
  isAlias(segment: string): boolean;
  /** Handles a call whose secret was checked (connector route) or that the connector will verify (alias). */
  handle(call: CrmWebhookCall): Promise<CrmWebhookResult>;
}
