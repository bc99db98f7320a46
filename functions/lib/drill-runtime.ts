import type { SQSClient } from '@aws-sdk/client-sqs';
import * as z from 'zod';
import { describeIssues } from '../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { createSqsClient } from '../../lib/app/runtime.js';
import { describeSize, parseSize } from '../../lib/settings.js';
import { buildBucketRuntime, containerRuntime, type BucketRuntime, type BucketRuntimeOptions } from './bucket-runtime.js';

/**
 * The restore drill's composition root (restoreDrill plans, drillWorker checks): the bucket and
 * the alert topic (bucket-runtime.ts), the drill queue, the sample share and the byte budget.
 */
export const DRILL_SAMPLE_ENV_VAR = 'DRILL_SAMPLE_PERCENT';
export const DRILL_BUDGET_ENV_VAR = 'DRILL_BYTE_BUDGET';
export const DRILL_QUEUE_ENV_VAR = 'DRILL_QUEUE_URL';
/** Whole backups: a drill proves the newest backups restore completely, every file hashed. */
export const DEFAULT_DRILL_SAMPLE_PERCENT = 100;
/**
 * 100 GiB: the newest backup of several graphs a week, read at ~100 MB/s in about 17 minutes of
 * worker time (a few cents), with no transfer charge inside the region. Backups in GLACIER_IR
 * (coldStorageTransitionDays) cost a retrieval fee per GB read: the newest ones are rarely there.
 */
export const DEFAULT_DRILL_BYTE_BUDGET = 100 * 1024 ** 3;

export const samplePercentSchema = z.number({ error: 'must be a number' })
  .gt(0, 'must be more than 0')
  .max(100, 'must be at most 100');

/** A size in rclone's syntax (`100G`, `500GiB`, `1T`; a number alone is bytes), at least 1 MiB. */
export const byteBudgetSchema = z.union([z.number(), z.string()], { error: 'must be a size such as 100G or a number of bytes' })
  .transform((v, ctx) => {
    const bytes = typeof v === 'number' ? v : parseSize(v, 'b');
    if (bytes === undefined || !Number.isSafeInteger(bytes)) {
      ctx.addIssue({ code: 'custom', message: 'must be a size such as 100G, 500GiB or a whole number of bytes' });
      return z.NEVER;
    }
    if (bytes < 1024 ** 2) {
      ctx.addIssue({ code: 'custom', message: `must be at least 1 MiB (got ${describeSize(bytes)})` });
      return z.NEVER;
    }
    return bytes;
  });

const blankIsUnset = (v: unknown): unknown => (v === undefined || v === '' ? undefined : v);

const drillEnvSchema = z.object({
  [DRILL_SAMPLE_ENV_VAR]: z.preprocess(
    (v) => (v === undefined || v === '' ? undefined : Number(v)),
    samplePercentSchema.default(DEFAULT_DRILL_SAMPLE_PERCENT),
  ),
  [DRILL_BUDGET_ENV_VAR]: z.preprocess(blankIsUnset, byteBudgetSchema.optional()),
  [DRILL_QUEUE_ENV_VAR]: z.preprocess(blankIsUnset, z.url({ error: 'must be the drill queue\'s URL (the stack output DrillQueueUrl)' })),
});

export interface DrillRuntime extends BucketRuntime {
  samplePercent: number;
  byteBudget: number;
  sqs: SQSClient;
  queueUrl: string;
}

export interface DrillRuntimeOptions extends BucketRuntimeOptions {
  sqs?: SQSClient;
}

/** Throws ArchiverError CONFIG_INVALID naming the variable (ARCHIVE_BUCKET, DRILL_QUEUE_URL, DRILL_BYTE_BUDGET...). */
export function buildDrillRuntime(options: DrillRuntimeOptions = {}): DrillRuntime {
  const env = options.env ?? process.env;
  const parsed = drillEnvSchema.safeParse(env);
  if (!parsed.success) throw new ArchiverError(ErrorCodes.ConfigInvalid, `Invalid configuration: ${describeIssues(parsed.error)}`);
  return {
    ...buildBucketRuntime(options),
    samplePercent: parsed.data[DRILL_SAMPLE_ENV_VAR],
    byteBudget: parsed.data[DRILL_BUDGET_ENV_VAR] ?? DEFAULT_DRILL_BYTE_BUDGET,
    sqs: options.sqs ?? createSqsClient(),
    queueUrl: parsed.data[DRILL_QUEUE_ENV_VAR],
  };
}

const container = containerRuntime(() => buildDrillRuntime());

/** The container's DrillRuntime (clients reused between invocations), with the invocation's logger. */
export function getDrillRuntime(options: { logger?: Logger } = {}): DrillRuntime {
  return container.get(options);
}

/** Drops the cached DrillRuntime (tests). */
export function resetDrillRuntime(): void {
  container.reset();
}
