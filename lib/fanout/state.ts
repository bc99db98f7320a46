import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { stateBackupPrefix } from '../archive/receipts.js';
import { getJson, isNotFound, putJson, s3Error } from '../archive/s3-objects.js';

export { getJson };
import type { RetryPolicy } from '../retry.js';

/**
 * Fan-out state, next to the per-file receipts under `{prefix}_state/{graphId}/{backupId}/`
 * (outside the backup's folder, removed once manifest.json is written):
 * - `job.json`: the files the scheduled run fanned out, so the worker that lands the last file
 *   knows it is the last;
 * - `checkpoints/{fileName}.json`: a handed-over copy's multipart progress;
 * - `finalize.lock`: the lock of the finalize fallback for stores without conditional writes.
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

export function jobKey(prefix: string, graphId: string, backupId: string): string {
  return `${stateBackupPrefix(prefix, graphId, backupId)}job.json`;
}

export function checkpointKey(prefix: string, graphId: string, backupId: string, fileName: string): string {
  return `${stateBackupPrefix(prefix, graphId, backupId)}checkpoints/${fileName}.json`;
}

export function finalizeLockKey(prefix: string, graphId: string, backupId: string): string {
  return `${stateBackupPrefix(prefix, graphId, backupId)}finalize.lock`;
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

/** Deletes one object; a missing one is fine. */
export async function deleteKey(deps: Deps, bucket: string, key: string, signal?: AbortSignal): Promise<void> {
  await deps.retry(async () => {
    try {
      await deps.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    } catch (err) {
      if (isNotFound(err)) return;
      throw s3Error('DeleteObject', key, err);
    }
  }, { signal });
}
