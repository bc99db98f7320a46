import type { S3Client } from '@aws-sdk/client-s3';
import type { ArchivedFile } from '../store/archive-manifest.js';
import type { ArchiveEvent } from '../archive/types.js';
import type { StorageDeps } from '../catalog/types.js';
import type { ErrorCode } from '../errors.js';
import type { GesImportApi } from '../ges/client.js';
import type { JobPoll } from '../ges/jobs.js';

/**
 * What `restore` needs: the archive (read only) and, for an `s3://` target, the target's
 * client; for `--import`, the GES client. The composition root (cli/restore.ts) builds it.
 */
export interface RestoreDeps extends StorageDeps {
  /** The store an `s3://` target is written to (RESTORE_S3_*); default: the archive's `s3`. */
  targetS3?: S3Client | undefined;
  /** Needed only with `import`. */
  ges?: Pick<GesImportApi, 'importBackup' | 'getJobStatus'> | undefined;
  now?: (() => number) | undefined;
}

/** `--to DIR` or `--to s3://bucket/prefix/` (the prefix ends with '/' unless empty). */
export type RestoreTarget =
  | { kind: 'dir'; dir: string }
  | { kind: 's3'; bucket: string; prefix: string };

export interface RestoreImportOptions {
  /** The graph GES imports into; default the archived backup's graph. */
  graphId?: string | undefined;
  /** Give up waiting for the import job after this long (ms). */
  timeoutMs: number;
  /** Time between two job-status requests (ms). */
  pollIntervalMs: number;
}

export interface RestoreOptions {
  graphId: string;
  backupId: string;
  target: RestoreTarget;
  /** Replace target files that differ from the archive (default: refuse, nothing is written). */
  force?: boolean | undefined;
  /** Import into GES once every file is stored (an `s3://` target only). */
  import?: RestoreImportOptions | undefined;
  /** Files restored at once; default 4. */
  concurrency?: number | undefined;
  /** `s3://` targets: minimum multipart part size (default 8 MiB, grown for the 10,000-part limit). */
  partSizeBytes?: number | undefined;
  /** `s3://` targets: parts of one file uploaded at once (default 4). */
  partConcurrency?: number | undefined;
  signal?: AbortSignal | undefined;
  onEvent?: ((event: RestoreEvent) => void) | undefined;
}

export type RestoreEvent =
  | Extract<ArchiveEvent, { type: 'backup-start' | 'bytes' | 'file-done' | 'file-failed' }>
  | { type: 'import-started'; importPath: string; jobId: string }
  | { type: 'import-poll'; poll: JobPoll };

export interface RestoredFile {
  name: string;
  bytes: number;
  sha256: string;
  /** `restored`: copied and verified now; `kept`: already at the target with the right length and SHA-256. */
  status: 'restored' | 'kept';
}

/** The `--json` document (docs/contract.md, "Restore"); `error` and `failed` only when something failed. */
export interface RestoreReport {
  graphId: string;
  backupId: string;
  /** The directory (absolute) or `s3://bucket/prefix/`. */
  target: string;
  files: RestoredFile[];
  /** Where the SHA256SUMS of a directory target was written. */
  sha256sums?: string;
  import?: { importPath: string; jobId?: string; status: string; graphId: string };
  failed?: { name: string; code: ErrorCode; message: string }[];
  error?: { code: ErrorCode; message: string };
}

/**
 * One kind of target. `write` must publish the file at its final name only once the bytes
 * that went through `verify` matched the manifest (VERIFY_FAILED otherwise, and nothing at the
 * final name); a failed write leaves nothing behind.
 */
export interface TargetWriter {
  /** For messages and the report: the absolute directory or `s3://bucket/prefix/`. */
  readonly label: string;
  /** Creates the target if needed and refuses one holding anything but these files (ARGS_INVALID). */
  prepare(files: readonly ArchivedFile[], signal?: AbortSignal): Promise<void>;
  /** `match`: already there with the right length and SHA-256; `absent`; otherwise why it differs. */
  existing(file: ArchivedFile, signal?: AbortSignal): Promise<{ state: 'match' } | { state: 'absent' } | { state: 'differs'; why: string }>;
  /** Streams `body` to the file's final name through `verify` (see lib/restore/verifying-stream.ts). */
  write(file: ArchivedFile, body: AsyncIterable<Uint8Array>, onBytes: (delta: number) => void, signal?: AbortSignal): Promise<void>;
  /** After every file is in place (a directory gets its SHA256SUMS); returns what it wrote, if anything. */
  finish(files: readonly ArchivedFile[], signal?: AbortSignal): Promise<string | undefined>;
}
