import type { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { DEFAULT_FANOUT_MARKER_HOURS } from '../config.js';
import type { RetryPolicy } from '../retry.js';
import { stateBackupPrefix } from './receipts.js';
import { getJson, putJson } from './s3-objects.js';

/**
 * `{prefix}_state/{graphId}/{backupId}/job.json`: the files a scheduled run fanned out to the
 * copy queue. The finalizer reads it to know when the last file has landed; planning reads it
 * as the marker of a fan-out in progress (see `fanoutInProgress`). Removed with the rest of
 * the backup's state once manifest.json is written.
 */
export const jobSchema = z.object({
  version: z.literal(1),
  runId: z.string().min(1),
  graphId: z.string().min(1),
  backupId: z.string().min(1),
  backupName: z.string().optional(),
  backupTimestamp: z.number().optional(),
  createdAt: z.string(),
  files: z.array(z.object({ name: z.string().min(1), expectedBytes: z.number().int().nonnegative().optional() })).min(1),
});

export type FanoutJob = z.infer<typeof jobSchema>;

interface Deps {
  s3: S3Client;
  retry: RetryPolicy;
}

/** How long a fan-out counts as in progress when the caller's configuration does not say. */
export const DEFAULT_FANOUT_MARKER_TTL_MS = DEFAULT_FANOUT_MARKER_HOURS * 3_600_000;

export function jobKey(prefix: string, graphId: string, backupId: string): string {
  return `${stateBackupPrefix(prefix, graphId, backupId)}job.json`;
}

export async function readJob(deps: Deps, bucket: string, prefix: string, graphId: string, backupId: string, signal?: AbortSignal): Promise<FanoutJob | undefined> {
  const data = await getJson(deps, bucket, jobKey(prefix, graphId, backupId), signal);
  if (data === undefined) return undefined;
  const parsed = jobSchema.safeParse(data);
  return parsed.success ? parsed.data : undefined;
}

export async function writeJob(deps: Deps, bucket: string, prefix: string, job: FanoutJob, signal?: AbortSignal): Promise<void> {
  await putJson(deps, bucket, jobKey(prefix, job.graphId, job.backupId), job, signal);
}

export interface FanoutMarker {
  runId: string;
  createdAt: string;
  /** When the marker stops counting: a later run fans the backup out (or archives it) again. */
  expiresAt: string;
}

/**
 * The fan-out in progress for a backup, if any: a readable job.json younger than `ttlMs`. While
 * it lasts, runs skip the backup (FANOUT_IN_PROGRESS), so a second scheduled run or a manual
 * run does not copy the same files again next to the workers. After it, the fan-out is taken
 * for dead (its messages failed into the dead-letter queue, or were lost) and the backup is
 * archived again; files whose receipts are there are reused.
 */
export async function fanoutInProgress(deps: Deps, bucket: string, prefix: string, target: { graphId: string; backupId: string }, options: { ttlMs: number; now: number; signal?: AbortSignal | undefined }): Promise<FanoutMarker | undefined> {
  const job = await readJob(deps, bucket, prefix, target.graphId, target.backupId, options.signal);
  const created = job === undefined ? Number.NaN : Date.parse(job.createdAt);
  if (job === undefined || Number.isNaN(created) || options.now - created >= options.ttlMs) return undefined;
  return { runId: job.runId, createdAt: job.createdAt, expiresAt: new Date(created + options.ttlMs).toISOString() };
}
