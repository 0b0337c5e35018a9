import pRetry from 'p-retry';
import { setTimeout as delay } from 'node:timers/promises';
import { RemoteApiError } from '../errors.js';

/**
 * A retry policy is declared per call: reads retry transient failures; a write that is not
 * idempotent retries only what surely did not reach the remote (429, connection refused).
 */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff, doubled each time, randomised ×1–2 (jitter). */
  minTimeoutMs: number;
  /** Cap on one backoff. */
  maxTimeoutMs: number;
  /** Cap on honouring a remote's Retry-After. */
  maxRetryAfterMs: number;
  /** `transient`: 429, 5xx, network. `undelivered`: 429 and refused connections only. */
  retryOn: 'transient' | 'undelivered';
}

export const READ_POLICY: RetryPolicy = { retries: 4, minTimeoutMs: 500, maxTimeoutMs: 15_000, maxRetryAfterMs: 60_000, retryOn: 'transient' };
export const WRITE_POLICY: RetryPolicy = { ...READ_POLICY, retries: 3, retryOn: 'undelivered' };

/** Network errors whose request certainly never reached the server. */
const UNDELIVERED_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

export function wasUndelivered(err: RemoteApiError): boolean {
  if (err.kind === 'rate_limited') return true;
  if (err.kind !== 'network') return false;
  const code = networkCode(err.cause);
  return code !== undefined && UNDELIVERED_CODES.has(code);
}

export function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export interface RetryEvents {
  onRetry?: (info: { error: RemoteApiError; attempt: number; waitMs?: number }) => void;
}

/** Runs `attempt` under `policy`. Only RemoteApiErrors are retried; anything else fails at once. */
export async function withRetry<T>(policy: RetryPolicy, attempt: () => Promise<T>, events: RetryEvents = {}): Promise<T> {
  return pRetry(attempt, {
    retries: policy.retries,
    minTimeout: policy.minTimeoutMs,
    maxTimeout: policy.maxTimeoutMs,
    randomize: true,
    shouldRetry: ({ error }) => {
      if (!(error instanceof RemoteApiError)) return false;
      return policy.retryOn === 'transient' ? error.transient : wasUndelivered(error);
    },
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
      if (!(error instanceof RemoteApiError) || retriesLeft === 0) return;
      const retryable = policy.retryOn === 'transient' ? error.transient : wasUndelivered(error);
      if (!retryable) return;
      let waitMs: number | undefined;
      if (error.retryAfterSeconds !== undefined) {
        waitMs = Math.min(error.retryAfterSeconds * 1000, policy.maxRetryAfterMs);
      }
      events.onRetry?.({ error, attempt: attemptNumber, ...(waitMs !== undefined ? { waitMs } : {}) });
      if (waitMs) await delay(waitMs);
    },
  });
}

/** Parses Retry-After (seconds or an HTTP date). */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const n = Number(header);
  if (Number.isFinite(n) && n >= 0) return n;
  const t = Date.parse(header);
  if (Number.isFinite(t)) return Math.max(0, Math.ceil((t - now) / 1000));
  return undefined;
}
