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

/** A CRM's call as the server hands it on: the raw body and every header, names lower-cased. */
export interface CrmWebhookCall {
  connectorId: string;
  body: Buffer;
  headers: Readonly<Record<string, string>>;
  contentType: string;
}

/**
 * What became of a CRM webhook. `stored`: 202 (something new was stored before this answer) or
 * 200 (nothing new); `refused`: a 4xx, nothing stored; `unknown`: no such connector runs (404).
 */
export type CrmWebhookResult =
  | { status: 200 | 202; result: 'stored' | 'duplicate' | 'hint' }
  | { status: 400 | 401 | 403 | 404 | 409 | 413 | 422; result: 'refused' | 'unknown_connector' | 'unknown_account'; reason: string };

/** Handles `POST /webhooks/<connector id>/<secret>` once the secret was checked. */
export type CrmWebhookPort = (call: CrmWebhookCall) => Promise<CrmWebhookResult>;
