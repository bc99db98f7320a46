import pRetry, { AbortError } from 'p-retry';
import { ArchiverError, isAbortError, toArchiverError } from './errors.js';

/**
 * The one retry policy of the archiver. Which failures retry is decided where errors are
 * classified (an ArchiverError's `retryable` flag), on the one classifier of lib/should-retry.ts
 * (network codes, Retry-After, each service's status table); this module decides how: exponential backoff with full jitter, the server's
 * `Retry-After` honoured, a bound on attempts and on total time, and the caller's
 * AbortSignal cutting every wait short.
 */
export interface RetryOptions {
  /** Attempts in all, the first one included. */
  maxAttempts: number;
  /** First backoff delay in ms (before jitter). */
  baseDelayMs: number;
  /** Cap for one backoff delay in ms. */
  maxDelayMs: number;
  /** No new attempt starts after this many ms since the first one. */
  maxElapsedMs: number;
}

export const defaultRetryOptions: Readonly<RetryOptions> = Object.freeze({
  maxAttempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 20_000,
  maxElapsedMs: 120_000,
});

export interface RetryEvent {
  attempt: number;
  error: unknown;
  delayMs: number;
}

export type RetryPolicy = <T>(
  operation: (attempt: number) => Promise<T>,
  options?: { signal?: AbortSignal | undefined; onRetry?: (event: RetryEvent) => void },
) => Promise<T>;

function isRetryable(err: unknown): boolean {
  return err instanceof ArchiverError && err.retryable && !isAbortError(err);
}

/** Waits `ms`, or rejects with the signal's reason (as an ArchiverError) as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(toArchiverError(signal.reason));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(toArchiverError(signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function createRetryPolicy(options: Partial<RetryOptions> = {}): RetryPolicy {
  const opts: RetryOptions = { ...defaultRetryOptions, ...options };
  return async function retry(operation, { signal, onRetry } = {}) {
    const startedAt = Date.now();
    return pRetry(
      async (attempt) => {
        try {
          return await operation(attempt);
        } catch (err) {
          // Non-retryable failures end the loop at once, with the original error.
          if (!isRetryable(err)) throw new AbortError(err instanceof Error ? err : new Error(String(err)));
          throw err;
        }
      },
      {
        retries: opts.maxAttempts - 1,
        factor: 2,
        minTimeout: opts.baseDelayMs,
        maxTimeout: opts.maxDelayMs,
        randomize: true,
        maxRetryTime: opts.maxElapsedMs,
        signal,
        onFailedAttempt: async ({ error, attemptNumber, retryDelay, retriesLeft }) => {
          if (retriesLeft <= 0) return;
          const retryAfter = error instanceof ArchiverError ? error.retryAfterMs : undefined;
          const remaining = opts.maxElapsedMs - (Date.now() - startedAt);
          // Retry-After is a floor on the wait, within what is left of the time budget.
          const extra = retryAfter === undefined ? 0 : Math.min(retryAfter - retryDelay, remaining - retryDelay);
          onRetry?.({ attempt: attemptNumber, error, delayMs: retryDelay + Math.max(0, extra) });
          await sleep(extra, signal);
        },
      },
    );
  };
}
