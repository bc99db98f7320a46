import type { S3Client } from '@aws-sdk/client-s3';
import type { StorageConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../retry.js';

/**
 * What `list` and `verify` need: the bucket and nothing of GES. The CLI builds it from
 * `loadStorageConfig`, so an auditor without Huawei credentials can run both.
 */
export interface StorageDeps {
  s3: S3Client;
  config: Pick<StorageConfig, 'archive'>;
  logger: Logger;
  retry: RetryPolicy;
}

/** One `{prefix}{graphId}/{backupId}/` folder found in the bucket, archived or not. */
export interface BackupFolder {
  graphId: string;
  backupId: string;
  /** `{prefix}{graphId}/{backupId}/` */
  prefix: string;
  manifestKey: string;
  /** True when `manifest.json` exists, i.e. the backup is archived (docs/contract.md). */
  archived: boolean;
  /** Every object in the folder except manifest.json and SHA256SUMS: key → size in bytes. */
  objects: Map<string, number>;
  /** The folder's SHA256SUMS (`sha256sum -c` format), when there is one. */
  sha256sums?: { key: string; bytes: number } | undefined;
}

/** One line of `list`: an archived backup, or one whose manifest.json cannot be used. */
export type ArchivedBackupSummary =
  | {
    valid: true;
    graphId: string;
    backupId: string;
    manifestKey: string;
    backupName?: string;
    /** When GES took the backup (ISO 8601 UTC), when the manifest records it. */
    backupTime?: string;
    archivedAt: string;
    fileCount: number;
    totalBytes: number;
    /** The run that archived it, and where that run's report is (`{prefix}_runs/{runId}.json`). */
    runId?: string;
    runReportKey?: string;
    /** The backup's SHA256SUMS (for `sha256sum -c`), when it has one (backups archived before it existed do not). */
    sha256sumsKey?: string;
  }
  | {
    valid: false;
    graphId: string;
    backupId: string;
    manifestKey: string;
    /** Why manifest.json cannot be used: unreadable, not JSON, or not the documented schema. */
    problem: string;
  };
