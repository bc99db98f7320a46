import type { S3Client } from '@aws-sdk/client-s3';
import type { Dispatcher } from 'undici';
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../retry.js';
import type { CopyCheckpoint } from './checkpoint.js';

// The copier's public types live apart from the loop so callers and the modules it is built
// from can share them without importing the loop; copier.ts re-exports them.

export interface FileLink {
  url: string;
  /** Epoch ms after which the link is dead (see linkExpiresAt). */
  expiresAt: number;
  sizeEstimateBytes?: number;
}

export interface CopyFileRequest {
  bucket: string;
  key: string;
  fileName: string;
  /** A fresh link from GES; called at start (unless `link` is given) and after every expiry. */
  getLink(signal: AbortSignal): Promise<FileLink>;
  link?: FileLink;
  signal?: AbortSignal;
  /** Bytes received (negative when received bytes are thrown away by a restart or handover). */
  onProgress?(deltaBytes: number): void;
  /** Continue an earlier invocation's upload. */
  checkpoint?: CopyCheckpoint;
  /** Epoch ms; once reached, stop at a part boundary and return a checkpoint. */
  handoverAt?: number;
  /** User metadata for the object (S3 fixes it when the multipart upload is created). */
  metadata?: Record<string, string>;
  /**
   * Awaited right before the object is committed (CompleteMultipartUpload, or the single
   * PutObject), once its length and SHA-256 are final. Throwing makes the copier abort the
   * upload instead of committing, and the copy fails with the thrown error (e.g. ALREADY_ARCHIVED
   * when another run finished the backup meanwhile).
   */
  beforeCommit?(result: { bytes: number; sha256: string }, signal: AbortSignal): Promise<void>;
}

export interface CopyStats {
  linkRefreshes: number;
  resumes: number;
  restarts: number;
  bytesDownloaded: number;
  /** Parts stored: 1 for a single PutObject, 0 for an empty file. */
  parts: number;
  /** True when the file was stored with one PutObject (it fitted in one part, or was empty) instead of a multipart upload. */
  singlePut: boolean;
  durationMs: number;
}

export type CopyFileResult =
  | { status: 'complete'; key: string; bytes: number; sha256: string; stats: CopyStats }
  | { status: 'handover'; checkpoint: CopyCheckpoint; stats: CopyStats };

export interface CopierDeps {
  s3: S3Client;
  logger: Logger;
  retry: RetryPolicy;
  allowedHosts: readonly string[];
  dispatcher?: Dispatcher;
  /** Minimum part size; default 16 MiB, at least 5 MiB (S3's minimum). */
  partSizeBytes?: number;
  /** Parts uploaded at once; default 4. */
  partConcurrency?: number;
  now?: () => number;
  /** A link is refreshed this long before it expires; default 60 s. */
  linkSafetyMarginMs?: number;
  /** Interruptions (broken bodies, refused links) in a row without a part's worth of progress before giving up; default 20. */
  maxStalledCycles?: number;
  /** Restarts from byte 0 (200 to a Range, 412, a changed length) before giving up; default 2. */
  maxRestarts?: number;
}

export interface Copier {
  copyFile(req: CopyFileRequest): Promise<CopyFileResult>;
  abortCheckpoint(cp: CopyCheckpoint): Promise<void>;
}
