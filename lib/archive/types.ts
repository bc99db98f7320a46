import type { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config.js';
import type { Copier } from '../copy/copier.js';
import type { GesBackup } from '../ges/types.js';
import type { GesClient } from '../ges/client.js';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../retry.js';

/** What the orchestrator needs; the composition root (CLI, Lambda) builds it. */
export interface ArchiveDeps {
  config: Pick<Config, 'archive' | 'concurrency' | 'download'> & { fanout?: Partial<Config['fanout']> };
  s3: S3Client;
  ges: GesClient;
  copier: Copier;
  logger: Logger;
  retry: RetryPolicy;
  now?: () => number;
}

/**
 * `queued`: the scheduled run fanned the backup's files out to the copy queue (not a failure).
 * `cancelled`: the run was interrupted (Ctrl-C, SIGTERM) before the backup was done; what it
 * stored is kept for the next run (receipts, checkpoints of long copies).
 */
export type BackupStatus = 'archived' | 'skipped' | 'failed' | 'planned' | 'queued' | 'cancelled';

/** One line of the run report (docs/contract.md, `--json`). */
export interface BackupReport {
  graphId: string;
  backupId: string;
  status: BackupStatus;
  files: number;
  bytes: number;
  /** `planned` (a dry run): each file GES lists, with its size estimate (null when GES gives none). */
  fileList?: { name: string; bytes: number | null }[];
  backupName?: string;
  durationMs?: number;
  manifestKey?: string;
  error?: { code: ErrorCode; message: string };
  /** Why a backup was `skipped`: ALREADY_ARCHIVED (manifest.json exists) or FANOUT_IN_PROGRESS. */
  reason?: { code: ErrorCode; message: string };
}

export interface RunReport {
  runId: string;
  trigger: string;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** A graph's own report when the run was planned per graph (`{prefix}_runs/{runId}.graph.{graphId}.json`). */
  graphId?: string;
  /** A run planned per graph: how many planning messages it queued (the graphs' reports follow). */
  graphsPlanned?: number;
  backups: BackupReport[];
  /** Per graph, its newest archived backup as the run left it (NewestBackupAgeHours comes from this). */
  newestArchived?: { graphId: string; backupId: string; backupTime: string }[];
  /** Where the report was stored (`{prefix}_runs/{runId}.json`), when it was. */
  reportKey?: string;
  totals: { archived: number; skipped: number; failed: number; planned: number; queued: number; cancelled: number; files: number; bytes: number };
}

/** A backup chosen for the run. `backup` is GES's list entry when the run listed the graph. */
export interface BackupTarget {
  graphId: string;
  backupId: string;
  backup?: GesBackup;
}

export type ArchiveEvent =
  | { type: 'plan'; targets: number; skipped: number; failed: number }
  | { type: 'backup-start'; graphId: string; backupId: string; files: number; estimatedBytes: number }
  | { type: 'bytes'; delta: number }
  | { type: 'file-done'; graphId: string; backupId: string; name: string; bytes: number; reused: boolean }
  | { type: 'file-failed'; graphId: string; backupId: string; name: string; code: ErrorCode }
  | { type: 'backup-done'; report: BackupReport };

export interface RunOptions {
  dryRun?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: ArchiveEvent) => void;
  /** What started the run: 'cli', 'schedule', 'manual'... (recorded in the run report). */
  trigger?: string;
  runId?: string;
  /** Archive again even when manifest.json exists; the new manifest.json is still written last. */
  force?: boolean;
}
