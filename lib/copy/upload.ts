import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  HeadObjectCommand, ListPartsCommand, PutObjectCommand, UploadPartCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { ArchiverError, ErrorCodes, toArchiverError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../retry.js';
import { contentMd5 } from './hasher.js';
import { commitObject, type CommitMark, type CommitTarget } from './commit.js';
import { contentMd5Off } from './md5-worker.js';
import { toS3Error } from '../store/s3-errors.js';

/**
 * The S3 side of one file copy: a multipart upload to the final key (parts uploaded
 * `concurrency` at a time, each with Content-MD5) or, for a file that fits in one part, one
 * PutObject. Whatever happens, `cleanup` leaves nothing half-made at the key: it waits for
 * in-flight parts, then aborts the upload or deletes an object that may have landed unverified.
 *
 * Parts are queued by the copy loop, which decides the part size and keeps the hash; a part's
 * buffer stays referenced only until its upload settles, which is what the memory bound counts.
 */

const CLEANUP_TIMEOUT_MS = 60_000;

export interface UploadTarget {
  s3: S3Client;
  retry: RetryPolicy;
  log: Logger;
  bucket: string;
  key: string;
}

export interface UploadOptions extends UploadTarget {
  /** User metadata; S3 fixes it when the multipart upload is created. */
  metadata: Record<string, string> | undefined;
  /** Parts uploaded at once. */
  concurrency: number;
  /** The copy's signal: aborting it stops in-flight requests. Cleanup does not use it. */
  signal: AbortSignal;
  /** Told of the first part upload that failed (after its retries), so the copy can stop at once. */
  onPartError?: (err: Error) => void;
}

export class UploadSession {
  private readonly parts = new Map<number, string>();
  private readonly inflight = new Set<Promise<void>>();
  private uploadError: Error | undefined;
  private completed = false;
  /** The version our Complete or PutObject created, on a versioned bucket: the only one cleanup may delete. */
  private createdVersion: string | undefined;
  /** A PutObject was sent and did not end in a definite refusal: an object may exist at the key. */
  private putMayHaveLanded = false;
  /** Single-PUT mode: the whole (hashed) body, waiting for putSingleObject(). */
  private single: Buffer | undefined;

  constructor(private readonly o: UploadOptions) {}

  /** Parts stored so far (their uploads succeeded). */
  get partsStored(): number {
    return this.parts.size;
  }

  get singleBody(): Buffer | undefined {
    return this.single;
  }

  /** Sorted by part number, as CompleteMultipartUpload and a checkpoint need them; only parts below `before` when given. */
  partList(before = Number.POSITIVE_INFINITY): { partNumber: number; etag: string }[] {
    return [...this.parts].filter(([n]) => n < before).sort(([a], [b]) => a - b).map(([partNumber, etag]) => ({ partNumber, etag }));
  }

  restoreParts(parts: readonly { partNumber: number; etag: string }[]): void {
    for (const p of parts) this.parts.set(p.partNumber, p.etag);
  }

  /** Forgets parts, the single body and a part failure after a restart; call after settle() and abort(). */
  reset(): void {
    this.parts.clear();
    this.single = undefined;
    this.uploadError = undefined;
  }

  /** Waits for every part upload in flight to end, successful or not; never throws. */
  async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  async createMultipart(): Promise<string> {
    const out = await this.send('CreateMultipartUpload', (abortSignal) => this.o.s3.send(new CreateMultipartUploadCommand({
      Bucket: this.o.bucket, Key: this.o.key, ContentType: 'application/octet-stream', Metadata: this.o.metadata,
    }), { abortSignal }));
    if (!out.UploadId) throw new ArchiverError(ErrorCodes.S3Failed, 'S3 CreateMultipartUpload returned no UploadId');
    return out.UploadId;
  }

  /** The only part of a single-PUT file: kept (it is the memory bound's "one filling") until putSingleObject(). */
  keepSingleBody(body: Buffer): void {
    this.single = body;
  }

  /**
   * Starts a part's upload once an upload slot is free (waiting here pauses reading from that
   * socket); `onStored` runs when S3 has it. Safe to call from several streams at once: the slot
   * check and the start happen in one synchronous step.
   */
  async queuePart(uploadId: string, partNumber: number, body: Buffer, onStored?: () => void): Promise<void> {
    while (this.inflight.size >= this.o.concurrency) await Promise.race(this.inflight);
    this.throwUploadError();
    const task = this.uploadPart(uploadId, partNumber, body).then(
      (etag) => {
        this.parts.set(partNumber, etag);
        onStored?.();
      },
      (err: unknown) => {
        const first = this.uploadError === undefined;
        this.uploadError ??= err instanceof Error ? err : toArchiverError(err, ErrorCodes.S3Failed);
        if (first) this.o.onPartError?.(this.uploadError);
      },
    );
    const tracked: Promise<void> = task.finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }

  private async uploadPart(uploadId: string, partNumber: number, body: Buffer): Promise<string> {
    const md5 = await contentMd5Off(body);
    const signal = this.o.signal;
    return this.o.retry(async () => {
      try {
        const out = await this.o.s3.send(unsignedPayload(new UploadPartCommand({
          Bucket: this.o.bucket, Key: this.o.key, UploadId: uploadId, PartNumber: partNumber,
          Body: body, ContentLength: body.length, ContentMD5: md5,
        })), { abortSignal: signal });
        if (!out.ETag) throw new ArchiverError(ErrorCodes.S3Failed, 'S3 UploadPart returned no ETag', { details: { partNumber } });
        return out.ETag;
      } catch (err) {
        throw toS3Error(err, 'UploadPart', { partNumber });
      }
    }, { signal, onRetry: (e) => this.o.log.warn({ err: e.error, partNumber, attempt: e.attempt }, 'part upload failed; retrying') });
  }

  private throwUploadError(): void {
    if (this.uploadError !== undefined) throw this.uploadError;
  }

  /** Waits for every queued part; throws the first part failure. */
  async drain(): Promise<void> {
    await this.settle();
    this.throwUploadError();
  }

  /**
   * Completes the upload at the key without replacing an object a finished manifest.json
   * vouches for (see commit.ts): `recheck` is the copy's beforeCommit, run again when the key
   * turns out to hold an object.
   */
  async complete(uploadId: string, recheck: () => Promise<void>): Promise<void> {
    const Parts = this.partList().map(({ partNumber, etag }) => ({ PartNumber: partNumber, ETag: etag }));
    const mark: CommitMark = { mayHaveLanded: false };
    this.createdVersion = await commitObject(this.commitTarget(), {
      operation: 'CompleteMultipartUpload',
      recheck,
      send: async (condition, abortSignal) => {
        try {
          const out = await this.o.s3.send(new CompleteMultipartUploadCommand({
            Bucket: this.o.bucket, Key: this.o.key, UploadId: uploadId, MultipartUpload: { Parts }, ...condition,
          }), { abortSignal });
          return out.VersionId;
        } catch (err) {
          // A retried Complete whose earlier try went through: the upload is gone, the object is there (verify checks it).
          if (mark.mayHaveLanded && (err as { name?: string }).name === 'NoSuchUpload') return undefined;
          throw err;
        }
      },
    }, mark);
    this.completed = true;
  }

  async verify(totalBytes: number): Promise<void> {
    const head = await this.send('HeadObject', (abortSignal) => this.o.s3.send(
      new HeadObjectCommand({ Bucket: this.o.bucket, Key: this.o.key }), { abortSignal }));
    if (head.ContentLength !== totalBytes) {
      throw new ArchiverError(ErrorCodes.VerifyFailed, `Stored object is ${head.ContentLength} bytes, expected ${totalBytes}`, {
        details: { stored: head.ContentLength, expected: totalBytes },
      });
    }
  }

  /**
   * Stores the kept single body (empty if none) with one PutObject. An empty file's digest goes in
   * its metadata: it is known before the PUT. Content-MD5 and ContentLength make the store verify
   * the bytes and the PUT is atomic, so no HeadObject is needed. `recheck` as for complete().
   */
  async putSingleObject(sha256: string, recheck: () => Promise<void>): Promise<void> {
    const body = this.single ?? Buffer.alloc(0);
    await this.putObject(body, body.length === 0 ? { ...this.o.metadata, sha256 } : this.o.metadata, recheck);
    this.single = undefined;
  }

  private async putObject(body: Buffer, metadata: Record<string, string> | undefined, recheck: () => Promise<void>): Promise<void> {
    const md5 = contentMd5(body);
    const mark: CommitMark = { mayHaveLanded: false };
    try {
      this.createdVersion = await commitObject(this.commitTarget(), {
        operation: 'PutObject',
        recheck,
        send: async (condition, abortSignal) => {
          const out = await this.o.s3.send(unsignedPayload(new PutObjectCommand({
            Bucket: this.o.bucket, Key: this.o.key, Body: body, ContentLength: body.length, ContentMD5: md5,
            ContentType: 'application/octet-stream', Metadata: metadata, ...condition,
          })), { abortSignal });
          return out.VersionId;
        },
      }, mark);
    } catch (err) {
      // A 4xx is a definite refusal (BadDigest, 412 among them); anything else may have stored the object.
      this.putMayHaveLanded = mark.mayHaveLanded;
      throw err;
    }
    this.completed = true;
  }

  private commitTarget(): CommitTarget {
    return { s3: this.o.s3, retry: this.o.retry, log: this.o.log, bucket: this.o.bucket, key: this.o.key, signal: this.o.signal };
  }

  async abort(uploadId: string | undefined): Promise<void> {
    if (uploadId === undefined) return;
    await abortMultipart(this.o, uploadId);
  }

  /** After a failure (the copy's signal already aborted): let in-flight parts settle, then remove the upload or the unverified object. */
  async cleanup(uploadId: string | undefined, cause: unknown): Promise<void> {
    await this.settle();
    try {
      if (this.completed || this.putMayHaveLanded) {
        // On a versioned bucket, only the version this copy created: a version another run
        // stored at the same key (under a finished manifest.json) stays as it is.
        await deleteObject(this.o, this.createdVersion);
      } else {
        await this.abort(uploadId);
      }
    } catch (cleanupErr) {
      this.o.log.error({ err: cleanupErr, cause }, 'cleanup after a failed copy failed; an upload or object may be left behind');
    }
  }

  private async send<T>(operation: string, send: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = this.o.signal;
    return this.o.retry(async () => {
      try {
        return await send(signal);
      } catch (err) {
        throw toS3Error(err, operation);
      }
    }, { signal });
  }
}

/**
 * Signs a body-carrying request with `x-amz-content-sha256: UNSIGNED-PAYLOAD` instead of the
 * SHA-256 of the body. The SDK would otherwise hash every part once more just to sign it (a
 * third pass over every byte, next to the file's SHA-256 and the part's MD5); the bytes are
 * protected by Content-MD5, which the store verifies, and TLS on the way.
 */
function unsignedPayload<C extends UploadPartCommand | PutObjectCommand>(command: C): C {
  (command.middlewareStack as unknown as BuildStack).add((next) => async (args) => {
    if (args.request.headers) args.request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    return next(args);
  }, { step: 'build', name: 'gesArchiverUnsignedPayload' });
  return command;
}

/** The one middleware-stack signature used above (the SDK's own types are a union per step). */
interface BuildStack {
  add(
    middleware: (next: (args: BuildArgs) => Promise<unknown>) => (args: BuildArgs) => Promise<unknown>,
    options: { step: 'build'; name: string },
  ): void;
}
interface BuildArgs {
  request: { headers?: Record<string, string> };
}

function cleanupSignal(): AbortSignal {
  return AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
}

/** Aborts an upload (with its own time budget: the caller's signal may be the reason we are here) and checks it is gone. */
export async function abortMultipart(t: UploadTarget, uploadId: string): Promise<void> {
  const signal = cleanupSignal();
  // Twice at most: a part that landed while the first abort ran can leave the upload alive.
  for (let round = 0; round < 2; round++) {
    await t.retry(async () => {
      try {
        await t.s3.send(new AbortMultipartUploadCommand({ Bucket: t.bucket, Key: t.key, UploadId: uploadId }), { abortSignal: signal });
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchUpload') return;
        throw toS3Error(err, 'AbortMultipartUpload');
      }
    }, { signal });
    try {
      await t.s3.send(new ListPartsCommand({ Bucket: t.bucket, Key: t.key, UploadId: uploadId, MaxParts: 1 }), { abortSignal: signal });
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchUpload') return;
      t.log.warn({ err }, 'could not confirm that the multipart upload is gone');
      return;
    }
  }
  t.log.warn({ uploadId }, 'multipart upload still listed after two aborts');
}

async function deleteObject(t: UploadTarget, versionId: string | undefined): Promise<void> {
  const signal = cleanupSignal();
  await t.retry(async () => {
    try {
      await t.s3.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: t.key, ...(versionId === undefined ? {} : { VersionId: versionId }) }), { abortSignal: signal });
    } catch (err) {
      throw toS3Error(err, 'DeleteObject');
    }
  }, { signal });
}
