import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config.js';
import { errorSummary, isAbortError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../retry.js';
import { clearBackupState } from '../store/backup-state.js';
import { manifestKey } from '../store/keys.js';
import { abortUpload, headObject, listObjects, s3Error } from '../store/s3-objects.js';

/**
 * `ges-archiver cleanup`: what a run can leave behind, for stores without lifecycle rules (and
 * for AWS buckets without the abort-incomplete-uploads rule):
 * - multipart uploads under the archive prefix started before the cutoff (a crashed run, a
 *   handed-over copy whose continuation never came) are aborted;
 * - the `_state/{graphId}/{backupId}/` folder of a backup is removed when the backup is
 *   archived (its manifest.json exists: the state is only a leftover), or when nothing in it
 *   changed since the cutoff (abandoned: a fan-out whose messages died, a run that never came
 *   back); the uploads its checkpoints name are aborted first. A younger folder of a backup
 *   that is not archived is kept: a run or a fan-out may be working on it.
 * With `dryRun`, nothing is aborted or deleted and the report says what would be. One item's
 * failure is reported and the sweep goes on.
 */
export interface CleanupDeps {
  s3: S3Client;
  retry: RetryPolicy;
  logger: Logger;
  config: Pick<Config, 'archive'>;
}

export interface CleanupOptions {
  /** Uploads started, and abandoned state last changed, before `now - olderThanMs` go. */
  olderThanMs: number;
  dryRun?: boolean;
  signal?: AbortSignal | undefined;
  now?: number;
}

export interface CleanupReport {
  dryRun: boolean;
  /** ISO 8601: the cutoff (now minus the age). */
  olderThan: string;
  /** Incomplete multipart uploads aborted (or, in a dry run, that would be). */
  uploads: { key: string; uploadId: string; initiated: string }[];
  /** Backups whose `_state/` folder was removed (or would be). */
  state: { graphId: string; backupId: string; reason: 'archived' | 'abandoned'; objects: number; uploadsAborted: number }[];
  /** Backups whose `_state/` folder was kept: not archived, and changed after the cutoff. */
  kept: { graphId: string; backupId: string; lastModified: string }[];
  /** What could not be cleaned up, and why. */
  errors: { what: string; code: ErrorCode; message: string }[];
}

interface StateFolder {
  graphId: string;
  backupId: string;
  keys: string[];
  lastModified: number;
}

/** The `_state/{graphId}/{backupId}/` folders under the prefix (other `_state/` objects, like the preflight's, are not a backup's). */
async function stateFolders(deps: CleanupDeps, signal?: AbortSignal): Promise<StateFolder[]> {
  const { bucket, prefix } = deps.config.archive;
  const root = `${prefix}_state/`;
  const folders = new Map<string, StateFolder>();
  for await (const o of listObjects(deps, bucket, root, signal)) {
    const [graphId, backupId, ...rest] = o.key.slice(root.length).split('/');
    if (!graphId || !backupId || rest.length === 0) continue;
    const id = `${graphId}/${backupId}`;
    const folder = folders.get(id) ?? { graphId, backupId, keys: [], lastModified: 0 };
    folder.keys.push(o.key);
    folder.lastModified = Math.max(folder.lastModified, o.lastModified?.getTime() ?? 0);
    folders.set(id, folder);
  }
  return [...folders.values()];
}

async function* incompleteUploads(deps: CleanupDeps, signal?: AbortSignal): AsyncGenerator<{ key: string; uploadId: string; initiated: Date | undefined }> {
  const { bucket, prefix } = deps.config.archive;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await deps.retry(async () => {
      try {
        return await deps.s3.send(new ListMultipartUploadsCommand({
          Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker,
        }), { abortSignal: signal });
      } catch (err) {
        throw s3Error('ListMultipartUploads', prefix, err);
      }
    }, { signal });
    for (const u of page.Uploads ?? []) {
      if (u.Key !== undefined && u.UploadId !== undefined) yield { key: u.Key, uploadId: u.UploadId, initiated: u.Initiated };
    }
    if (!page.IsTruncated) return;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}

export async function cleanupArchive(deps: CleanupDeps, options: CleanupOptions): Promise<CleanupReport> {
  const { bucket, prefix } = deps.config.archive;
  const { signal } = options;
  const dryRun = options.dryRun ?? false;
  const cutoff = (options.now ?? Date.now()) - options.olderThanMs;
  const report: CleanupReport = { dryRun, olderThan: new Date(cutoff).toISOString(), uploads: [], state: [], kept: [], errors: [] };
  const log = deps.logger.child({ dryRun });

  /** Runs one item's work; a failure (not our own abort) is reported and the sweep goes on. */
  const attempt = async (what: string, work: () => Promise<void>): Promise<void> => {
    try {
      await work();
    } catch (err) {
      if (isAbortError(err) && signal?.aborted) throw err;
      const { code, message } = errorSummary(err);
      log.error({ what, code, error: message }, 'cleanup of an item failed');
      report.errors.push({ what, code, message });
    }
  };

  for await (const upload of incompleteUploads(deps, signal)) {
    const initiated = upload.initiated?.getTime();
    if (initiated === undefined || initiated >= cutoff) continue;
    await attempt(`multipart upload ${upload.uploadId} of ${upload.key}`, async () => {
      if (!dryRun) await abortUpload(deps, bucket, upload.key, upload.uploadId, signal);
      report.uploads.push({ key: upload.key, uploadId: upload.uploadId, initiated: new Date(initiated).toISOString() });
      log.info({ key: upload.key, initiated: new Date(initiated).toISOString() }, dryRun ? 'would abort an incomplete multipart upload' : 'aborted an incomplete multipart upload');
    });
  }

  for (const folder of await stateFolders(deps, signal)) {
    const { graphId, backupId } = folder;
    await attempt(`state of graph ${graphId} backup ${backupId}`, async () => {
      const archived = (await headObject(deps, bucket, manifestKey(prefix, graphId, backupId), signal)) !== undefined;
      if (!archived && folder.lastModified >= cutoff) {
        report.kept.push({ graphId, backupId, lastModified: new Date(folder.lastModified).toISOString() });
        return;
      }
      const reason = archived ? 'archived' as const : 'abandoned' as const;
      const cleared = dryRun ? { objects: folder.keys.length, uploadsAborted: 0 } : await clearBackupState(deps, bucket, prefix, folder, { signal, keys: folder.keys });
      report.state.push({ graphId, backupId, reason, ...cleared });
      log.info({ graphId, backupId, reason, ...cleared }, dryRun ? 'would remove a backup\'s working state' : 'removed a backup\'s working state');
    });
  }
  return report;
}
