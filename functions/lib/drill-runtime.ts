import { z } from 'zod';
import { describeIssues } from '../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { buildBucketRuntime, containerRuntime, type BucketRuntime, type BucketRuntimeOptions } from './bucket-runtime.js';

/** The restore drill's composition root: the bucket and the alert topic (bucket-runtime.ts), and the sample share. */
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
});

export interface DrillRuntime extends BucketRuntime {
  samplePercent: number;
}

export type DrillRuntimeOptions = BucketRuntimeOptions;

/** Throws ArchiverError CONFIG_INVALID naming the variable (ARCHIVE_BUCKET, DRILL_SAMPLE_PERCENT...). */
export function buildDrillRuntime(options: DrillRuntimeOptions = {}): DrillRuntime {
  const env = options.env ?? process.env;
  const parsed = drillEnvSchema.safeParse(env);
  if (!parsed.success) throw new ArchiverError(ErrorCodes.ConfigInvalid, `Invalid configuration: ${describeIssues(parsed.error)}`);
  return { ...buildBucketRuntime(options), samplePercent: parsed.data[DRILL_SAMPLE_ENV_VAR] };
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
