import { STATUS_CODES } from 'node:http';

/**
 * The one classifier under every retry decision (rclone's `fserrors.ShouldRetry` plus a
 * `retryErrorCodes` table per backend): which network failures are worth another attempt, how
 * a `Retry-After` header reads, and which HTTP statuses each service we talk to retries. The
 * per-service modules (lib/ges/errors.ts, lib/store/s3-errors.ts, lib/fanout/sqs.ts,
 * lib/alerts/alert.ts, lib/copy/download.ts) add only what is theirs: their remote codes and
 * their stable error code. lib/retry.ts then decides how to retry.
 */

/**
 * Network failures without an HTTP answer that a new attempt may get past (system and undici
 * codes). Anything else without an answer (a TLS certificate refused, a bad argument, missing
 * credentials) fails the same way again and is not retried.
 */
export const RETRYABLE_NETWORK_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
]);

/**
 * The retryable network failures that happen before a request reaches the server: sending it
 * again cannot do anything twice (what a request that is not idempotent may retry).
 */
export const NOT_SENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
]);

/** A network code named in a message (an SDK may re-wrap an error and drop its `code`). */
const NETWORK_CODE_IN_TEXT = /\b(E[A-Z]{3,}|UND_ERR_[A-Z_]+)\b/;

/** The first `code` found on an error, its cause chain, or an AggregateError's members. */
export function networkCodeOf(err: unknown): string | undefined {
  // Duck-typed, not `instanceof`: Node core errors may come from another realm (jest's vm).
  const queue: unknown[] = [err];
  for (let i = 0; i < queue.length && i < 16; i++) {
    const e = queue[i];
    if (typeof e !== 'object' || e === null) continue;
    const { code, errors, cause } = e as { code?: unknown; errors?: unknown; cause?: unknown };
    if (typeof code === 'string' && code !== '') return code;
    if (Array.isArray(errors)) queue.push(...(errors as unknown[]));
    if (cause !== undefined) queue.push(cause);
  }
  return undefined;
}

/** A network code in an error message, e.g. `connect ECONNREFUSED 127.0.0.1:9`. */
export function networkCodeInText(message: string): string | undefined {
  return NETWORK_CODE_IN_TEXT.exec(message)?.[1];
}

export function isRetryableNetworkCode(code: string | undefined): boolean {
  return code !== undefined && RETRYABLE_NETWORK_CODES.has(code);
}

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** A header's first value, by name in any case, trimmed; undefined when absent or empty. */
export function headerValue(headers: ResponseHeaders, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== wanted) continue;
    const v = (Array.isArray(value) ? value[0] : value)?.trim();
    return v === undefined || v === '' ? undefined : v;
  }
  return undefined;
}

/** Retry-After as delay-seconds (fractions accepted) or an HTTP-date, in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  if (!/[a-z]/i.test(v)) return undefined; // "-5", "1e3": neither form
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Which HTTP statuses a service retries: the listed ones, and every 5xx. */
export interface StatusTable {
  readonly retry: ReadonlySet<number>;
}

/**
 * The tables, one per service (the remote codes that retry on top are the service's own):
 * - GES and IAM: 429 (throttled) and 5xx; a 408 retries only with GES.7005 (lib/ges/errors.ts).
 * - AWS (S3, SQS, SNS): 408, 429 and 5xx.
 * - A backup file's download link (OBS): 408, 429 and 5xx.
 */
export const STATUS_TABLES = {
  ges: { retry: new Set([429]) },
  aws: { retry: new Set([408, 429]) },
  download: { retry: new Set([408, 429]) },
} as const satisfies Record<string, StatusTable>;

export function isRetryableStatus(table: StatusTable, status: number): boolean {
  return status >= 500 || table.retry.has(status);
}

// AWS remote codes that mean "try again later" (AWS and Swift s3api spellings).
const AWS_RETRY_CODES: ReadonlySet<string> = new Set([
  'SlowDown', 'Throttling', 'ThrottlingException', 'ThrottledException', 'RequestThrottled', 'TooManyRequests',
  'RequestLimitExceeded', 'RequestTimeout', 'RequestTimeoutException', 'InternalError', 'ServiceUnavailable',
  'BandwidthLimitExceeded', 'TimeoutError',
]);
// Names the SDK gives when it has no code of the service's: a body-less answer (HEAD) or a network error.
const GENERIC_NAMES: ReadonlySet<string> = new Set(['Unknown', 'UnknownError', 'Error', '']);
const MAX_REMOTE_MESSAGE = 200;
const SDK_WRAPPER = /^AWS SDK error wrapper for \w*:?\s*/;

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

export interface AwsFailure {
  /** The service's error code (`NoSuchBucket`), else the network code (`ECONNREFUSED`), else the HTTP status's name. */
  remoteCode: string;
  /** The HTTP status, when there was an answer. */
  status: number | undefined;
  remoteMessage: string | undefined;
  retryable: boolean;
}

/**
 * What an AWS SDK v3 failure (S3, SQS, SNS) is, in the service's own words, and whether it
 * retries: the status table, the throttling codes, the SDK's own `$retryable` mark, and the
 * network codes when there was no answer.
 */
export function describeAwsFailure(err: unknown): AwsFailure {
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? '';
  // The SDK re-wraps an error from another realm (jest's VM, a bundler's copy of Node's Error)
  // as "AWS SDK error wrapper for Error: connect ECONNREFUSED …", dropping its `code`: the
  // message still names it.
  const message = typeof e.message === 'string' ? e.message.replace(SDK_WRAPPER, '') : '';
  const networkCode = e.code ?? networkCodeInText(message);
  const remoteCode = !GENERIC_NAMES.has(name) ? name
    : networkCode ?? (status !== undefined ? (STATUS_CODES[status] ?? `HTTP ${status}`).replace(/\s+/g, '') : name || 'Error');
  const useful = message !== '' && message !== name && message !== 'UnknownError';
  const retryable = (status !== undefined && isRetryableStatus(STATUS_TABLES.aws, status))
    || (status === undefined && isRetryableNetworkCode(remoteCode))
    || AWS_RETRY_CODES.has(remoteCode) || e.$retryable !== undefined;
  return { remoteCode, status, remoteMessage: useful ? message.slice(0, MAX_REMOTE_MESSAGE) : undefined, retryable };
}
