import pLimit from 'p-limit';
import { toArchiverError } from '../errors.js';
import type { Logger } from '../log.js';
import { buildArchiveManifest, type ArchivedFile, type ArchiveManifest } from '../store/archive-manifest.js';
import { clearBackupState } from '../store/backup-state.js';
import { manifestKey } from '../store/keys.js';
import { listReceiptKeys } from '../store/receipts.js';
import { putJson } from '../store/s3-objects.js';
import { writeSha256Sums } from '../store/sha256sums.js';
import { fileStateKeys, storedArchivedFile, type FileStepDeps } from './file-step.js';

/**
 * The end of a backup, the one both ways of archiving take (the inline run and the fan-out's
 * finalize): every file stored with its receipt → manifest.json (SHA256SUMS first, manifest.json
 * last, the backup's "archived" mark) → the backup's working state under `_state/` goes.
 */

type Deps = Pick<FileStepDeps, 's3' | 'retry' | 'config' | 'now'>;

/** What manifest.json says about the backup besides its files. */
export type BackupManifestSource = Omit<Parameters<typeof buildArchiveManifest>[0], 'archivedAt' | 'files'>;

/** Receipts read at once while checking that every file is stored. */
const RECEIPT_READS = 8;

/**
 * Every named file of the backup, when each is stored (its receipt, and its object with the
 * receipt's length); undefined when any is not (yet). The receipts are listed once first: a
 * backup with a file missing costs one listing, not a read per file.
 */
export async function storedFiles(deps: Deps, target: { graphId: string; backupId: string }, names: readonly string[], signal?: AbortSignal): Promise<ArchivedFile[] | undefined> {
  const { bucket, prefix } = deps.config.archive;
  const present = await listReceiptKeys(deps, bucket, prefix, target.graphId, target.backupId, signal);
  if (names.some((fileName) => !present.has(fileStateKeys(prefix, { ...target, fileName }).receiptKey))) return undefined;
  const limit = pLimit(RECEIPT_READS);
  const files = await Promise.all(names.map((fileName) => limit(() => storedArchivedFile(deps, { ...target, fileName }, signal))));
  return files.every((f): f is ArchivedFile => f !== undefined) ? files : undefined;
}

/** How manifest.json is written: 'written', or why not (the fan-out's conditional write; finalize.ts). */
export type ManifestWrite<O extends string> = (key: string, manifest: ArchiveManifest) => Promise<O | 'written'>;

export interface CompleteBackupResult<O extends string> {
  outcome: O | 'written';
  manifestKey: string;
  manifest: ArchiveManifest;
}

/**
 * Writes the backup's SHA256SUMS, then its manifest.json (with `write`; default a plain PUT),
 * and once it is written removes the backup's working state. A writer that then loses a race
 * (the fan-out's) wrote the same SHA256SUMS: the same receipts, the same digests.
 */
export async function completeBackup<O extends string = never>(
  deps: Deps, source: BackupManifestSource, files: ArchivedFile[],
  options: { log: Logger; signal?: AbortSignal | undefined; write?: ManifestWrite<O> },
): Promise<CompleteBackupResult<O>> {
  const { bucket, prefix } = deps.config.archive;
  const { log, signal } = options;
  const now = deps.now ?? Date.now;
  const manifest = buildArchiveManifest({ ...source, archivedAt: new Date(now()), files });
  const mKey = manifestKey(prefix, source.graphId, source.backupId);
  await writeSha256Sums(deps, bucket, prefix, manifest, signal);
  const outcome = options.write ? await options.write(mKey, manifest) : await putJson(deps, bucket, mKey, manifest, signal).then(() => 'written' as const);
  if (outcome === 'written') {
    await removeBackupState(deps, source, log, signal);
    log.info({ files: manifest.fileCount, bytes: manifest.totalBytes, ...(manifest.runId === undefined ? {} : { runId: manifest.runId }) }, 'backup archived');
  }
  return { outcome, manifestKey: mKey, manifest };
}

/**
 * Once a backup is archived, its working state goes: receipts, a fan-out's job.json and lock,
 * checkpoints with the uploads they name. Best effort: a leftover is harmless.
 */
export async function removeBackupState(deps: Deps, target: { graphId: string; backupId: string }, log: Logger, signal?: AbortSignal): Promise<void> {
  const { bucket, prefix } = deps.config.archive;
  await clearBackupState(deps, bucket, prefix, target, { signal })
    .catch((err: unknown) => log.warn({ err: toArchiverError(err) }, 'could not remove the backup\'s working state under _state/; it is harmless, and `ges-archiver cleanup` removes it'));
}
