import pLimit, { type LimitFunction } from 'p-limit';
import { ArchiverError, ErrorCodes, errorSummary, failureOf, toArchiverError } from '../errors.js';
import type { ArchivedFile } from '../store/archive-manifest.js';
import { manifestKey } from '../store/keys.js';
import { listBackupState } from '../store/backup-state.js';
import { headObject } from '../store/s3-objects.js';
import { BackupLinks, validateBackupFiles } from '../links/backup-links.js';
import { completeBackup, removeBackupState } from './complete-backup.js';
import { fileStateKeys, refuseIfArchived, runFileStep } from './file-step.js';
import type { ArchiveDeps, ArchiveEvent, BackupReport, BackupTarget } from './types.js';

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
  const fileDone = (file: ArchivedFile, reused: boolean): ArchivedFile => {
    filesDone += 1;
    bytesDone += file.bytes;
    emit({ type: 'file-done', graphId, backupId, name: file.name, bytes: file.bytes, reused });
    return file;
  };

  try {
    // The backup's working state is listed while GES answers (one round trip less before the
    // first copy); both end before anything else happens. A dry run reads no state.
    const [fileListing, stateListing] = await Promise.allSettled([
      deps.ges.getBackupFiles(graphId, backupId, { signal }),
      options.dryRun ? Promise.resolve([]) : listBackupState(deps, bucket, prefix, graphId, backupId, signal),
    ]);
    if (fileListing.status === 'rejected') throw fileListing.reason;
    const listing = fileListing.value;
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
    if (stateListing.status === 'rejected') throw stateListing.reason;
    const state = new Set(stateListing.value.map((o) => o.key));

    const results = await Promise.all(listing.files.map((file) => limit(async (): Promise<ArchivedFile | undefined> => {
      if (signal.aborted || firstError !== undefined || archivedElsewhere !== undefined) return undefined;
      const keys = fileStateKeys(prefix, { graphId, backupId, fileName: file.name });
      try {
        const step = await runFileStep(deps, { graphId, backupId, fileName: file.name }, {
          log,
          signal,
          // A file completed by an earlier, interrupted run is reused (its receipt is in the listing).
          mayBeStored: state.has(keys.receiptKey),
          resume: state.has(keys.checkpointKey),
          saveProgress: true,
          skipSinglePutReceipt: true,
          request: {
            link: links.initial(file.name),
            getLink: (s) => links.fresh(file.name, s),
            onProgress: (delta) => emit({ type: 'bytes', delta }),
            metadata: { 'ges-graph-id': graphId, 'ges-backup-id': backupId },
            beforeCommit: refuseIfArchived(deps, target, file.name, repairing),
            resumable: true,
          },
        });
        if (step.status === 'archived-elsewhere') throw step.error;
        if (step.status === 'reused') {
          log.info({ file: file.name, bytes: step.file.bytes }, 'file already archived by an earlier run; reusing it');
          return fileDone(step.file, true);
        }
        if (step.status === 'handover') {
          log.info({ file: file.name, offset: step.checkpoint.offset, totalBytes: step.checkpoint.totalBytes },
            `${file.name}: ${step.checkpoint.offset} of ${step.checkpoint.totalBytes} bytes stored and kept; the next run continues from there`);
          // A handover only comes from an interruption (its checkpoint is saved): the backup ends cancelled below.
          if (signal.aborted) return undefined;
        }
        if (step.status !== 'copied') {
          throw new ArchiverError(ErrorCodes.Internal, `Copy of ${file.name} stopped before completion`);
        }
        const { durationMs, resumes, linkRefreshes, restarts } = step.stats;
        log.info({ file: file.name, bytes: step.file.bytes, durationMs, ...(resumes + linkRefreshes + restarts > 0 ? { resumes, linkRefreshes, restarts } : {}) }, 'file archived');
        return fileDone(step.file, false);
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
      await removeBackupState(deps, target, log, signal);
      return { ...base, status: 'skipped', files: 0, bytes: 0, durationMs: now() - started, reason: errorSummary(archivedElsewhere) };
    }
    if (firstError !== undefined) throw firstError;
    if (signal.aborted) throw toArchiverError(signal.reason);
    const files = results.filter((r): r is ArchivedFile => r !== undefined);
    const done = await completeBackup(deps, {
      graphId, backupId, backupName: target.backup?.name, backupTimestamp: target.backup?.startTimestamp, runId: options.runId,
    }, files, { log, signal });
    return { ...base, status: 'archived', files: done.manifest.fileCount, bytes: done.manifest.totalBytes, durationMs: now() - started, manifestKey: done.manifestKey };
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
