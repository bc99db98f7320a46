import { S3Client } from '@aws-sdk/client-s3';
import type { Config, RestoreTargetS3Config } from '../config.js';
import type { Logger } from '../log.js';
import type { RetryEvent, RetryPolicy } from '../retry.js';

/**
 * The S3 clients and the retry logging every AWS client shares, apart from the rest of the
 * composition root (runtime.ts): a command that only reads or checks the bucket (list, verify,
 * the bucket check that starts a run) loads the S3 SDK without the GES client and the copier.
 */

/**
 * Every AWS request has a timeout: connecting within 10 s, and no socket silent for 120 s (an
 * upload that is moving is never cut; a stalled one fails, and the retry policy decides).
 */
export const AWS_REQUEST_HANDLER = { connectionTimeout: 10_000, requestTimeout: 120_000 } as const;

/**
 * No `Expect: 100-continue` on part uploads and PUTs. With it, the SDK sends every such request
 * on a new connection (its keep-alive agent is not used for them: a new TCP, and on AWS a new
 * TLS, handshake per part) and holds the body until the store has answered the headers (~30 ms
 * a part on Swift, on the critical path at a file's first and last part). What it guards
 * against, a body sent to a store that refuses it, is what the bucket check at the start of a
 * run rules out; a refusal later still fails the request, it only costs the part's bytes.
 */
const UPLOADS = { expectContinueHeader: false } as const;

export function createS3Client(config: Pick<Config, 's3'>): S3Client {
  // Region, credentials, endpoint (AWS_ENDPOINT_URL_S3) and checksum settings
  // (AWS_REQUEST_CHECKSUM_CALCULATION...) come from the SDK's standard variables.
  // maxAttempts 1: lib/retry.ts is the one retry policy; SDK retries on top would multiply it.
  return new S3Client({ forcePathStyle: config.s3.forcePathStyle, maxAttempts: 1, requestHandler: AWS_REQUEST_HANDLER, ...UPLOADS });
}

/** The restore target's own store (RESTORE_S3_*, e.g. Huawei OBS): same timeouts, same single retry policy. */
export function createRestoreTargetS3Client(target: RestoreTargetS3Config): S3Client {
  return new S3Client({
    endpoint: target.endpoint,
    region: target.region,
    forcePathStyle: target.forcePathStyle,
    ...(target.credentials === undefined ? {} : { credentials: { ...target.credentials } }),
    maxAttempts: 1,
    requestHandler: AWS_REQUEST_HANDLER,
    ...UPLOADS,
  });
}

function retryFields(event: RetryEvent): Record<string, unknown> {
  const e = event.error as { code?: unknown; message?: unknown; details?: { operation?: unknown; remoteCode?: unknown; status?: unknown } };
  return {
    operation: e.details?.operation,
    code: e.details?.remoteCode ?? e.code,
    status: e.details?.status,
    attempt: event.attempt,
    delayMs: Math.round(event.delayMs),
    error: typeof e.message === 'string' ? e.message : String(event.error),
  };
}

/**
 * The retry policy with every retry logged (warn: operation, code, HTTP status, attempt, delay)
 * when the caller does not log its own: S3, SQS and SNS requests, so a store that keeps failing
 * or an endpoint that refuses connections is never silent while the policy waits.
 */
export function withRetryLogging(retry: RetryPolicy, logger: Logger): RetryPolicy {
  return (operation, options = {}) => retry(operation, {
    ...options,
    onRetry: options.onRetry ?? ((event) => logger.warn(retryFields(event), 'request failed; retrying')),
  });
}
