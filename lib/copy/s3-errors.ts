import { ArchiverError, ErrorCodes, isAbortError } from '../errors.js';

// Remote codes that mean "try again later" (S3 and Swift s3api spellings).
const RETRY_CODES = new Set([
  'SlowDown', 'Throttling', 'ThrottlingException', 'ThrottledException', 'RequestThrottled', 'TooManyRequests',
  'RequestLimitExceeded', 'RequestTimeout', 'RequestTimeoutException', 'InternalError', 'ServiceUnavailable',
  'BandwidthLimitExceeded', 'TimeoutError',
]);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** Maps an S3 client failure to S3_FAILED, retryable for 5xx, throttling and network errors. */
export function toS3Error(err: unknown, operation: string, details: Record<string, unknown> = {}): Error {
  if (err instanceof ArchiverError) return err;
  if (isAbortError(err) && err instanceof Error) return err;
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? 'Error';
  const retryable = (status !== undefined && (status >= 500 || status === 429 || status === 408))
    || RETRY_CODES.has(name) || NETWORK_CODES.has(e.code ?? '') || e.$retryable !== undefined;
  return new ArchiverError(ErrorCodes.S3Failed, `S3 ${operation} failed: ${name}${status ? ` (HTTP ${status})` : ''}`, {
    retryable,
    cause: err,
    details: { operation, remoteCode: name, status, ...details },
  });
}
