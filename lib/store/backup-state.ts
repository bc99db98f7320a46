import type { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import type { RetryPolicy } from '../retry.js';
import { backupPrefix } from './keys.js';
import { stateBackupPrefix } from './receipts.js';
import { abortUpload, deleteKeys, getJson, listObjects } from './s3-objects.js';

/**
 * A backup's working state, `{prefix}_state/{graphId}/{backupId}/`: file receipts, the fan-out's
 * job.json and checkpoints, the finalize lock. It ends with the backup: whoever writes
 * manifest.json removes all of it (and the cleanup command removes what an abandoned backup
 * left). A checkpoint names the multipart upload of a handed-over copy; that upload is aborted
 * first, so nothing is left that only a lifecycle rule would find.
 */
interface Deps {
  s3: S3Client;
  retry: RetryPolicy;
}

/** What a checkpoint must name for its upload to be aborted (the copier validates the rest when it resumes one). */
const checkpointUpload = z.looseObject({ key: z.string().min(1), uploadId: z.string().min(1) });

export interface ClearedState {
  /** Objects removed from the state folder. */
  objects: number;
  /** Multipart uploads named by checkpoints that were still there and are now aborted. */
  uploadsAborted: number;
}

/** The keys under a backup's state folder, with their age. */
export async function listBackupState(deps: Deps, bucket: string, prefix: string, graphId: string, backupId: string, signal?: AbortSignal) {
  const keys = [];
  for await (const o of listObjects(deps, bucket, stateBackupPrefix(prefix, graphId, backupId), signal)) keys.push(o);
  return keys;
}

function isCheckpoint(stateFolder: string, key: string): boolean {
  return key.startsWith(`${stateFolder}checkpoints/`);
}

/**
 * Aborts the uploads the backup's checkpoints name, then deletes every object of its state
 * folder. `keys`: the folder's keys when the caller listed them already. Throws on the first
 * store failure, after trying every object.
 */
export async function clearBackupState(
  deps: Deps,
  bucket: string,
  prefix: string,
  target: { graphId: string; backupId: string },
  options: { signal?: AbortSignal | undefined; keys?: readonly string[] } = {},
): Promise<ClearedState> {
  const { graphId, backupId } = target;
  const { signal } = options;
  const folder = stateBackupPrefix(prefix, graphId, backupId);
  const keys = options.keys ?? (await listBackupState(deps, bucket, prefix, graphId, backupId, signal)).map((o) => o.key);
  let uploadsAborted = 0;
  for (const key of keys.filter((k) => isCheckpoint(folder, k))) {
    const cp = checkpointUpload.safeParse(await getJson(deps, bucket, key, signal));
    // Only an upload to one of this backup's own files: the checkpoint is our write, but it is read back from the store.
    if (cp.success && cp.data.key.startsWith(backupPrefix(prefix, graphId, backupId))) {
      if (await abortUpload(deps, bucket, cp.data.key, cp.data.uploadId, signal)) uploadsAborted += 1;
    }
  }
  await deleteKeys(deps, bucket, keys, signal);
  return { objects: keys.length, uploadsAborted };
}
