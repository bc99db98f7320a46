import pLimit from 'p-limit';
import type { ArchiveManifest, ArchivedFile } from '../store/archive-manifest.js';
import { backupPrefix, manifestKey } from '../store/keys.js';
import { headObject, readObjectStream } from '../store/s3-objects.js';
import { SHA256SUMS_NAME } from '../store/sha256sums.js';
import { readArchiveManifest } from '../catalog/read-manifest.js';
import { assertSafeFileName } from '../copy/guard.js';
import { ArchiverError, ErrorCodes, errorSummary, toArchiverError } from '../errors.js';
import { waitForJob } from '../ges/jobs.js';
import { createDirTarget } from './dir-target.js';
import { createS3Target } from './s3-target.js';
import { importPathOf, targetLabel } from './target.js';
import type { RestoreDeps, RestoredFile, RestoreOptions, RestoreReport, TargetWriter } from './types.js';

const MiB = 1024 * 1024;
export const DEFAULT_RESTORE_CONCURRENCY = 4;
export const DEFAULT_RESTORE_PART_SIZE = 8 * MiB;
export const DEFAULT_RESTORE_PART_CONCURRENCY = 4;

/**
 * The backup's manifest.json: NOT_ARCHIVED when there is none; VERIFY_FAILED when it cannot
 * be used (unreadable, not the schema, not its folder's, or a file name that is not a safe
 * single path segment: the names become paths at the target).
 */
export async function loadRestorableManifest(deps: RestoreDeps, graphId: string, backupId: string, signal?: AbortSignal): Promise<ArchiveManifest> {
  const { bucket, prefix } = deps.config.archive;
  const mKey = manifestKey(prefix, graphId, backupId);
  if (!(await headObject(deps, bucket, mKey, signal))) {
    throw new ArchiverError(ErrorCodes.NotArchived,
      `Backup ${backupId} of graph ${graphId} is not archived: s3://${bucket}/${mKey} does not exist (see ges-archiver list)`,
      { details: { graphId, backupId, manifestKey: mKey } });
  }
  const read = await readArchiveManifest(deps, {
    graphId, backupId, prefix: backupPrefix(prefix, graphId, backupId), manifestKey: mKey, archived: true, objects: new Map(),
  }, signal);
  if (!read.ok) {
    throw new ArchiverError(ErrorCodes.VerifyFailed, `Cannot restore from s3://${bucket}/${mKey}: ${read.problem}`, { details: { manifestKey: mKey } });
  }
  for (const f of read.manifest.files) {
    try {
      assertSafeFileName(f.name);
    } catch (err) {
      throw new ArchiverError(ErrorCodes.VerifyFailed, `Cannot restore from s3://${bucket}/${mKey}: file name ${JSON.stringify(f.name.slice(0, 120))} is refused (${(err as Error).message})`, { cause: err });
    }
    if (f.name.toLowerCase() === SHA256SUMS_NAME.toLowerCase()) {
      throw new ArchiverError(ErrorCodes.VerifyFailed, `Cannot restore from s3://${bucket}/${mKey}: a file named ${f.name} would collide with the restore's own ${SHA256SUMS_NAME}`);
    }
  }
  return read.manifest;
}

function writerFor(deps: RestoreDeps, options: RestoreOptions): TargetWriter {
  const { target } = options;
  if (target.kind === 'dir') return createDirTarget(target.dir, deps.logger);
  return createS3Target(
    { s3: deps.targetS3 ?? deps.s3, retry: deps.retry, logger: deps.logger },
    {
      bucket: target.bucket,
      prefix: target.prefix,
      partSizeBytes: options.partSizeBytes ?? DEFAULT_RESTORE_PART_SIZE,
      partConcurrency: options.partConcurrency ?? DEFAULT_RESTORE_PART_CONCURRENCY,
    },
  );
}

/** Target files that differ from the archive, refused up front (before anything is written) unless `force`. */
function conflictError(writer: TargetWriter, conflicts: { file: ArchivedFile; why: string }[]): ArchiverError {
  const shown = conflicts.slice(0, 5).map((c) => `${c.file.name} (${c.why})`).join('; ');
  return new ArchiverError(ErrorCodes.ArgsInvalid,
    `${conflicts.length} file${conflicts.length === 1 ? '' : 's'} at ${writer.label} already exist${conflicts.length === 1 ? 's' : ''} and differ${conflicts.length === 1 ? 's' : ''} from the archive: ${shown}${conflicts.length > 5 ? '; …' : ''}. `
    + 'Nothing was written. Pass --force to replace them, or restore into an empty directory or folder.',
    { details: { files: conflicts.map((c) => c.file.name) } });
}

/**
 * Restores one archived backup to a directory or an `s3://` folder (docs/contract.md, "Restore"):
 *
 * 1. reads manifest.json (NOT_ARCHIVED without one) and checks the target holds nothing but
 *    the backup's files (ARGS_INVALID otherwise);
 * 2. files already at the target with the right length and SHA-256 are `kept`; one that
 *    differs stops the restore before anything is written (ARGS_INVALID) unless `force`;
 * 3. streams every other file out of the archive (the retried reader: a broken-off body is
 *    read again from the start) through length and SHA-256 checks into the target, at most
 *    `concurrency` files at once; a file that does not match is VERIFY_FAILED and leaves
 *    nothing at its final name. After a failure no new file starts;
 * 4. a directory then gets its SHA256SUMS; with `import`, GES imports the `s3://` folder and
 *    the job is followed until it ends (IMPORT_FAILED when it fails or runs out of time).
 *
 * Failures of steps 1–2 throw (nothing was written); failures of 3–4 are in the report's `error`.
 */
export async function restoreBackup(deps: RestoreDeps, options: RestoreOptions): Promise<RestoreReport> {
  const { graphId, backupId, target, signal } = options;
  const emit = options.onEvent ?? (() => undefined);
  const log = deps.logger.child({ graphId, backupId });
  if (options.import !== undefined && (target.kind !== 's3' || deps.ges === undefined)) {
    throw new ArchiverError(ErrorCodes.ArgsInvalid, '--import needs an s3://bucket/prefix/ target (GES imports from OBS) and the GES settings');
  }

  const manifest = await loadRestorableManifest(deps, graphId, backupId, signal);
  const writer = writerFor(deps, options);
  await writer.prepare(manifest.files, signal);

  const limit = pLimit(options.concurrency ?? DEFAULT_RESTORE_CONCURRENCY);
  const states = await Promise.all(manifest.files.map((file) => limit(async () => ({ file, found: await writer.existing(file, signal) }))));
  const conflicts = states.flatMap(({ file, found }) => (found.state === 'differs' ? [{ file, why: found.why }] : []));
  if (conflicts.length > 0 && options.force !== true) throw conflictError(writer, conflicts);
  for (const c of conflicts) log.warn({ file: c.file.name, why: c.why }, 'replacing a target file that differs from the archive (--force)');

  const report: RestoreReport = { graphId, backupId, target: targetLabel(target), files: [] };
  const kept = new Set(states.filter((s) => s.found.state === 'match').map((s) => s.file.name));
  const toCopy = manifest.files.filter((f) => !kept.has(f.name));
  emit({ type: 'backup-start', graphId, backupId, files: manifest.files.length, estimatedBytes: toCopy.reduce((n, f) => n + f.bytes, 0) });
  for (const name of kept) {
    const f = manifest.files.find((x) => x.name === name)!;
    emit({ type: 'file-done', graphId, backupId, name, bytes: 0, reused: true });
    log.info({ file: name, bytes: f.bytes }, 'file already at the target with the right SHA-256; kept');
  }

  const failed: NonNullable<RestoreReport['failed']> = [];
  let stop = false;
  const results = await Promise.all(toCopy.map((file) => limit(async (): Promise<ArchivedFile | undefined> => {
    if (stop || signal?.aborted) return undefined;
    try {
      const done = await readObjectStream(deps, deps.config.archive.bucket, file.key, async (body) => {
        await writer.write(file, body, (delta) => emit({ type: 'bytes', delta }), signal);
        return true;
      }, signal);
      if (done === undefined) {
        throw new ArchiverError(ErrorCodes.VerifyFailed, `Archived file s3://${deps.config.archive.bucket}/${file.key} is missing: the archive copy is damaged (re-archive the backup with ges-archiver archive --force)`,
          { details: { key: file.key } });
      }
      emit({ type: 'file-done', graphId, backupId, name: file.name, bytes: file.bytes, reused: false });
      log.info({ file: file.name, bytes: file.bytes }, 'file restored and verified');
      return file;
    } catch (err) {
      const e = toArchiverError(err);
      stop = true;
      failed.push({ name: file.name, code: e.code, message: e.message });
      emit({ type: 'file-failed', graphId, backupId, name: file.name, code: e.code });
      log.error({ file: file.name, err: e }, 'file not restored');
      return undefined;
    }
  })));

  const restored = new Set(results.filter((f): f is ArchivedFile => f !== undefined).map((f) => f.name));
  report.files = manifest.files
    .filter((f) => kept.has(f.name) || restored.has(f.name))
    .map((f): RestoredFile => ({ name: f.name, bytes: f.bytes, sha256: f.sha256, status: kept.has(f.name) ? 'kept' : 'restored' }));
  if (failed.length > 0 || signal?.aborted) {
    if (failed.length > 0) report.failed = failed;
    const first = failed[0];
    report.error = first ? { code: first.code, message: first.message } : errorSummary(toArchiverError(signal?.reason));
    return report;
  }

  try {
    const written = await writer.finish(manifest.files, signal);
    if (written !== undefined) report.sha256sums = written;
  } catch (err) {
    report.error = errorSummary(err);
    return report;
  }

  if (options.import !== undefined && target.kind === 's3' && deps.ges !== undefined) {
    const importPath = importPathOf(target);
    const importGraph = options.import.graphId ?? graphId;
    report.import = { importPath, graphId: importGraph, status: 'not started' };
    try {
      const { jobId } = await deps.ges.importBackup(importGraph, importPath, signal ? { signal } : {});
      report.import = { ...report.import, jobId, status: 'started' };
      emit({ type: 'import-started', importPath, jobId });
      const job = await waitForJob({ ges: deps.ges, logger: log }, { graphId: importGraph, jobId, what: `the import of ${importPath} into graph ${importGraph}` }, {
        timeoutMs: options.import.timeoutMs,
        pollIntervalMs: options.import.pollIntervalMs,
        signal,
        now: deps.now,
        onPoll: (poll) => {
          report.import = { ...report.import!, status: poll.job.status };
          emit({ type: 'import-poll', poll });
        },
      });
      report.import = { ...report.import, status: job.status };
      log.info({ importPath, jobId, importGraph }, 'backup imported into GES');
    } catch (err) {
      const e = toArchiverError(err);
      // A GES refusal of the import request itself is an import failure too (the files are in place).
      const code = e.code === ErrorCodes.Aborted ? e.code : ErrorCodes.ImportFailed;
      report.error = { code, message: code === e.code ? e.message : `GES did not import ${importPath}: ${e.message}` };
      log.error({ err: e, importPath }, 'import failed');
    }
  }
  return report;
}
