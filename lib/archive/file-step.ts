import { checkpointSchema, type CopyCheckpoint } from '../copy/checkpoint.js';
import type { CopyFileRequest, CopyFileResult } from '../copy/copier.js';
import type { CopyStats } from '../copy/types.js';
import { ArchiverError, ErrorCodes, toArchiverError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ArchivedFile } from '../store/archive-manifest.js';
import { fileKey, manifestKey } from '../store/keys.js';
import { checkpointKey, receiptKey, storedFile, writeReceipt } from '../store/receipts.js';
import { isNoSuchUpload } from '../store/s3-errors.js';
import { deleteKey, getJson, headObject, putJson } from '../store/s3-objects.js';
import type { ArchiveDeps } from './types.js';

/**
 * The per-file step, the one both ways of archiving take (the inline run, archive-backup.ts, and
 * the fan-out's copy worker, lib/fanout/worker.ts): is the file already stored (its receipt and
 * its object) → copy it, continuing from its checkpoint under `_state/{g}/{b}/checkpoints/` →
 * write its receipt. What differs between the two is passed in (FileStepOptions).
 */

export type FileStepDeps = Pick<ArchiveDeps, 's3' | 'retry' | 'config' | 'copier' | 'now'>;

/** One file of one backup. */
export interface FileRef {
  graphId: string;
  backupId: string;
  fileName: string;
}

/** Saving or removing a checkpoint after an interruption gets this long of its own (the run's signal may have aborted). */
const CHECKPOINT_SAVE_MS = 10_000;

/** The file's keys: its object, its receipt, its copy checkpoint. */
export function fileStateKeys(prefix: string, ref: FileRef): { key: string; receiptKey: string; checkpointKey: string } {
  const { graphId, backupId, fileName } = ref;
  return {
    key: fileKey(prefix, graphId, backupId, fileName),
    receiptKey: receiptKey(prefix, graphId, backupId, fileName),
    checkpointKey: checkpointKey(prefix, graphId, backupId, fileName),
  };
}

/** The file, when an earlier copy stored it: its receipt names it and its object has the receipt's length. */
export async function storedArchivedFile(deps: Pick<FileStepDeps, 's3' | 'retry' | 'config'>, ref: FileRef, signal?: AbortSignal): Promise<ArchivedFile | undefined> {
  const { bucket, prefix } = deps.config.archive;
  const keys = fileStateKeys(prefix, ref);
  return storedFile(deps, bucket, { name: ref.fileName, key: keys.key, receiptKey: keys.receiptKey }, signal);
}

/** Records the file as stored and verified: its receipt (read by a re-run's stored? check and by the fan-out's finalize). */
export async function writeFileReceipt(deps: Pick<FileStepDeps, 's3' | 'retry' | 'config' | 'now'>, ref: FileRef, file: ArchivedFile, signal?: AbortSignal): Promise<void> {
  const { bucket, prefix } = deps.config.archive;
  const completedAt = new Date((deps.now ?? Date.now)()).toISOString();
  await writeReceipt(deps, bucket, fileStateKeys(prefix, ref).receiptKey, { ...file, completedAt }, signal);
}

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

/**
 * A checkpoint whose work is done elsewhere (the file or the backup is archived): abort the
 * upload it names (nothing else will: it is not the one that completed the file) and remove it.
 * Best effort: a leftover is harmless, and `ges-archiver cleanup` removes it.
 */
export async function abandonCheckpoint(deps: Pick<FileStepDeps, 's3' | 'retry' | 'config' | 'copier'>, ref: FileRef, log: Logger, signal?: AbortSignal): Promise<void> {
  const { bucket, prefix } = deps.config.archive;
  const { checkpointKey: ckKey } = fileStateKeys(prefix, ref);
  try {
    const parsed = checkpointSchema.safeParse(await getJson(deps, bucket, ckKey, signal));
    if (parsed.success) await deps.copier.abortCheckpoint(parsed.data);
    await deleteKey(deps, bucket, ckKey, signal);
  } catch (err) {
    log.warn({ err: toArchiverError(err) }, 'could not abort the upload of the copy checkpoint; `ges-archiver cleanup` (or the bucket\'s lifecycle rule) removes it');
  }
}

export interface FileStepOptions {
  log: Logger;
  signal?: AbortSignal | undefined;
  /**
   * False when the file is known to have no receipt (the inline run lists the backup's state
   * once): the stored? check is skipped. Default: look.
   */
  mayBeStored?: boolean;
  /** A checkpoint may be there (an earlier run's, a continuation's): continue from it when it is readable. */
  resume: boolean;
  /** The copy's own settings: its link, progress, commit check, metadata, `resumable`, `handoverAt`. */
  request: Omit<CopyFileRequest, 'bucket' | 'key' | 'fileName' | 'signal' | 'checkpoint' | 'onCheckpoint'>;
  /**
   * Save the copier's periodic checkpoints (every ARCHIVE_CHECKPOINT_EVERY_S) while the copy
   * runs, so that a crash is resumable too (the inline run; a worker hands over instead).
   */
  saveProgress?: boolean;
  /** Runs after the stored? check, before the copy; true when the file is taken care of elsewhere (a range-sharded copy). */
  beforeCopy?: () => Promise<boolean>;
  /**
   * A file stored with one PutObject gets no receipt: it costs less to copy again than its
   * receipt costs to write and delete (the inline run, which keeps its results). Default: every
   * file gets one (the fan-out's finalize reads them).
   */
  skipSinglePutReceipt?: boolean;
  /**
   * A failed copy keeps its checkpoint: the message is delivered again and continues from it
   * while its upload is there (a handover whose parts did not land in time leaves it); one whose
   * upload the copier aborted is found gone and the file starts over. Default: it is dropped.
   */
  keepCheckpointOnFailure?: boolean;
  /** The signal for saving the handover's checkpoint; default CHECKPOINT_SAVE_MS of its own. */
  saveSignal?: () => AbortSignal | undefined;
}

export type FileStepResult =
  /** Stored by an earlier copy (found before copying, or when the checkpoint's upload had been completed by a duplicate). */
  | { status: 'reused'; file: ArchivedFile }
  /** Copied now; its receipt is written. */
  | { status: 'copied'; file: ArchivedFile; stats: CopyStats }
  /** Stopped at a part boundary (a deadline, an interruption): the checkpoint is saved; `from` is the offset it resumed at. */
  | { status: 'handover'; checkpoint: CopyCheckpoint; from: number | undefined; stats: CopyStats }
  /** Another run wrote the backup's manifest.json while this copied: nothing was replaced. */
  | { status: 'archived-elsewhere'; error: ArchiverError }
  /** `beforeCopy` took the file elsewhere. */
  | { status: 'diverted' };

/**
 * The per-file step (module comment). The checkpoint: loaded and checked against the file's key
 * (an unreadable one is dropped and the file starts over), saved on a handover, dropped when
 * the copy completes or fails (the copier aborts a failed copy's upload). A checkpoint whose
 * upload is gone (completed by a duplicate, aborted by `cleanup` or the lifecycle rule) means the
 * file is stored, or it starts over.
 */
export async function runFileStep(deps: FileStepDeps, ref: FileRef, options: FileStepOptions): Promise<FileStepResult> {
  const { log, signal } = options;
  const keys = fileStateKeys(deps.config.archive.prefix, ref);
  if (options.mayBeStored !== false) {
    const stored = await storedArchivedFile(deps, ref, signal);
    if (stored) {
      if (options.resume) await abandonCheckpoint(deps, ref, log, signal);
      return { status: 'reused', file: stored };
    }
  }
  if (options.beforeCopy !== undefined && await options.beforeCopy()) return { status: 'diverted' };
  const { handoverAt } = options.request;
  if (handoverAt !== undefined && (deps.now ?? Date.now)() >= handoverAt) {
    throw new ArchiverError(ErrorCodes.DeadlineExceeded, 'Too little time left in this invocation to start the copy', { retryable: true });
  }
  return copyWithCheckpoint(deps, ref, keys, options);
}

async function copyWithCheckpoint(
  deps: FileStepDeps, ref: FileRef, keys: ReturnType<typeof fileStateKeys>, options: FileStepOptions,
): Promise<FileStepResult> {
  const { bucket } = deps.config.archive;
  const { log, signal, request } = options;
  const { fileName } = ref;
  const ckKey = keys.checkpointKey;
  // Progress checkpoints are written one at a time, in order, and all of them before the
  // checkpoint is removed or replaced by the final one: a late write never outlives the copy.
  let saving: Promise<void> = Promise.resolve();
  let saved = false;
  const saveProgress = (cp: CopyCheckpoint): void => {
    saved = true;
    saving = saving.then(() => putJson(deps, bucket, ckKey, cp, AbortSignal.timeout(CHECKPOINT_SAVE_MS)))
      .catch((err: unknown) => log.warn({ err: toArchiverError(err), file: fileName }, 'could not save the copy checkpoint; the copy goes on'));
  };
  const drop = async (): Promise<void> => {
    await saving;
    await deleteKey(deps, bucket, ckKey, AbortSignal.timeout(CHECKPOINT_SAVE_MS))
      .catch((err: unknown) => log.warn({ err: toArchiverError(err), file: fileName }, 'could not remove the copy checkpoint; `ges-archiver cleanup` removes it'));
  };
  let checkpoint: CopyCheckpoint | undefined;
  if (options.resume) {
    const parsed = checkpointSchema.safeParse(await getJson(deps, bucket, ckKey, signal));
    if (parsed.success && parsed.data.key === keys.key) {
      checkpoint = parsed.data;
      log.info({ file: fileName, offset: checkpoint.offset, totalBytes: checkpoint.totalBytes },
        `resuming ${fileName} at byte ${checkpoint.offset} of ${checkpoint.totalBytes}, where an earlier copy stopped`);
      request.onProgress?.(checkpoint.offset);
    } else {
      log.warn({ file: fileName }, 'copy checkpoint missing or unreadable; copying the file from the start');
    }
  }
  const full: CopyFileRequest = {
    ...request, bucket, key: keys.key, fileName,
    ...(signal ? { signal } : {}),
    ...(options.saveProgress === true ? { onCheckpoint: saveProgress } : {}),
    ...(checkpoint ? { checkpoint } : {}),
  };
  let result: CopyFileResult;
  try {
    result = await deps.copier.copyFile(full);
  } catch (err) {
    if (checkpoint !== undefined && isNoSuchUpload(err) && signal?.aborted !== true) {
      request.onProgress?.(-checkpoint.offset);
      await drop();
      const stored = await storedArchivedFile(deps, ref, signal);
      if (stored) {
        log.info({ file: fileName }, 'the upload of the copy checkpoint was completed by another copy; the file is stored');
        return { status: 'reused', file: stored };
      }
      log.warn({ file: fileName }, 'the multipart upload of the copy checkpoint is gone; copying the file from the start');
      return copyWithCheckpoint(deps, ref, keys, { ...options, resume: false });
    }
    const e = toArchiverError(err);
    if ((options.resume || saved) && (options.keepCheckpointOnFailure !== true || e.code === ErrorCodes.AlreadyArchived)) await drop();
    // The copier aborted its upload instead of completing it: the finished backup stays as it is.
    if (e.code === ErrorCodes.AlreadyArchived) return { status: 'archived-elsewhere', error: e };
    throw err;
  }
  if (result.status === 'handover') {
    await saving;
    await putJson(deps, bucket, ckKey, result.checkpoint, options.saveSignal?.() ?? AbortSignal.timeout(CHECKPOINT_SAVE_MS));
    return { status: 'handover', checkpoint: result.checkpoint, from: checkpoint?.offset, stats: result.stats };
  }
  const file: ArchivedFile = { name: fileName, key: keys.key, bytes: result.bytes, sha256: result.sha256 };
  if (options.skipSinglePutReceipt !== true || !result.stats.singlePut) {
    await writeFileReceipt(deps, ref, file, signal);
  }
  if (options.resume || saved) await drop();
  return { status: 'copied', file, stats: result.stats };
}
