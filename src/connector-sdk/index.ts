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
  ConnectorSandbox,
  ConnectorSandboxOptions,
  ConnectorStore,
  LockedConnectorStore,
  ConversationRef,
  ConversationRequest,
  ConversationUpdate,
  CrmAction,
  DeliveryItem,
  IncomingReply,
  ItemResult,
  MessageAuthor,
  OutgoingMessage,
  PauseState,
  PollStart,
  ReadReceipt,
  ReplyOutcome,
  SkippedItem,
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
export { formatAvitoTime, largestImage, messageBody, replyFromText } from './message-format.js';
export { chatWithoutDetails } from './chat-without-details.js';
export { SpacingGate } from '../http/spacing-gate.js';
export { LocalRequestGate, type RequestGate, type RequestGateOptions } from '../http/request-gate.js';
export { closeServer, freePort, listenLoopback, readBody } from '../sandbox/net.js';
/** The zod the core validates config with: a connector's `configSchema` can use it without its own copy. */
export { z } from 'zod';
export { definitionProblem } from './validate.js';
export { serveConsent, type ConsentRequest } from '../sandbox/oauth-consent.js';
