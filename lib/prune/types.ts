import type { StorageDeps } from '../catalog/types.js';
import type { ErrorCode } from '../errors.js';
import type { KeepReason } from './plan.js';

/** What `prune` needs: only the bucket (list, read manifests, delete). */
export interface PruneDeps extends StorageDeps {
  now?: (() => number) | undefined;
}

export interface PruneOptions {
  /** Newest archived backups kept per graph, at least 1. */
  keepLast: number;
  /** Also keep every backup younger than this (ms); the same age limit prunes `_runs/` reports. */
  keepWithinMs?: number | undefined;
  /** As given (`90d`), for the report. */
  keepWithin?: string | undefined;
  /** Only this graph's backups (run reports are left alone then: they span graphs). */
  graphId?: string | undefined;
  /** Delete nothing; report the same plan (lock checks included). */
  dryRun?: boolean | undefined;
  signal?: AbortSignal | undefined;
  /** Backups deleted at once (default 4); each deletes up to 8 objects at once. */
  concurrency?: number | undefined;
}

export interface PrunedBackup {
  graphId: string;
  backupId: string;
  /** The files manifest.json lists, and their total size. */
  files: number;
  bytes: number;
  backupTime?: string;
}

export interface KeptBackup {
  graphId: string;
  backupId: string;
  backupTime?: string;
  reasons: KeepReason[];
}

export interface PruneProblem {
  graphId: string;
  backupId: string;
  code: ErrorCode;
  message: string;
  /** For LOCKED: the protected keys. */
  keys?: string[];
}

/** The `--json` document (docs/contract.md, "Retention"), plus what was locked or failed. */
export interface PruneReport {
  dryRun: boolean;
  keepLast: number;
  keepWithin?: string;
  graphId?: string;
  kept: KeptBackup[];
  /** Deleted (with --dry-run: would be deleted). */
  deleted: PrunedBackup[];
  /** Not deleted: an object is under Object Lock retention or a legal hold (nothing of it was deleted). */
  locked: PruneProblem[];
  /** Deletion failed part way (manifest.json is gone, so it is no longer listed; the next prune finishes it). */
  failed: PruneProblem[];
  /** Backups whose deletion an earlier prune started and this one finished. */
  finished: { graphId: string; backupId: string }[];
  /** `_runs/` reports older than `keepWithin` (only with it, and not with --graph). */
  runReports?: { deleted: number; kept: number };
}
