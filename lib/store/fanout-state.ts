import { stateBackupPrefix } from './receipts.js';

export { checkpointKey } from './receipts.js';

export { deleteKey, getJson } from './s3-objects.js';
export { jobKey, jobSchema, readJob, writeJob, type FanoutJob } from './fanout-job.js';

/**
 * Fan-out state, next to the per-file receipts under `{prefix}_state/{graphId}/{backupId}/`
 * (outside the backup's folder, removed once manifest.json is written):
 * - `job.json`: the files the scheduled run fanned out, so the worker that lands the last file
 *   knows it is the last, and the marker of a fan-out in progress (lib/store/fanout-job.ts);
 * - `checkpoints/{fileName}.json`: a handed-over copy's multipart progress;
 * - `finalize.lock`: the lock of the finalize fallback for stores without conditional writes.
 */
export function finalizeLockKey(prefix: string, graphId: string, backupId: string): string {
  return `${stateBackupPrefix(prefix, graphId, backupId)}finalize.lock`;
}
