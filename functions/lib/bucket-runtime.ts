import type { S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import * as z from 'zod';
import { describeIssues, loadStorageConfig, type StorageConfig } from '../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { createRetryPolicy, type RetryPolicy } from '../../lib/retry.js';
import { createS3Client } from '../../lib/app/aws-clients.js';
import { createSnsClient } from '../../lib/app/runtime.js';
import { rootLogger } from './logger.js';

/**
 * The composition root of the functions that work on the bucket alone (restoreDrill,
 * scheduledPrune): the bucket and the alert topic, nothing of GES. They read no Huawei secret
 * (their roles may not), so they do not use runtime.ts.
 */
export interface BucketRuntime {
  config: StorageConfig;
  s3: S3Client;
  sns?: SNSClient;
  topicArn?: string;
  retry: RetryPolicy;
  logger: Logger;
}

export interface BucketRuntimeOptions {
  /** Default: process.env. */
  env?: Record<string, string | undefined>;
  logger?: Logger;
  s3?: S3Client;
  sns?: SNSClient;
}

const alertEnvSchema = z.object({ ALERT_TOPIC_ARN: z.string().optional().transform((v) => (v === '' ? undefined : v)) });

/** Throws ArchiverError CONFIG_INVALID naming the variable (ARCHIVE_BUCKET...). */
export function buildBucketRuntime(options: BucketRuntimeOptions = {}): BucketRuntime {
  const env = options.env ?? process.env;
  const config = loadStorageConfig(env);
  const parsed = alertEnvSchema.safeParse(env);
  if (!parsed.success) throw new ArchiverError(ErrorCodes.ConfigInvalid, `Invalid configuration: ${describeIssues(parsed.error)}`);
  const topicArn = parsed.data.ALERT_TOPIC_ARN;
  const s3 = options.s3 ?? createS3Client(config);
  const sns = options.sns ?? (topicArn === undefined ? undefined : createSnsClient());
  return {
    config, s3, retry: createRetryPolicy(), logger: options.logger ?? rootLogger,
    ...(sns ? { sns } : {}),
    ...(topicArn === undefined ? {} : { topicArn }),
  };
}

/**
 * One runtime per Lambda container (its clients reused between invocations), handed out with the
 * invocation's logger; `reset` drops it (tests).
 */
export function containerRuntime<R extends { logger: Logger }>(build: () => R): { get(options?: { logger?: Logger }): R; reset(): void } {
  let cached: R | undefined;
  return {
    get(options = {}) {
      cached ??= build();
      return options.logger === undefined ? cached : { ...cached, logger: options.logger };
    },
    reset() {
      cached = undefined;
    },
  };
}
