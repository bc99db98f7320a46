import type { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Agent, type Dispatcher } from 'undici';
import type { ArchiveDeps } from '../archive/types.js';
import type { Config } from '../config.js';
import { limitBandwidth } from '../copy/bandwidth.js';
import { createCopier } from '../copy/copier.js';
import { DEFAULT_RATE_FLOOR } from '../copy/rate-floor.js';
import { createGesClient, type GesClientDeps } from '../ges/client.js';
import type { Logger } from '../log.js';
import { createRetryPolicy, type RetryPolicy } from '../retry.js';
import { AWS_REQUEST_HANDLER, createS3Client, withRetryLogging } from './aws-clients.js';

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

// Region, credentials and endpoints (AWS_ENDPOINT_URL_SQS / _SNS) come from the SDK's standard
// variables; maxAttempts 1 for the same reason as S3.
export function createSqsClient(): SQSClient {
  return new SQSClient({ maxAttempts: 1, requestHandler: AWS_REQUEST_HANDLER });
}

export function createSnsClient(): SNSClient {
  return new SNSClient({ maxAttempts: 1, requestHandler: AWS_REQUEST_HANDLER });
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
