import * as z from 'zod';
import { describeIssues } from '../../lib/config.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { parseDuration } from '../../lib/prune/duration.js';
import { buildBucketRuntime, containerRuntime, type BucketRuntime, type BucketRuntimeOptions } from './bucket-runtime.js';

/**
 * The scheduled prune's composition root: the bucket and the alert topic (bucket-runtime.ts),
 * and its retention: PRUNE_KEEP_LAST (required for a scheduled prune: nothing is deleted by
 * default) and PRUNE_KEEP_WITHIN (optional, `90d`), from the serverless.yml params.
 */
export const PRUNE_KEEP_LAST_ENV_VAR = 'PRUNE_KEEP_LAST';
export const PRUNE_KEEP_WITHIN_ENV_VAR = 'PRUNE_KEEP_WITHIN';

const optional = z.string().optional().transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const pruneEnvSchema = z.object({
  [PRUNE_KEEP_LAST_ENV_VAR]: optional.refine((v) => v === undefined || (/^\d+$/.test(v) && Number(v) >= 1), 'must be a whole number of at least 1'),
  [PRUNE_KEEP_WITHIN_ENV_VAR]: optional.refine((v) => {
    if (v === undefined) return true;
    try {
      parseDuration(v);
      return true;
    } catch {
      return false;
    }
  }, 'must be a duration like 90d, 12h, 2w or 1y'),
});

export interface PruneRuntime extends BucketRuntime {
  /** Undefined when the param is empty: an invocation must then name keepLast itself. */
  keepLast: number | undefined;
  keepWithin: string | undefined;
}

/** Throws ArchiverError CONFIG_INVALID naming the variable (ARCHIVE_BUCKET, PRUNE_KEEP_LAST...). */
export function buildPruneRuntime(options: BucketRuntimeOptions = {}): PruneRuntime {
  const env = options.env ?? process.env;
  const parsed = pruneEnvSchema.safeParse(env);
  if (!parsed.success) throw new ArchiverError(ErrorCodes.ConfigInvalid, `Invalid configuration: ${describeIssues(parsed.error)}`);
  const keepLast = parsed.data[PRUNE_KEEP_LAST_ENV_VAR];
  return {
    ...buildBucketRuntime(options),
    keepLast: keepLast === undefined ? undefined : Number(keepLast),
    keepWithin: parsed.data[PRUNE_KEEP_WITHIN_ENV_VAR],
  };
}

const container = containerRuntime(() => buildPruneRuntime());

/** The container's PruneRuntime (clients reused between invocations), with the invocation's logger. */
export function getPruneRuntime(options: { logger?: Logger } = {}): PruneRuntime {
  return container.get(options);
}

/** Drops the cached PruneRuntime (tests). */
export function resetPruneRuntime(): void {
  container.reset();
}
