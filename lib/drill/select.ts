import { ARCHIVE_MANIFEST_NAME } from '../store/keys.js';
import { listObjects } from '../store/s3-objects.js';
import { SHA256SUMS_NAME } from '../store/sha256sums.js';
import { backupFolderOf } from '../catalog/scan.js';
import type { StorageDeps } from '../catalog/types.js';

/** One archived backup the listing found: when it was completed and how many bytes its files hold. */
export interface DrillCandidate {
  graphId: string;
  backupId: string;
  /** manifest.json's LastModified: it is written last, once every file is stored (docs/contract.md). */
  completedAt: string;
  /** The bytes of the objects in the folder (manifest.json and SHA256SUMS left out). */
  bytes: number;
}

export interface DrillSelection {
  /** Newest first; their charges add up to at most the budget (but see `overBudget`). */
  chosen: DrillCandidate[];
  /** Archived backups found (every folder with a manifest.json). */
  archived: number;
  /** What the chosen backups cost against the budget (their bytes × the sample share). */
  chargedBytes: number;
  /** True when the newest backup alone costs more than the budget: it is taken all the same. */
  overBudget: boolean;
}

export interface SelectOptions {
  /** Bytes the drill may read (DRILL_BYTE_BUDGET). */
  byteBudget: number;
  /** Share of each backup's files hashed, 0 < p <= 100: a backup costs that share of its bytes. */
  samplePercent: number;
  signal?: AbortSignal | undefined;
}

/** What reading a backup costs against the budget: the sampled share of its bytes. */
export function drillCharge(bytes: number, samplePercent: number): number {
  return Math.ceil((bytes * Math.min(100, samplePercent)) / 100);
}

/**
 * The archived backups, learned from one paged listing of the archive prefix (keys, sizes and
 * dates; no object is read): a folder is archived when it holds manifest.json, and its
 * completion time is that object's LastModified. Memory: one entry per backup folder.
 */
export async function listDrillCandidates(deps: Pick<StorageDeps, 's3' | 'retry' | 'config'>, signal?: AbortSignal): Promise<DrillCandidate[]> {
  const { bucket, prefix } = deps.config.archive;
  const folders = new Map<string, { graphId: string; backupId: string; bytes: number; completedAt?: string }>();
  for await (const object of listObjects(deps, bucket, prefix, signal)) {
    const where = backupFolderOf(prefix, object.key);
    if (!where) continue;
    const id = `${where.graphId}/${where.backupId}`;
    const folder = folders.get(id) ?? { graphId: where.graphId, backupId: where.backupId, bytes: 0 };
    folders.set(id, folder);
    if (where.rest === ARCHIVE_MANIFEST_NAME) folder.completedAt = (object.lastModified ?? new Date(0)).toISOString();
    else if (where.rest !== SHA256SUMS_NAME) folder.bytes += object.bytes;
  }
  const candidates: DrillCandidate[] = [];
  for (const f of folders.values()) {
    if (f.completedAt !== undefined) candidates.push({ graphId: f.graphId, backupId: f.backupId, completedAt: f.completedAt, bytes: f.bytes });
  }
  return candidates;
}

/**
 * Newest first (completion time, then graph and backup id so that equal times order the same
 * way every time), backups are taken while their charges fit in the budget; the first one that
 * does not fit ends the choice, so an older small backup never displaces a newer large one. The
 * newest backup is always taken, even when it alone exceeds the budget: a drill that reads
 * nothing proves nothing (`overBudget` says so).
 */
export function chooseDrillBackups(candidates: readonly DrillCandidate[], options: Pick<SelectOptions, 'byteBudget' | 'samplePercent'>): DrillSelection {
  const newestFirst = [...candidates].sort((a, b) => b.completedAt.localeCompare(a.completedAt)
    || a.graphId.localeCompare(b.graphId) || a.backupId.localeCompare(b.backupId));
  const chosen: DrillCandidate[] = [];
  let charged = 0;
  for (const c of newestFirst) {
    const charge = drillCharge(c.bytes, options.samplePercent);
    if (chosen.length > 0 && charged + charge > options.byteBudget) break;
    chosen.push(c);
    charged += charge;
  }
  return { chosen, archived: candidates.length, chargedBytes: charged, overBudget: charged > options.byteBudget };
}

/** listDrillCandidates, then chooseDrillBackups. */
export async function selectDrillBackups(deps: Pick<StorageDeps, 's3' | 'retry' | 'config'>, options: SelectOptions): Promise<DrillSelection> {
  return chooseDrillBackups(await listDrillCandidates(deps, options.signal), options);
}
