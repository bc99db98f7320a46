import pLimit, { type LimitFunction } from 'p-limit';
import { checkpointSchema, type CopyCheckpoint } from '../copy/checkpoint.js';
import type { CopyFileRequest, CopyFileResult } from '../copy/copier.js';
import { isNoSuchUpload } from '../store/s3-errors.js';
import { ArchiverError, ErrorCodes, errorSummary, failureOf, toArchiverError } from '../errors.js';
import { buildArchiveManifest, type ArchivedFile } from '../store/archive-manifest.js';
import { fileKey, manifestKey } from '../store/keys.js';
import { clearBackupState, listBackupState } from '../store/backup-state.js';
import { checkpointKey, receiptKey, storedFile, writeReceipt } from '../store/receipts.js';
import { deleteKey, getJson, headObject, putJson } from '../store/s3-objects.js';
import { writeSha256Sums } from '../store/sha256sums.js';
import { BackupLinks, validateBackupFiles } from '../links/backup-links.js';
import type { ArchiveDeps, ArchiveEvent, BackupReport, BackupTarget } from './types.js';

/**
 * A copy's last check before it commits (CopyFileRequest.beforeCommit): when another run wrote
 * the backup's manifest.json while this one copied, the file is not replaced (its object under
 * a finished manifest may even hold other bytes): ALREADY_ARCHIVED, and the copier aborts.
 * `repairing` is the ETag of the manifest.json an `archive --force` set out to replace: that
 * one may be replaced, any other (a run that finished meanwhile) may not.
 */
export function refuseIfArchived(deps: Pick<ArchiveDeps, 's3' | 'retry' | 'config'>, target: { graphId: string; backupId: string }, fileName: string, repairing?: string) {
  return async (_result: unknown, signal: AbortSignal): Promise<void> => {
    const { bucket, prefix } = deps.config.archive;
    const now = await headObject(deps, bucket, manifestKey(prefix, target.graphId, target.backupId), signal);
    if (now !== undefined && (repairing === undefined || now.etag !== repairing)) {
      throw new ArchiverError(ErrorCodes.AlreadyArchived,
        `Graph ${target.graphId} backup ${target.backupId} was archived by another run while ${fileName} was being copied; this copy was not stored`);
    }
  };
}

export interface ArchiveBackupOptions {
  signal?: AbortSignal;
  dryRun?: boolean;
  runId?: string;
  onEvent?: (event: ArchiveEvent) => void;
  /** Shared across a run so the file concurrency bound holds for the whole run. */
  fileLimit?: LimitFunction;
  /** `archive --force`: the backup's manifest.json may exist and is replaced (written last, as always). */
  force?: boolean;
}

/**
 * Archives one backup: asks GES for its links, copies every file (bounded concurrency),
 * then writes manifest.json, last and only when every file is stored and verified, and removes
 * the backup's working state. A file already stored and verified by an earlier, interrupted run
 * is reused, not copied again. Each copy checks right before it commits that no other run has
 * archived the backup meanwhile; if one has, nothing is replaced and the backup is `skipped`
 * (reason ALREADY_ARCHIVED). Never throws: the outcome, failure included, is the returned report.
 */
export async function archiveBackup(deps: ArchiveDeps, target: BackupTarget, options: ArchiveBackupOptions = {}): Promise<BackupReport> {
  const now = deps.now ?? Date.now;
  const started = now();
  const { graphId, backupId } = target;
  const { bucket, prefix } = deps.config.archive;
  const where = `graph ${graphId} backup ${backupId}`;
  const log = deps.logger.child({ graphId, backupId });
  const base = {
    graphId,
    backupId,
    ...(target.backup?.name === undefined ? {} : { backupName: target.backup.name }),
  };
  const signal = options.signal ?? new AbortController().signal;
  const emit = options.onEvent ?? (() => undefined);
  let filesDone = 0;
  let bytesDone = 0;

  try {
    const listing = await deps.ges.getBackupFiles(graphId, backupId, { signal });
    validateBackupFiles(listing, deps.config.download.allowedHosts, where);
    const estimatedBytes = listing.files.reduce((sum, f) => sum + (f.sizeKb ?? 0) * 1024, 0);

    if (options.dryRun) {
      const fileList = listing.files.map((f) => ({ name: f.name, bytes: f.sizeKb === undefined ? null : f.sizeKb * 1024 }));
      return { ...base, status: 'planned', files: listing.files.length, bytes: estimatedBytes, fileList, durationMs: now() - started };
    }
    // A forced re-archive may replace the manifest.json it found, and only that one.
    const repairing = options.force === true ? (await headObject(deps, bucket, manifestKey(prefix, graphId, backupId), signal))?.etag : undefined;

    emit({ type: 'backup-start', graphId, backupId, files: listing.files.length, estimatedBytes });
    log.info({ files: listing.files.length, estimatedBytes }, 'archiving backup');
    const links = new BackupLinks(deps, target, listing, signal);
    const limit = options.fileLimit ?? pLimit(deps.config.concurrency.files);
    // Once a file has failed the backup cannot complete in this run: files not yet started
    // are left for the next run, but copies in flight finish (their receipts make the next
    // run cheaper). Once another run is found to have archived the backup, nothing more starts.
    let firstError: ArchiverError | undefined;
    let archivedElsewhere: ArchiverError | undefined;
    // Receipts of files stored by an earlier run, checkpoints of copies it was interrupted in.
    const state = new Set((await listBackupState(deps, bucket, prefix, graphId, backupId, signal)).map((o) => o.key));

    const results = await Promise.all(listing.files.map((file) => limit(async (): Promise<ArchivedFile | undefined> => {
      if (signal.aborted || firstError !== undefined || archivedElsewhere !== undefined) return undefined;
      const key = fileKey(prefix, graphId, backupId, file.name);
      const rKey = receiptKey(prefix, graphId, backupId, file.name);
      try {
        // A file completed by an earlier, interrupted run: reuse it when the object is there
        // with the receipt's length.
        const stored = state.has(rKey) ? await storedFile(deps, bucket, { name: file.name, key, receiptKey: rKey }, signal) : undefined;
        if (stored) {
          log.info({ file: file.name, bytes: stored.bytes }, 'file already archived by an earlier run; reusing it');
          filesDone += 1;
          bytesDone += stored.bytes;
          emit({ type: 'file-done', graphId, backupId, name: file.name, bytes: stored.bytes, reused: true });
          return stored;
        }
        const ckKey = checkpointKey(prefix, graphId, backupId, file.name);
        const result = await copyResumable(deps, {
          bucket,
          key,
          fileName: file.name,
          link: links.initial(file.name),
          getLink: (s) => links.fresh(file.name, s),
          signal: signal,
          onProgress: (delta) => emit({ type: 'bytes', delta }),
          metadata: { 'ges-graph-id': graphId, 'ges-backup-id': backupId },
          beforeCommit: refuseIfArchived(deps, target, file.name, repairing),
          resumable: true,
        }, state.has(ckKey) ? ckKey : undefined, ckKey, log);
        // A handover only comes from an interruption (its checkpoint is saved): the backup ends cancelled below.
        if (result.status === 'handover' && signal.aborted) return undefined;
        if (result.status !== 'complete') {
          throw new ArchiverError(ErrorCodes.Internal, `Copy of ${file.name} stopped before completion`);
        }
        // Receipts spare a re-run from downloading a large file again; a file that fitted in
        // one PutObject costs less to copy again than its receipt costs to write and delete.
        if (!result.stats.singlePut) {
          await writeReceipt(deps, bucket, rKey, {
            name: file.name, key, bytes: result.bytes, sha256: result.sha256, completedAt: new Date(now()).toISOString(),
          }, signal);
        }
        const { durationMs, resumes, linkRefreshes, restarts } = result.stats;
        log.info({ file: file.name, bytes: result.bytes, durationMs, ...(resumes + linkRefreshes + restarts > 0 ? { resumes, linkRefreshes, restarts } : {}) }, 'file archived');
        filesDone += 1;
        bytesDone += result.bytes;
        emit({ type: 'file-done', graphId, backupId, name: file.name, bytes: result.bytes, reused: false });
        return { name: file.name, key, bytes: result.bytes, sha256: result.sha256 };
      } catch (err) {
        const e = failureOf(err, signal);
        if (e.code === ErrorCodes.AlreadyArchived) {
          archivedElsewhere ??= e;
          log.info({ file: file.name }, 'another run archived the backup meanwhile; this copy was not stored');
          return undefined;
        }
        if (firstError === undefined) firstError = e;
        log.error({ file: file.name, err: e }, 'file failed');
        emit({ type: 'file-failed', graphId, backupId, name: file.name, code: e.code });
        return undefined;
      }
    })));

    if (archivedElsewhere !== undefined) {
      // The backup is archived (by the run that wrote manifest.json): not a failure of this one.
      await removeState(deps, target, log, signal);
      return { ...base, status: 'skipped', files: 0, bytes: 0, durationMs: now() - started, reason: errorSummary(archivedElsewhere) };
    }
    if (firstError !== undefined) throw firstError;
    if (signal.aborted) throw toArchiverError(signal.reason);
    const files = results.filter((r): r is ArchivedFile => r !== undefined);
    const manifest = buildArchiveManifest({
      graphId,
      backupId,
      backupName: target.backup?.name,
      backupTimestamp: target.backup?.startTimestamp,
      archivedAt: new Date(now()),
      runId: options.runId,
      files,
    });
    const mKey = manifestKey(prefix, graphId, backupId);
    await writeSha256Sums(deps, bucket, prefix, manifest, signal);
    await putJson(deps, bucket, mKey, manifest, signal);
    await removeState(deps, target, log, signal);
    log.info({ files: manifest.fileCount, bytes: manifest.totalBytes }, 'backup archived');
    return { ...base, status: 'archived', files: manifest.fileCount, bytes: manifest.totalBytes, durationMs: now() - started, manifestKey: mKey };
  } catch (err) {
    const e = failureOf(err, signal);
    if (e.code === ErrorCodes.Aborted && signal.aborted) {
      log.warn({ filesDone }, 'backup cancelled; what is stored stays for the next run');
      return { ...base, status: 'cancelled', files: filesDone, bytes: bytesDone, durationMs: now() - started, error: errorSummary(e) };
    }
    log.error({ err: e }, 'backup failed');
    return { ...base, status: 'failed', files: filesDone, bytes: bytesDone, durationMs: now() - started, error: errorSummary(e) };
  }
}

/** Saving a checkpoint after an interruption gets this long of its own (the run's signal has aborted). */
const CHECKPOINT_SAVE_MS = 10_000;

/**
 * One copy that survives an interruption: it continues from the checkpoint at `resumeFrom` (an
 * earlier run's), saves its progress there while it runs (every ARCHIVE_CHECKPOINT_EVERY_S, so a
 * crash is resumable too), and when the run is interrupted it saves its final one there (status
 * 'handover'). A checkpoint whose upload is gone (aborted by `cleanup`, expired) is dropped and
 * the file starts over; a copy that completes or fails removes its checkpoint (a failed copy's
 * upload is aborted by the copier).
 */
async function copyResumable(
  deps: ArchiveDeps, request: CopyFileRequest, resumeFrom: string | undefined, ckKey: string, log: ArchiveDeps['logger'],
): Promise<CopyFileResult> {
  const { bucket } = deps.config.archive;
  const signal = request.signal;
  // Progress checkpoints are written one at a time, in order, and all of them before the
  // checkpoint is removed or replaced by the final one: a late write never outlives the copy.
  let saving: Promise<void> = Promise.resolve();
  let saved = false;
  const saveProgress = (cp: CopyCheckpoint): void => {
    saved = true;
    saving = saving.then(() => putJson(deps, bucket, ckKey, cp, AbortSignal.timeout(CHECKPOINT_SAVE_MS)))
      .catch((err: unknown) => log.warn({ err: toArchiverError(err), file: request.fileName }, 'could not save the copy checkpoint; the copy goes on'));
  };
  const drop = async (): Promise<void> => {
    await saving;
    await deleteKey(deps, bucket, ckKey, AbortSignal.timeout(CHECKPOINT_SAVE_MS))
      .catch((err: unknown) => log.warn({ err: toArchiverError(err), file: request.fileName }, 'could not remove the copy checkpoint; `ges-archiver cleanup` removes it'));
  };
  let checkpoint: CopyCheckpoint | undefined;
  if (resumeFrom !== undefined) {
    const parsed = checkpointSchema.safeParse(await getJson(deps, bucket, resumeFrom, signal));
    if (parsed.success && parsed.data.key === request.key) {
      checkpoint = parsed.data;
      log.info({ file: request.fileName, offset: checkpoint.offset, totalBytes: checkpoint.totalBytes },
        `resuming ${request.fileName} at byte ${checkpoint.offset} of ${checkpoint.totalBytes}, where an earlier run was interrupted`);
      request.onProgress?.(checkpoint.offset);
    } else {
      log.warn({ file: request.fileName }, 'copy checkpoint unreadable; copying the file from the start');
    }
  }
  let result: CopyFileResult;
  try {
    result = await deps.copier.copyFile({ ...request, onCheckpoint: saveProgress, ...(checkpoint ? { checkpoint } : {}) });
  } catch (err) {
    if (checkpoint !== undefined && isNoSuchUpload(err) && !signal?.aborted) {
      log.warn({ file: request.fileName }, 'the multipart upload of the copy checkpoint is gone; copying the file from the start');
      request.onProgress?.(-checkpoint.offset);
      await drop();
      return copyResumable(deps, request, undefined, ckKey, log);
    }
    if (checkpoint !== undefined || saved) await drop();
    throw err;
  }
  if (result.status === 'handover') {
    await saving;
    await putJson(deps, bucket, ckKey, result.checkpoint, AbortSignal.timeout(CHECKPOINT_SAVE_MS));
    log.info({ file: request.fileName, offset: result.checkpoint.offset, totalBytes: result.checkpoint.totalBytes },
      `${request.fileName}: ${result.checkpoint.offset} of ${result.checkpoint.totalBytes} bytes stored and kept; the next run continues from there`);
  } else if (checkpoint !== undefined || saved) {
    await drop();
  }
  return result;
}

/** Once a backup is archived, its working state (receipts, a stale fan-out's job and checkpoints) goes; a leftover is harmless. */
async function removeState(deps: ArchiveDeps, target: BackupTarget, log: ArchiveDeps['logger'], signal: AbortSignal): Promise<void> {
  const { bucket, prefix } = deps.config.archive;
  await clearBackupState(deps, bucket, prefix, target, { signal })
    .catch((err: unknown) => log.warn({ err: toArchiverError(err) }, 'could not remove the backup\'s working state under _state/; it is harmless, and `ges-archiver cleanup` removes it'));
}
