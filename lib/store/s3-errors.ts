import { STATUS_CODES } from 'node:http';
import { ArchiverError, ErrorCodes, isAbortError } from '../errors.js';

// Remote codes that mean "try again later" (S3 and Swift s3api spellings).
const RETRY_CODES = new Set([
  'SlowDown', 'Throttling', 'ThrottlingException', 'ThrottledException', 'RequestThrottled', 'TooManyRequests',
  'RequestLimitExceeded', 'RequestTimeout', 'RequestTimeoutException', 'InternalError', 'ServiceUnavailable',
  'BandwidthLimitExceeded', 'TimeoutError',
]);
// A failure without an HTTP answer whose code is a system or undici one (ECONNREFUSED,
// ECONNRESET, ENOTFOUND, UND_ERR_SOCKET...) is the network's: worth another attempt. Other
// failures without an answer (missing credentials, a bad argument) are not.
const NETWORK_CODE = /^(E[A-Z0-9_]+|UND_ERR_[A-Z_]+)$/;
// Names the SDK gives when it has no code of the store's: a body-less answer (HEAD) or a network error.
const GENERIC_NAMES = new Set(['Unknown', 'UnknownError', 'Error', '']);
const MAX_REMOTE_MESSAGE = 200;
const SDK_WRAPPER = /^AWS SDK error wrapper for \w*:?\s*/;
const NETWORK_CODE_IN_TEXT = /\b(E[A-Z]{3,}|UND_ERR_[A-Z_]+)\b/;

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

/**
 * What an S3 client failure is, in the store's own words: its error code (`NoSuchBucket`,
 * `SignatureDoesNotMatch`), else the network code (`ECONNREFUSED`), else the HTTP status's name
 * (a HEAD answer has no body, so the SDK only says `Unknown`); the HTTP status when there was
 * an answer; the store's message.
 */
export function describeS3Failure(err: unknown): { remoteCode: string; status: number | undefined; remoteMessage: string | undefined } {
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? '';
  // The SDK re-wraps an error from another realm (jest's VM, a bundler's copy of Node's Error)
  // as "AWS SDK error wrapper for Error: connect ECONNREFUSED …", dropping its `code`: the
  // message still names it.
  const message = typeof e.message === 'string' ? e.message.replace(SDK_WRAPPER, '') : '';
  const networkCode = e.code ?? NETWORK_CODE_IN_TEXT.exec(message)?.[1];
  const remoteCode = !GENERIC_NAMES.has(name) ? name
    : networkCode ?? (status !== undefined ? (STATUS_CODES[status] ?? `HTTP ${status}`).replace(/\s+/g, '') : name || 'Error');
  const useful = message !== '' && message !== name && message !== 'UnknownError';
  return { remoteCode, status, remoteMessage: useful ? message.slice(0, MAX_REMOTE_MESSAGE) : undefined };
}

/**
 * Maps an S3 client failure to S3_FAILED whose message names the operation, the store's code
 * and the HTTP status (`S3 PutObject failed for k: SignatureDoesNotMatch (HTTP 403): …`), with
 * `details` { operation, remoteCode, status } for logs and callers. Retryable: 5xx, 408, 429,
 * throttling codes and network errors. Our own aborts pass through unchanged.
 */
export function toS3Error(err: unknown, operation: string, details: Record<string, unknown> & { key?: string } = {}): Error {
  if (err instanceof ArchiverError) return err;
  if (isAbortError(err) && err instanceof Error) return err;
  const e = (err ?? {}) as SdkError;
  const { remoteCode, status, remoteMessage } = describeS3Failure(err);
  const retryable = (status !== undefined && (status >= 500 || status === 429 || status === 408))
    || (status === undefined && NETWORK_CODE.test(remoteCode))
    || RETRY_CODES.has(remoteCode) || e.$retryable !== undefined;
  const where = details.key === undefined ? '' : ` for ${details.key}`;
  const answer = `${remoteCode}${status === undefined ? '' : ` (HTTP ${status})`}`;
  return new ArchiverError(ErrorCodes.S3Failed, `S3 ${operation} failed${where}: ${answer}${remoteMessage === undefined ? '' : `: ${remoteMessage}`}`, {
    retryable,
    cause: err,
    details: { operation, remoteCode, status, ...details },
  });
}

/** True when the copy failed because its multipart upload no longer exists (aborted, expired, completed by a duplicate). */
export function isNoSuchUpload(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    const { name, details, cause } = e as { name?: unknown; details?: { remoteCode?: unknown }; cause?: unknown };
    if (name === 'NoSuchUpload' || details?.remoteCode === 'NoSuchUpload') return true;
    e = cause;
  }
  return false;
}

/** A 4xx: a definite refusal, so the request did not change anything at the key. */
export function isClientError(err: unknown): boolean {
  const status = (err as SdkError | null)?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500;
}

/** The object is not there (a missing bucket is not "no object": it is an error). */
export function isNotFound(err: unknown): boolean {
  const e = (err ?? {}) as SdkError;
  if (e.name === 'NoSuchBucket') return false;
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}
