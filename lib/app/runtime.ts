import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Agent, type Dispatcher } from 'undici';
import type { ArchiveDeps } from '../archive/types.js';
import type { Config, RestoreTargetS3Config } from '../config.js';
import { limitBandwidth } from '../copy/bandwidth.js';
import { createCopier } from '../copy/copier.js';
import { DEFAULT_RATE_FLOOR } from '../copy/rate-floor.js';
import { createGesClient, type GesClientDeps } from '../ges/client.js';
import type { Logger } from '../log.js';
import { createRetryPolicy, type RetryEvent, type RetryPolicy } from '../retry.js';

/**
 * The composition root shared by the CLI and the Lambda handlers: builds every client once
 * and hands them down. Nothing here runs at import time. "Runtime" means this one thing in the
 * code base: what a composition root builds, the configuration and its clients (this one; the
 * Lambda's in functions/lib/runtime.ts; the bucket-only functions' in functions/lib/*-runtime.ts).
 * AWS's Node.js runtime is called the Lambda execution environment.
 */
export interface Runtime extends ArchiveDeps {
  config: Config;
  dispatcher: Dispatcher;
  /** Present when COPY_QUEUE_URL is set (or given as an override). */
  sqs?: SQSClient;
  /** Present when ALERT_TOPIC_ARN is set (or given as an override). */
  sns?: SNSClient;
  close(): Promise<void>;
}

export interface RuntimeOverrides {
  s3?: S3Client;
  dispatcher?: Dispatcher;
  retry?: RetryPolicy;
  now?: () => number;
  sqs?: SQSClient;
  sns?: SNSClient;
  /** Told about every GES_AUTH_FAILED (the Lambda runtime re-reads its credentials secret). */
  onGesAuthFailure?: GesClientDeps['onAuthFailure'];
}

/**
 * Every AWS request has a timeout: connecting within 10 s, and no socket silent for 120 s (an
 * upload that is moving is never cut; a stalled one fails, and the retry policy decides).
 */
const AWS_REQUEST_HANDLER = { connectionTimeout: 10_000, requestTimeout: 120_000 } as const;

export function createS3Client(config: Pick<Config, 's3'>): S3Client {
  // Region, credentials, endpoint (AWS_ENDPOINT_URL_S3) and checksum settings
  // (AWS_REQUEST_CHECKSUM_CALCULATION...) come from the SDK's standard variables.
  // maxAttempts 1: lib/retry.ts is the one retry policy; SDK retries on top would multiply it.
  return new S3Client({ forcePathStyle: config.s3.forcePathStyle, maxAttempts: 1, requestHandler: AWS_REQUEST_HANDLER });
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
  });
}

// Region, credentials and endpoints (AWS_ENDPOINT_URL_SQS / _SNS) come from the SDK's standard
// variables; maxAttempts 1 for the same reason as S3.
export function createSqsClient(): SQSClient {
  return new SQSClient({ maxAttempts: 1, requestHandler: AWS_REQUEST_HANDLER });
}

export function createSnsClient(): SNSClient {
  return new SNSClient({ maxAttempts: 1, requestHandler: AWS_REQUEST_HANDLER });
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

export function createRuntime(config: Config, logger: Logger, overrides: RuntimeOverrides = {}): Runtime {
  const s3 = overrides.s3 ?? createS3Client(config);
  // One connection pool for GES and the download links; bodies are streamed, and a
  // stalled socket fails within bodyTimeout instead of hanging until the deadline.
  const dispatcher = overrides.dispatcher ?? new Agent({
    connections: 64,
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
    keepAliveTimeout: 10_000,
  });
  const retry = withRetryLogging(overrides.retry ?? createRetryPolicy(), logger);
  const ges = createGesClient({ config: config.ges, logger: logger.child({ component: 'ges' }), retry, dispatcher, ...(overrides.now ? { now: overrides.now } : {}), onAuthFailure: overrides.onGesAuthFailure });
  // ARCHIVE_BWLIMIT holds the download links only (GES's API calls are not counted).
  const limited = config.download.maxBytesPerSecond === undefined ? undefined : limitBandwidth(dispatcher, config.download.maxBytesPerSecond);
  const copier = createCopier({
    s3,
    logger: logger.child({ component: 'copy' }),
    retry,
    dispatcher: limited?.dispatcher ?? dispatcher,
    ...(limited ? { rateFloor: { ...DEFAULT_RATE_FLOOR, heldMs: limited.limiter.heldMs } } : {}),
    allowedHosts: config.download.allowedHosts,
    partSizeBytes: config.partSizeBytes,
    resumableAfterMs: config.resumableAfterMs,
    checkpointEveryMs: config.checkpointEveryMs,
    partConcurrency: config.concurrency.parts,
    streams: config.concurrency.streams,
    ...(overrides.now ? { now: overrides.now } : {}),
  });
  const sqs = overrides.sqs ?? (config.copyQueueUrl === undefined ? undefined : createSqsClient());
  const sns = overrides.sns ?? (config.alertTopicArn === undefined ? undefined : createSnsClient());
  return {
    config,
    s3,
    ...(sqs ? { sqs } : {}),
    ...(sns ? { sns } : {}),
    ges,
    copier,
    logger,
    retry,
    dispatcher,
    ...(overrides.now ? { now: overrides.now } : {}),
    async close() {
      s3.destroy();
      if (!overrides.sqs) sqs?.destroy();
      if (!overrides.sns) sns?.destroy();
      if (!overrides.dispatcher) await dispatcher.close();
    },
  };
}
