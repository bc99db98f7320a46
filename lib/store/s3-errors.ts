import { ArchiverError, ErrorCodes, isAbortError } from '../errors.js';
import { describeAwsFailure } from '../should-retry.js';

interface SdkError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

/**
 * Maps an S3 client failure to S3_FAILED whose message names the operation, the store's code
 * and the HTTP status (`S3 PutObject failed for k: SignatureDoesNotMatch (HTTP 403): …`), with
 * `details` { operation, remoteCode, status } for logs and callers. Retryable as
 * lib/should-retry.ts says for AWS (408, 429, 5xx, throttling codes, network errors). Our own
 * aborts pass through unchanged.
 */
export function toS3Error(err: unknown, operation: string, details: Record<string, unknown> & { key?: string } = {}): Error {
  if (err instanceof ArchiverError) return err;
  if (isAbortError(err) && err instanceof Error) return err;
  const { remoteCode, status, remoteMessage, retryable } = describeAwsFailure(err);
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
