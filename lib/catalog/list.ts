import pLimit from 'p-limit';
import { runReportKey } from '../store/keys.js';
import { readArchiveManifest } from './read-manifest.js';
import { scanArchive } from './scan.js';
import type { ArchivedBackupSummary, StorageDeps } from './types.js';

export interface ListOptions {
  graphId?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Manifests read at once (default 8). */
  concurrency?: number | undefined;
  /** Keys per ListObjectsV2 page (default S3's 1000). */
  pageSize?: number | undefined;
}

/**
 * The archived backups in the bucket: every `{prefix}{graphId}/{backupId}/` folder that has
 * a manifest.json, read and validated. Folders without one (not archived, or still being
 * archived) and the `_runs/` reports are not backups and are left out. An unusable
 * manifest.json appears as `valid: false` with the reason, never as an exception.
 * Sorted by graph, then backup time (or archive time), then backup id.
 */
export async function listArchivedBackups(deps: StorageDeps, options: ListOptions = {}): Promise<ArchivedBackupSummary[]> {
  const folders = (await scanArchive(deps, options)).filter((f) => f.archived);
  const limit = pLimit(options.concurrency ?? 8);
  const summaries = await Promise.all(folders.map((folder) => limit(async (): Promise<ArchivedBackupSummary> => {
    const base = { graphId: folder.graphId, backupId: folder.backupId, manifestKey: folder.manifestKey };
    const read = await readArchiveManifest(deps, folder, options.signal);
    if (!read.ok) {
      deps.logger.warn({ key: folder.manifestKey, problem: read.problem }, 'unusable manifest.json');
      return { valid: false, ...base, problem: read.problem };
    }
    const m = read.manifest;
    return {
      valid: true,
      ...base,
      ...(m.backupName === undefined ? {} : { backupName: m.backupName }),
      ...(m.backupTime === undefined ? {} : { backupTime: m.backupTime }),
      archivedAt: m.archivedAt,
      fileCount: m.fileCount,
      totalBytes: m.totalBytes,
      ...(m.runId === undefined ? {} : { runId: m.runId, runReportKey: runReportKey(deps.config.archive.prefix, m.runId) }),
      ...(folder.sha256sums === undefined ? {} : { sha256sumsKey: folder.sha256sums.key }),
    };
  })));
  const when = (s: ArchivedBackupSummary): string => (s.valid ? s.backupTime ?? s.archivedAt : '');
  return summaries.sort((a, b) => a.graphId.localeCompare(b.graphId) || when(a).localeCompare(when(b)) || a.backupId.localeCompare(b.backupId));
}
