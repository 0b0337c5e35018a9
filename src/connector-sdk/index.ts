/**
 * `avito-crm-sync/connector`: everything a connector needs, and nothing else. A connector imports
 * only this entry (and, in its tests, `avito-crm-sync/connector-kit`).
 */
export { defineConnector, DEFAULT_CAPABILITIES } from './define-connector.js';
export type {
  AccessCheck,
  ChatInfo,
  ConnectorCapabilities,
  ConnectorContext,
  ConnectorDefinition,
  ConnectorEnvVar,
  ConnectorInstance,
  ConnectorOAuth,
  ConnectorStore,
  ConversationRef,
  ConversationRequest,
  CrmAction,
  DeliveryItem,
  IncomingReply,
  ItemResult,
  MessageAuthor,
  OutgoingMessage,
  PauseState,
  ReplyOutcome,
  WebhookRequest,
  WebhookVerdict,
} from './contract.js';
export { ConfigError, RemoteApiError, ValidationError, describeError, type RemoteErrorKind } from '../errors.js';
export {
  READ_POLICY,
  WRITE_POLICY,
  networkCode,
  parseRetryAfter,
  wasUndelivered,
  withRetry,
  type RetryEvents,
  type RetryPolicy,
} from '../http/retry-policy.js';
export { SpacingGate } from '../http/spacing-gate.js';
