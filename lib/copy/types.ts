import type { S3Client } from '@aws-sdk/client-s3';
import type { Dispatcher } from 'undici';
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../retry.js';
import type { CopyCheckpoint } from './checkpoint.js';
import type { RateFloorOptions } from './rate-floor.js';

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
  /**
   * When `signal` aborts (Ctrl-C, a deadline), return a checkpoint (status 'handover') instead of
   * aborting the multipart upload, if the copy was expected to take longer than
   * `CopierDeps.resumableAfterMs`: such a copy keeps a serialisable hash (hash-wasm, ~300 MiB/s); a shorter
   * one keeps node:crypto's (~1,500 MiB/s) and is simply done again. A failure still aborts.
   */
  resumable?: boolean;
  /**
   * Called every `CopierDeps.checkpointEveryMs` with the stored prefix as a checkpoint, while the
   * copy has a serialisable hash: saved where the next run looks, it makes a crash resumable too.
   */
  onCheckpoint?: (checkpoint: CopyCheckpoint) => void;
  /** User metadata for the object (S3 fixes it when the multipart upload is created). */
  metadata?: Record<string, string>;
  /**
   * Awaited right before the object is committed (CompleteMultipartUpload, or the single
   * PutObject), once every byte is stored and the SHA-256 is final, and again when the commit
   * (sent with `If-None-Match: *`) finds an object at the key, before that object is replaced.
   * Throwing refuses the commit: the copy fails with that error, leaves no upload and no object
   * of its own, and the object found at the key stays as it is.
   */
  beforeCommit?(result: { bytes: number; sha256: string }, signal: AbortSignal): Promise<void>;
}

/**
 * A byte range of one file into a multipart upload that someone else created and completes (a
 * shard of a range-sharded copy, lib/fanout/shard-worker.ts). The range's parts keep their
 * numbers in the whole file, so uploading a part again replaces it: a redelivered shard is
 * idempotent. No SHA-256 (the whole file's is computed after completion), no completion, and
 * the upload is never aborted here: a failure leaves it to the shard's next delivery.
 */
export interface CopyRangeRequest {
  bucket: string;
  key: string;
  fileName: string;
  /** A fresh link from GES; called at start and after every expiry. */
  getLink(signal: AbortSignal): Promise<FileLink>;
  signal?: AbortSignal;
  /** Epoch ms; once reached, stop at a part boundary and return the stored prefix of the range. */
  handoverAt?: number;
  onProgress?(deltaBytes: number): void;
  uploadId: string;
  partSize: number;
  /** The whole file's length: every answer must agree (else the source changed: SOURCE_CHANGED). */
  totalBytes: number;
  /** The source's strong ETag, sent as If-Match with every range: a 412 is SOURCE_CHANGED. */
  sourceEtag: string;
  /** First byte to copy: a part boundary (the range's start, or where an earlier hop stopped). */
  start: number;
  /** End of the range (exclusive): a part boundary, or `totalBytes`. */
  end: number;
  /** Parts of this range stored by earlier hops (below `start`). */
  parts?: { partNumber: number; etag: string }[];
}

export type CopyRangeResult =
  /** `parts`: every part of the range (earlier hops' included), by part number. */
  | { status: 'complete'; parts: { partNumber: number; etag: string }[]; stats: CopyStats }
  /** Stopped at `offset` (a part boundary): `parts` are the stored parts below it. */
  | { status: 'handover'; offset: number; parts: { partNumber: number; etag: string }[]; stats: CopyStats };

export interface CopyStats {
  linkRefreshes: number;
  resumes: number;
  restarts: number;
  bytesDownloaded: number;
  /** Parts stored: 1 for a single PutObject, 0 for an empty file. */
  parts: number;
  /** True when the file was stored with one PutObject (it fitted in one part, or was empty) instead of a multipart upload. */
  singlePut: boolean;
  /** Most download connections used at once for this file (1 when the source or the file size allowed no more). */
  streams: number;
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
  /**
   * Minimum part size; default DEFAULT_PART_SIZE (ARCHIVE_PART_SIZE_MB's), at least 5 MiB (S3's
   * minimum). A file's parts grow with it (lib/copy/part-size.ts `filePartSize`): 1 GiB gets
   * 32 MiB parts with an 8 MiB minimum.
   */
  partSizeBytes?: number;
  /**
   * THE MEMORY BOUND of one file copy, stated once here (README "Memory bound" and
   * `copierMemoryBound` point at it). Part buffers are the memory: a part holds one buffer of
   * partSize bytes from the claim of its first segment until it is stored and hashed. At most
   *
   *   slots = min(partConcurrency + streams running, max(2, floor(budget / partSize)))
   *
   * part buffers exist at once, where budget is this option, by default
   * max(128 MiB, (streams + partConcurrency) × partSizeBytes). With the defaults (8 MiB
   * minimum, 4 upload slots, 8 streams): 8 MiB parts (files up to 256 MiB) → at most 12 buffers
   * = 96 MiB; 32 MiB parts (1 GiB and more) → 4 buffers (1 filling, 3 uploading) = 128 MiB,
   * the streams then sharing the filling part segment by segment. 128 MiB, not more: the CLI's
   * peak RSS on a 1 GiB file measured ~279 MiB with it (~311 MiB with 160 MiB, over the 300 MiB
   * target of the README's Benchmark). Two slots are the floor (one part filling while the one
   * before is stored): parts over half the budget (64 MiB by default: the 10,000-part rule
   * gives those to files over 625 GiB) take 2 × partSize.
   * Undici's socket buffers and the chunk being copied (tens of KiB per stream) come on top.
   */
  partBufferBudgetBytes?: number;
  /** Makes a block for part buffers, of the part size (tests; default: the process's part memory, lib/copy/part-memory.ts, over SharedArrayBuffers the Content-MD5 worker reads in place). */
  allocatePartBuffer?: (size: number) => Buffer;
  /** A `resumable` copy keeps a serialisable hash when it looks longer than this at its first part (default DEFAULT_RESUMABLE_AFTER_MS). */
  resumableAfterMs?: number;
  /** How often `onCheckpoint` is called (default DEFAULT_CHECKPOINT_EVERY_MS). */
  checkpointEveryMs?: number;
  /** Parts uploaded at once; default DEFAULT_PART_CONCURRENCY (ARCHIVE_PART_CONCURRENCY's). */
  partConcurrency?: number;
  /**
   * Download connections per file, each fetching segments of parts (SEGMENT_BYTES at most) as
   * byte ranges of the same link; default 1. A file of one part, or a source without Range
   * support or a safe validator, gets one.
   */
  streams?: number;
  /** A response slower than this over a whole window is dropped and resumed; default 64 KiB/s over 60 s. */
  rateFloor?: RateFloorOptions;
  /** After a handover is due, how long part uploads already in flight may take to land; default 30 s. */
  handoverDrainMs?: number;
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
  /** Copies a byte range into an existing multipart upload (a shard): the same download, resume and link rules as copyFile. */
  copyRange(req: CopyRangeRequest): Promise<CopyRangeResult>;
  abortCheckpoint(cp: CopyCheckpoint): Promise<void>;
}
