/**
 * The project's small error family. Every error a user can see is one of these, and its
 * `message` is a sentence that says what happened and what to do. `cause` keeps the chain.
 */

/** Bad or missing configuration. The CLI exits 2. `key` names the setting (env name or file path). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly key?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Input that failed a schema: a webhook body, a remote response, a CLI argument. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    message: string,
    readonly issues: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * What kind of remote failure this is. Core code decides on retries and on what to tell the
 * user from this, never from the provider's raw text.
 */
export type RemoteErrorKind =
  | 'bad_request'
  | 'bad_credentials'
  | 'token_expired'
  | 'forbidden'
  | 'employee_key'
  | 'tariff'
  | 'not_found'
  | 'rate_limited'
  | 'banned'
  | 'server'
  | 'network'
  | 'bad_response';

/** A remote API answered with an error (or did not answer). */
export class RemoteApiError extends Error {
  override readonly name = 'RemoteApiError';
  readonly provider: string;
  readonly kind: RemoteErrorKind;
  /** HTTP status, 0 when the connection failed before a status arrived. */
  readonly status: number;
  /** What the remote said, trimmed (its own error text, never our request). */
  readonly remoteMessage: string;
  /** What the user should do about it. */
  readonly hint: string;
  /** Seconds the remote asked us to wait (Retry-After), when it said so. */
  readonly retryAfterSeconds: number | undefined;
  /** The operation that failed, e.g. `GET /messenger/v2/accounts/{user_id}/chats`. */
  readonly operation: string;

  constructor(init: {
    provider: string;
    kind: RemoteErrorKind;
    status: number;
    remoteMessage: string;
    hint: string;
    operation: string;
    retryAfterSeconds?: number | undefined;
    cause?: unknown;
  }) {
    const said = init.remoteMessage ? ` (${init.provider} said: ${init.remoteMessage})` : '';
    const status = init.status ? ` answered ${init.status}` : ' could not be reached';
    super(`${init.provider}${status} to ${init.operation}${said}. ${init.hint}`, {
      cause: init.cause,
    });
    this.provider = init.provider;
    this.kind = init.kind;
    this.status = init.status;
    this.remoteMessage = init.remoteMessage;
    this.hint = init.hint;
    this.operation = init.operation;
    this.retryAfterSeconds = init.retryAfterSeconds;
  }

  /** Transient failures: worth another try later. */
  get transient(): boolean {
    return this.kind === 'rate_limited' || this.kind === 'server' || this.kind === 'network';
  }
}

/** Something in our own operation failed: disk, ledger, a lost lease. */
export class OperationalError extends Error {
  override readonly name = 'OperationalError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** One line for the user: the message, and the causes' messages when they add something. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
