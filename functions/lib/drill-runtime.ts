import type { S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import { z } from 'zod';
import { describeIssues, loadStorageConfig, type StorageConfig } from '../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { createRetryPolicy, type RetryPolicy } from '../../lib/retry.js';
import { createS3Client, createSnsClient } from '../../lib/runtime.js';
import { rootLogger } from './logger.js';

/**
 * The restore drill's composition root: the bucket and the alert topic, nothing of GES. The
 * drill reads no Huawei secret (its role may not), so it does not use runtime.ts.
 */
export const DRILL_SAMPLE_ENV_VAR = 'DRILL_SAMPLE_PERCENT';
export const DEFAULT_DRILL_SAMPLE_PERCENT = 10;

export const samplePercentSchema = z.number({ error: 'must be a number' })
  .gt(0, 'must be more than 0')
  .max(100, 'must be at most 100');

const drillEnvSchema = z.object({
  [DRILL_SAMPLE_ENV_VAR]: z.preprocess(
    (v) => (v === undefined || v === '' ? undefined : Number(v)),
    samplePercentSchema.default(DEFAULT_DRILL_SAMPLE_PERCENT),
  ),
  ALERT_TOPIC_ARN: z.string().optional().transform((v) => (v === '' ? undefined : v)),
});

export interface DrillRuntime {
  config: StorageConfig;
  s3: S3Client;
  sns?: SNSClient;
  topicArn?: string;
  retry: RetryPolicy;
  logger: Logger;
  samplePercent: number;
}

export interface DrillRuntimeOptions {
  /** Default: process.env. */
  env?: Record<string, string | undefined>;
  logger?: Logger;
  s3?: S3Client;
  sns?: SNSClient;
}

/** Throws ArchiverError CONFIG_INVALID naming the variable (ARCHIVE_BUCKET, DRILL_SAMPLE_PERCENT...). */
export function buildDrillRuntime(options: DrillRuntimeOptions = {}): DrillRuntime {
  const env = options.env ?? process.env;
  const config = loadStorageConfig(env);
  const parsed = drillEnvSchema.safeParse(env);
  if (!parsed.success) throw new ArchiverError(ErrorCodes.ConfigInvalid, `Invalid configuration: ${describeIssues(parsed.error)}`);
  const topicArn = parsed.data.ALERT_TOPIC_ARN;
  const s3 = options.s3 ?? createS3Client(config);
  const sns = options.sns ?? (topicArn === undefined ? undefined : createSnsClient());
  return {
    config, s3, retry: createRetryPolicy(), logger: options.logger ?? rootLogger,
    samplePercent: parsed.data[DRILL_SAMPLE_ENV_VAR],
    ...(sns ? { sns } : {}),
    ...(topicArn === undefined ? {} : { topicArn }),
  };
}

let cached: DrillRuntime | undefined;

/** The container's DrillRuntime (clients reused between invocations), with the invocation's logger. */
export function getDrillRuntime(options: { logger?: Logger } = {}): DrillRuntime {
  cached ??= buildDrillRuntime();
  return options.logger === undefined ? cached : { ...cached, logger: options.logger };
}

/** Drops the cached DrillRuntime (tests). */
export function resetDrillRuntime(): void {
  cached = undefined;
}
