import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ARCHIVE_MANIFEST_NAME, backupPrefix, manifestKey } from '../store/keys.js';
import { s3Error } from '../store/s3-objects.js';
import { SHA256SUMS_NAME } from '../store/sha256sums.js';
import type { BackupFolder, StorageDeps } from './types.js';

export interface ScanOptions {
  graphId?: string | undefined;
  backupId?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Keys per ListObjectsV2 page (S3's maximum, 1000, by default; tests use less to page). */
  pageSize?: number | undefined;
}

/**
 * Splits a key under the archive prefix into its backup folder, or undefined when the key
 * is not inside one: the run reports under `_runs/` (no id starts with `_`), and anything
 * that is not `{graphId}/{backupId}/{something}`.
 */
export function backupFolderOf(prefix: string, key: string): { graphId: string; backupId: string; rest: string } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const relative = key.slice(prefix.length);
  const first = relative.indexOf('/');
  const second = first < 0 ? -1 : relative.indexOf('/', first + 1);
  if (first <= 0 || second <= first + 1) return undefined;
  const graphId = relative.slice(0, first);
  const backupId = relative.slice(first + 1, second);
  const rest = relative.slice(second + 1);
  if (graphId.startsWith('_') || rest === '') return undefined;
  return { graphId, backupId, rest };
}

/**
 * Lists every backup folder under the archive prefix (narrowed to one graph, or one
 * backup, when asked), following ListObjectsV2 pagination. Memory: one entry per object
 * in scope (key and size), never object bodies.
 */
export async function scanArchive(deps: StorageDeps, options: ScanOptions = {}): Promise<BackupFolder[]> {
  const { bucket, prefix } = deps.config.archive;
  const listPrefix = options.graphId === undefined
    ? prefix
    : options.backupId === undefined ? `${prefix}${options.graphId}/` : backupPrefix(prefix, options.graphId, options.backupId);
  const folders = new Map<string, BackupFolder>();
  let continuationToken: string | undefined;
  do {
    const token = continuationToken;
    const page = await deps.retry(async () => {
      try {
        return await deps.s3.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: listPrefix, ContinuationToken: token, MaxKeys: options.pageSize }),
          { abortSignal: options.signal },
        );
      } catch (err) {
        throw s3Error('ListObjectsV2', listPrefix, err);
      }
    }, { signal: options.signal });
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined) continue;
      const where = backupFolderOf(prefix, object.Key);
      if (!where) continue;
      if (options.backupId !== undefined && where.backupId !== options.backupId) continue;
      const id = `${where.graphId}/${where.backupId}`;
      let folder = folders.get(id);
      if (!folder) {
        folder = {
          graphId: where.graphId,
          backupId: where.backupId,
          prefix: backupPrefix(prefix, where.graphId, where.backupId),
          manifestKey: manifestKey(prefix, where.graphId, where.backupId),
          archived: false,
          objects: new Map(),
        };
        folders.set(id, folder);
      }
      if (where.rest === ARCHIVE_MANIFEST_NAME) folder.archived = true;
      else if (where.rest === SHA256SUMS_NAME) folder.sha256sums = { key: object.Key, bytes: object.Size ?? 0 };
      else folder.objects.set(object.Key, object.Size ?? 0);
    }
    continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (continuationToken !== undefined);
  return [...folders.values()].sort((a, b) => a.graphId.localeCompare(b.graphId) || a.backupId.localeCompare(b.backupId));
}
