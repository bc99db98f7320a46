import pLimit from 'p-limit';
import type { ArchiveManifest } from '../store/archive-manifest.js';
import { stateBackupPrefix } from '../store/receipts.js';
import { headObject, putJson } from '../store/s3-objects.js';
import { listObjects } from '../store/list-objects.js';
import { readArchiveManifest } from '../catalog/read-manifest.js';
import { scanArchive } from '../catalog/scan.js';
import type { BackupFolder } from '../catalog/types.js';
import { ArchiverError, ErrorCodes, errorSummary, isAbortError, toArchiverError } from '../errors.js';
import { deleteKey } from '../store/fanout-state.js';
import { objectLockOf } from './lock.js';
import { planPrune, type PruneCandidate } from './plan.js';
import type { KeptBackup, PruneDeps, PruneOptions, PruneProblem, PruneReport, PrunedBackup } from './types.js';

/**
 * `prune` (docs/contract.md, "Retention"): per graph, keeps the newest `keepLast` archived
 * backups and every one younger than `keepWithin`, and deletes the others:
 *
 * 1. every object of the backup is checked for S3 Object Lock (retention or legal hold); a
 *    protected backup is reported LOCKED and nothing of it is deleted;
 * 2. a marker `{prefix}_state/{graph}/{backup}/prune.json` records the intent, then
 *    manifest.json goes first (from then on the backup is no longer listed as archived), then
 *    its files, SHA256SUMS and what `_state/` holds for it, the marker last. A deletion that
 *    fails part way is reported; the next prune finds the marker and finishes it;
 * 3. with `keepWithin` (and no `graphId`), run reports under `_runs/` older than it go too.
 *
 * Folders without manifest.json and without a marker (being archived right now, or a failed
 * copy) are never touched. A `dryRun` deletes nothing, writes nothing, and reports the same
 * plan, lock checks included.
 */
const PRUNE_MARKER = 'prune.json';
const RUN_ID_TIME = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/;

interface Candidate extends PruneCandidate {
  folder: BackupFolder;
  manifest: ArchiveManifest | undefined;
}

function markerKey(prefix: string, graphId: string, backupId: string): string {
  return `${stateBackupPrefix(prefix, graphId, backupId)}${PRUNE_MARKER}`;
}

function backupTimeOf(m: ArchiveManifest): number | undefined {
  const t = Date.parse(m.backupTime ?? m.archivedAt);
  return Number.isNaN(t) ? undefined : t;
}

/** DeleteObject; a 403 is LOCKED (what S3 answers for a protected version), anything else S3_FAILED. */
async function deleteForPrune(deps: PruneDeps, key: string, signal?: AbortSignal): Promise<void> {
  try {
    await deleteKey(deps, deps.config.archive.bucket, key, signal);
  } catch (err) {
    if (err instanceof ArchiverError && err.details?.['status'] === 403) {
      throw new ArchiverError(ErrorCodes.Locked,
        `S3 refused to delete ${key} (403): it is under Object Lock retention or a legal hold, or this role may not delete it`,
        { cause: err, details: { key, status: 403 } });
    }
    throw err;
  }
}

/** The keys under a backup's `_state/` (receipts, checkpoints, job list, the prune marker). */
async function stateKeys(deps: PruneDeps, graphId: string, backupId: string, signal?: AbortSignal): Promise<string[]> {
  const { bucket, prefix } = deps.config.archive;
  return (await listObjects(deps, bucket, stateBackupPrefix(prefix, graphId, backupId), signal)).map((o) => o.key);
}

/** Deletes what is left of a backup once manifest.json is gone; the marker last. Throws the first failure. */
async function deleteRest(deps: PruneDeps, folder: BackupFolder, signal?: AbortSignal): Promise<void> {
  const { prefix } = deps.config.archive;
  const limit = pLimit(8);
  const marker = markerKey(prefix, folder.graphId, folder.backupId);
  await Promise.all([...folder.objects.keys()].map((key) => limit(() => deleteForPrune(deps, key, signal))));
  if (folder.sha256sums) await deleteForPrune(deps, folder.sha256sums.key, signal);
  const state = (await stateKeys(deps, folder.graphId, folder.backupId, signal)).filter((k) => k !== marker);
  await Promise.all(state.map((key) => limit(() => deleteForPrune(deps, key, signal))));
  await deleteForPrune(deps, marker, signal);
}

/** Which of the backup's objects Object Lock protects (empty: none). */
async function lockedKeys(deps: PruneDeps, folder: BackupFolder, now: number, signal?: AbortSignal): Promise<{ key: string; why: string }[]> {
  const keys = [folder.manifestKey, ...(folder.sha256sums ? [folder.sha256sums.key] : []), ...folder.objects.keys()];
  const limit = pLimit(8);
  const found = await Promise.all(keys.map((key) => limit(async () => ({ key, why: await objectLockOf(deps, deps.config.archive.bucket, key, now, signal) }))));
  return found.flatMap((f) => (f.why === undefined ? [] : [{ key: f.key, why: f.why }]));
}

function runTime(key: string, lastModified: Date | undefined): number | undefined {
  const id = key.slice(key.lastIndexOf('/') + 1);
  const m = RUN_ID_TIME.exec(id);
  if (m) return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return lastModified?.getTime();
}

async function pruneRunReports(deps: PruneDeps, cutoff: number, dryRun: boolean, signal?: AbortSignal): Promise<{ deleted: number; kept: number }> {
  const { bucket, prefix } = deps.config.archive;
  const reports = await listObjects(deps, bucket, `${prefix}_runs/`, signal);
  const old = reports.filter((r) => {
    const t = runTime(r.key, r.lastModified);
    return t !== undefined && t < cutoff;
  });
  if (!dryRun) {
    const limit = pLimit(8);
    await Promise.all(old.map((r) => limit(() => deleteForPrune(deps, r.key, signal))));
  }
  return { deleted: old.length, kept: reports.length - old.length };
}

function describeProblem(folder: BackupFolder, err: unknown, started: boolean): PruneProblem {
  const { code, message } = errorSummary(err);
  const note = started ? ' manifest.json may already be gone (the backup is then no longer listed as archived); the next prune finishes the deletion.' : '';
  return { graphId: folder.graphId, backupId: folder.backupId, code, message: `${message}${note}` };
}

export async function pruneArchive(deps: PruneDeps, options: PruneOptions): Promise<PruneReport> {
  if (!Number.isInteger(options.keepLast) || options.keepLast < 1) {
    throw new ArchiverError(ErrorCodes.ArgsInvalid, `--keep-last must be a whole number of at least 1 (got ${options.keepLast}): prune never deletes every backup of a graph`);
  }
  const { signal } = options;
  const now = (deps.now ?? Date.now)();
  const { bucket, prefix } = deps.config.archive;
  const dryRun = options.dryRun === true;
  const log = deps.logger.child({ prune: true, dryRun });
  const folders = await scanArchive(deps, { graphId: options.graphId, signal });

  const report: PruneReport = {
    dryRun,
    keepLast: options.keepLast,
    ...(options.keepWithin === undefined ? {} : { keepWithin: options.keepWithin }),
    ...(options.graphId === undefined ? {} : { graphId: options.graphId }),
    kept: [], deleted: [], locked: [], failed: [], finished: [],
  };

  // Deletions an earlier prune started (its marker is there, manifest.json is gone): finish them.
  const unfinished: BackupFolder[] = [];
  for (const folder of folders.filter((f) => !f.archived)) {
    if (await headObject(deps, bucket, markerKey(prefix, folder.graphId, folder.backupId), signal)) unfinished.push(folder);
  }

  const readLimit = pLimit(8);
  const candidates: Candidate[] = await Promise.all(folders.filter((f) => f.archived).map((folder) => readLimit(async () => {
    const read = await readArchiveManifest(deps, folder, signal);
    if (!read.ok) log.warn({ key: folder.manifestKey, problem: read.problem }, 'unusable manifest.json: the backup is kept');
    const manifest = read.ok ? read.manifest : undefined;
    return { graphId: folder.graphId, backupId: folder.backupId, time: manifest ? backupTimeOf(manifest) : undefined, folder, manifest };
  })));
  const plan = planPrune(candidates, { keepLast: options.keepLast, keepWithinMs: options.keepWithinMs, now });
  report.kept = plan.keep.map((k): KeptBackup => ({
    graphId: k.graphId, backupId: k.backupId, reasons: k.reasons,
    ...(k.manifest?.backupTime === undefined ? {} : { backupTime: k.manifest.backupTime }),
  }));

  const limit = pLimit(options.concurrency ?? 4);
  await Promise.all(plan.remove.map((c) => limit(async () => {
    const entry: PrunedBackup = {
      graphId: c.graphId, backupId: c.backupId, files: c.manifest?.fileCount ?? 0, bytes: c.manifest?.totalBytes ?? 0,
      ...(c.manifest?.backupTime === undefined ? {} : { backupTime: c.manifest.backupTime }),
    };
    let started = false;
    try {
      const locked = await lockedKeys(deps, c.folder, now, signal);
      if (locked.length > 0) {
        report.locked.push({
          graphId: c.graphId, backupId: c.backupId, code: ErrorCodes.Locked, keys: locked.map((l) => l.key),
          message: `${locked.length} object${locked.length === 1 ? ' is' : 's are'} protected by S3 Object Lock (${locked[0]!.key}: ${locked[0]!.why}); nothing of this backup was deleted`,
        });
        log.warn({ graphId: c.graphId, backupId: c.backupId, keys: locked.length }, 'backup under Object Lock; not deleted');
        return;
      }
      if (!dryRun) {
        const marker = markerKey(prefix, c.graphId, c.backupId);
        await putJson(deps, bucket, marker, { startedAt: new Date(now).toISOString(), reason: 'prune' }, signal);
        try {
          await deleteForPrune(deps, c.folder.manifestKey, signal);
        } catch (err) {
          // Nothing of the backup was deleted: take the marker back so no later prune finishes it.
          await deleteKey(deps, bucket, marker).catch((e: unknown) => log.warn({ err: e, key: marker }, 'could not remove the prune marker'));
          throw err;
        }
        started = true;
        await deleteRest(deps, c.folder, signal);
        log.info({ graphId: c.graphId, backupId: c.backupId, files: entry.files, bytes: entry.bytes }, 'backup pruned');
      }
      report.deleted.push(entry);
    } catch (err) {
      if (isAbortError(err) || signal?.aborted) throw toArchiverError(err);
      const problem = describeProblem(c.folder, err, started);
      (problem.code === ErrorCodes.Locked && !started ? report.locked : report.failed).push(problem);
      log.error({ graphId: c.graphId, backupId: c.backupId, err: toArchiverError(err) }, 'backup not pruned');
    }
  })));

  for (const folder of unfinished) {
    if (dryRun) {
      report.finished.push({ graphId: folder.graphId, backupId: folder.backupId });
      continue;
    }
    try {
      await deleteRest(deps, folder, signal);
      report.finished.push({ graphId: folder.graphId, backupId: folder.backupId });
    } catch (err) {
      if (isAbortError(err) || signal?.aborted) throw toArchiverError(err);
      report.failed.push(describeProblem(folder, err, true));
    }
  }

  if (options.keepWithinMs !== undefined && options.graphId === undefined) {
    try {
      report.runReports = await pruneRunReports(deps, now - options.keepWithinMs, dryRun, signal);
    } catch (err) {
      if (isAbortError(err) || signal?.aborted) throw toArchiverError(err);
      const { code, message } = errorSummary(err);
      report.failed.push({ graphId: '-', backupId: '-', code, message: `run reports under ${prefix}_runs/: ${message}` });
    }
  }

  const order = (a: { graphId: string; backupId: string }, b: { graphId: string; backupId: string }): number =>
    a.graphId.localeCompare(b.graphId) || a.backupId.localeCompare(b.backupId);
  report.deleted.sort(order);
  report.locked.sort(order);
  report.failed.sort(order);
  return report;
}

/** Exit status of `prune`: 0 when everything planned was deleted, 1 when anything was locked or failed. */
export function pruneExitCode(report: PruneReport): 0 | 1 {
  return report.locked.length > 0 || report.failed.length > 0 ? 1 : 0;
}
