import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  HeadObjectCommand, ListPartsCommand, PutObjectCommand, UploadPartCommand, type S3Client,
} from '@aws-sdk/client-s3';
import type { Dispatcher } from 'undici';
import { ArchiverError, ErrorCodes, isAbortError, toArchiverError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../retry.js';
import { discardBody, openDownload, type BodyStream } from './download.js';
import { assertAllowedLink, assertSafeFileName } from './guard.js';
import { contentMd5, createFileHasher, restoreFileHasher, type FileHasher } from './hasher.js';
import { choosePartSize, DEFAULT_PART_CONCURRENCY, DEFAULT_PART_SIZE, MIN_PART_SIZE, partCount } from './part-size.js';
import { toS3Error } from './s3-errors.js';

/**
 * The stream copier: one GES backup file → one S3 object, via a multipart upload straight to the
 * final key. The object appears only at CompleteMultipartUpload, which runs after the length and
 * the SHA-256 are final; it is then checked with HeadObject (deleted if wrong). Any failure
 * waits for in-flight parts and aborts the upload. Every part carries Content-MD5, so the store
 * checks each part's bytes too.
 *
 * SMALL FILES: a file that fits in one part (and no handover/checkpoint is involved) is received
 * into one buffer and stored with ONE PutObject carrying ContentLength and Content-MD5: the store
 * verifies length and bytes and the object appears only if that PUT succeeds, so no HeadObject
 * follows. Four requests (Create, UploadPart, Complete, Head) become one.
 *
 * MEMORY BOUND: at most (partConcurrency + 1) × partSize bytes of file body are held at once:
 * `partConcurrency` parts being uploaded plus the one being filled (reading from the socket
 * stops while all upload slots are busy). With the defaults (4, 16 MiB) that is 80 MiB for any
 * file up to 156.25 GiB; larger files raise the part size to ceil(size / 10,000) rounded up to
 * 1 MiB (a 200 GiB file: 21 MiB parts, 105 MiB). See `copierMemoryBound`. Undici's socket
 * buffers and the current chunk (tens of KiB) come on top.
 */

export interface FileLink {
  url: string;
  /** Epoch ms after which the link is dead (see linkExpiresAt). */
  expiresAt: number;
  sizeEstimateBytes?: number;
}

export interface CopyCheckpoint {
  version: 1;
  bucket: string;
  key: string;
  uploadId: string;
  partSize: number;
  totalBytes: number;
  sourceEtag?: string;
  /** Bytes stored in `parts` (always a part boundary). */
  offset: number;
  parts: { partNumber: number; etag: string }[];
  /** Base64 SHA-256 midstate (hash-wasm) after `offset` bytes. */
  hashState: string;
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

/** Bytes of file body the copier may hold at once for a file of `totalBytes` (default: up to 156.25 GiB with default parts). */
export function copierMemoryBound(deps: Pick<CopierDeps, 'partSizeBytes' | 'partConcurrency'>, totalBytes = 0): number {
  const concurrency = deps.partConcurrency ?? DEFAULT_PART_CONCURRENCY;
  return (concurrency + 1) * choosePartSize(totalBytes, deps.partSizeBytes ?? DEFAULT_PART_SIZE);
}

const CLEANUP_TIMEOUT_MS = 60_000;

interface UploadState {
  /** Undefined: the file fits in one part and is stored with one PutObject at the end (no multipart upload). */
  uploadId: string | undefined;
  partSize: number;
  totalBytes: number;
  etag: string | undefined;
}

interface OpenPart {
  partNumber: number;
  buf: Buffer;
  filled: number;
}

/** Thrown inside the loop for failures that a fresh request from the current offset may cure. */
class Interruption extends Error {
  constructor(readonly error: ArchiverError) {
    super(error.message);
  }
}

class FileCopy {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly concurrency: number;
  private readonly minPartSize: number;
  private readonly marginMs: number;
  private readonly maxStalled: number;
  private readonly maxRestarts: number;
  private readonly startedAt: number;
  private readonly ac = new AbortController();
  private readonly stats: CopyStats = { linkRefreshes: 0, resumes: 0, restarts: 0, bytesDownloaded: 0, parts: 0, singlePut: false, durationMs: 0 };

  private link: FileLink | undefined;
  private linkWorked = false;
  private freshRefusals = 0;
  private upload: UploadState | undefined;
  private completed = false;
  /** A PutObject was sent and did not end in a definite refusal: an object may exist at the key. */
  private putMayHaveLanded = false;
  /** Single-PUT mode: the whole (hashed) body, waiting for finish(). */
  private singleBody: Buffer | undefined;
  private readonly parts = new Map<number, string>();
  /** Bytes of whole parts handed to the hasher and to S3. */
  private committed = 0;
  private current: OpenPart | undefined;
  private hasher!: FileHasher;
  private readonly inflight = new Set<Promise<void>>();
  private uploadError: Error | undefined;

  constructor(private readonly deps: CopierDeps, private readonly req: CopyFileRequest) {
    this.now = deps.now ?? Date.now;
    this.startedAt = this.now();
    this.concurrency = Math.max(1, deps.partConcurrency ?? DEFAULT_PART_CONCURRENCY);
    this.minPartSize = deps.partSizeBytes ?? DEFAULT_PART_SIZE;
    this.marginMs = deps.linkSafetyMarginMs ?? 60_000;
    this.maxStalled = deps.maxStalledCycles ?? 20;
    this.maxRestarts = deps.maxRestarts ?? 2;
    this.link = req.link;
    this.log = deps.logger.child({ component: 'copier', bucket: req.bucket, key: req.key, fileName: req.fileName });
  }

  private get signal(): AbortSignal {
    return this.ac.signal;
  }

  private get offset(): number {
    return this.committed + (this.current?.filled ?? 0);
  }

  async run(): Promise<CopyFileResult> {
    const outer = this.req.signal;
    const onAbort = (): void => this.ac.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    outer?.addEventListener('abort', onAbort, { once: true });
    try {
      this.throwIfAborted();
      await this.restoreOrInit();
      return await this.loop();
    } catch (err) {
      await this.cleanup(err);
      throw this.finalError(err);
    } finally {
      outer?.removeEventListener('abort', onAbort);
    }
  }

  private async restoreOrInit(): Promise<void> {
    const cp = this.req.checkpoint;
    if (!cp) {
      this.hasher = await createFileHasher(this.req.handoverAt !== undefined);
      return;
    }
    validateCheckpoint(cp, this.req);
    this.upload = { uploadId: cp.uploadId, partSize: cp.partSize, totalBytes: cp.totalBytes, etag: cp.sourceEtag };
    try {
      this.hasher = await restoreFileHasher(cp.hashState);
    } catch (err) {
      // A state from another build of the hasher: the bytes so far cannot be hashed again, so start over.
      this.log.warn({ err }, 'checkpoint hash state unusable; starting the file again');
      await this.abortUpload();
      this.upload = undefined;
      this.hasher = await createFileHasher(true);
      return;
    }
    for (const p of cp.parts) this.parts.set(p.partNumber, p.etag);
    this.committed = cp.offset;
  }

  private async loop(): Promise<CopyFileResult> {
    let stalled = 0;
    for (;;) {
      this.throwIfAborted();
      if (this.upload && this.offset === this.upload.totalBytes) return this.finish();
      if (this.handoverDue()) return this.handover();
      const before = this.offset;
      try {
        const outcome = await this.attempt();
        if (outcome === 'handover') return this.handover();
        if (outcome === 'done') return this.finish();
      } catch (err) {
        if (!(err instanceof Interruption)) throw err;
        const progressed = this.offset - before >= (this.upload?.partSize ?? this.minPartSize);
        stalled = progressed ? 1 : stalled + 1;
        if (stalled > this.maxStalled) {
          throw new ArchiverError(err.error.code, `Gave up on ${this.req.fileName} after ${stalled} interruptions without progress: ${err.error.message}`, {
            cause: err.error, details: { ...err.error.details, interruptions: stalled, offset: this.offset },
          });
        }
        this.log.warn({ err: err.error, offset: this.offset, interruptions: stalled }, 'download interrupted; resuming');
      }
    }
  }

  /** One request: returns 'again' to go round the loop (after a restart or link refresh). */
  private async attempt(): Promise<'again' | 'done' | 'handover'> {
    const link = await this.ensureLink();
    const offset = this.offset;
    const resuming = offset > 0;
    if (resuming) this.stats.resumes++;
    const opened = await this.deps.retry(
      () => openDownload(link.url, { dispatcher: this.deps.dispatcher, offset, ifMatch: this.upload?.etag, signal: this.signal }),
      { signal: this.signal, onRetry: (e) => this.log.warn({ err: e.error, attempt: e.attempt, delayMs: e.delayMs }, 'download request failed; retrying') },
    );
    switch (opened.kind) {
      case 'refused':
        return this.onRefused(link, opened.remoteCode);
      case 'precondition-failed':
        await this.restart('the source ETag changed (412 Precondition Failed)', ErrorCodes.SourceChanged);
        return 'again';
      case 'range-not-satisfiable':
        if (this.upload && offset === this.upload.totalBytes) return 'done';
        await this.restart('the source is shorter than before (416)', ErrorCodes.SourceChanged);
        return 'again';
      case 'body':
        break;
    }
    this.linkWorked = true;
    this.freshRefusals = 0;
    const { body } = opened;
    try {
      if (opened.status === 200) {
        if (offset > 0) {
          await this.restart('the server ignored the Range request (200 instead of 206)', ErrorCodes.DownloadFailed);
        }
        if (this.upload && (this.upload.totalBytes !== opened.total)) {
          await this.restart('the source length changed', ErrorCodes.SourceChanged);
        }
        // Nothing received yet: this answer's ETag is the one later ranges must match.
        if (this.upload) this.upload.etag = opened.etag;
        if (!this.upload) {
          if (opened.total === 0) {
            discardBody(body);
            return 'done';
          }
          await this.createUpload(opened.total, opened.etag);
        }
      } else {
        const upload = this.upload;
        if (!upload) {
          discardBody(body);
          throw new ArchiverError(ErrorCodes.DownloadFailed, 'Download answered 206 to a request without Range', { details: { status: 206 } });
        }
        const etagChanged = upload.etag !== undefined && opened.etag !== undefined && opened.etag !== upload.etag;
        if (opened.start !== offset || opened.total !== upload.totalBytes || etagChanged) {
          discardBody(body);
          await this.restart(`the 206 answer does not continue the file (Content-Range start ${opened.start}, total ${opened.total})`, ErrorCodes.SourceChanged);
          return 'again';
        }
      }
    } catch (err) {
      discardBody(body);
      throw err;
    }
    return this.pump(body, opened.length);
  }

  private async ensureLink(): Promise<FileLink> {
    let link = this.link;
    if (!link || this.now() >= link.expiresAt - this.marginMs) {
      if (link) this.stats.linkRefreshes++;
      link = await this.req.getLink(this.signal);
      this.link = link;
      this.linkWorked = false;
      if (this.now() >= link.expiresAt - this.marginMs) {
        this.log.warn({ expiresAt: new Date(link.expiresAt).toISOString() }, 'fresh link is already within its safety margin; using it anyway');
      }
    }
    // Every link, the refreshed ones too, is checked before any request is made to it.
    assertAllowedLink(link.url, this.deps.allowedHosts);
    return link;
  }

  private onRefused(link: FileLink, remoteCode: string | undefined): 'again' {
    const host = safeHost(link.url);
    const error = new ArchiverError(ErrorCodes.LinkExpired, `Download link to ${host} was refused (403${remoteCode ? ` ${remoteCode}` : ''})`, {
      details: { host, status: 403, remoteCode },
    });
    // A 403 on a link that worked, or past its expiry, means "get a fresh link" (ges-api.md §7.3).
    // A fresh link refused twice in a row never will work.
    if (!this.linkWorked && this.now() < link.expiresAt) {
      this.freshRefusals++;
      if (this.freshRefusals > 1) {
        throw new ArchiverError(ErrorCodes.LinkExpired, `Fresh download links to ${host} are refused (403${remoteCode ? ` ${remoteCode}` : ''})`, {
          details: error.details,
        });
      }
    }
    this.link = undefined;
    this.stats.linkRefreshes++;
    throw new Interruption(error);
  }

  /** Reads the body into parts; stops at a part boundary when the handover time has come. */
  private async pump(body: BodyStream, expected: number): Promise<'done' | 'handover' | 'again'> {
    const upload = this.upload;
    if (!upload) throw new Error('pump without an upload');
    let received = 0;
    try {
      for await (const raw of body) {
        const chunk = raw as Buffer;
        let pos = 0;
        while (pos < chunk.length) {
          const part = this.current ?? this.openPart(upload);
          const n = Math.min(chunk.length - pos, part.buf.length - part.filled);
          if (n === 0) {
            throw new Interruption(new ArchiverError(ErrorCodes.DownloadLengthMismatch, 'Download sent more bytes than the file has', {
              details: { expected, offset: this.offset },
            }));
          }
          chunk.copy(part.buf, part.filled, pos, pos + n);
          part.filled += n;
          pos += n;
          received += n;
          this.stats.bytesDownloaded += n;
          this.req.onProgress?.(n);
          if (part.filled === part.buf.length) {
            await this.commitPart();
            if (this.offset < upload.totalBytes && this.handoverDue()) {
              discardBody(body);
              return 'handover';
            }
          }
        }
      }
    } catch (err) {
      discardBody(body);
      if (err instanceof Interruption || this.signal.aborted || isAbortError(err) || err instanceof ArchiverError) throw err;
      throw new Interruption(new ArchiverError(ErrorCodes.DownloadFailed, 'Download broke off mid-file', {
        retryable: true, cause: err, details: { offset: this.offset, errorCode: (err as { code?: unknown }).code },
      }));
    }
    if (received !== expected) {
      throw new Interruption(new ArchiverError(ErrorCodes.DownloadLengthMismatch, `Download ended after ${received} of ${expected} bytes`, {
        retryable: true, details: { received, expected, offset: this.offset },
      }));
    }
    return this.offset === upload.totalBytes ? 'done' : 'again';
  }

  private openPart(upload: UploadState): OpenPart {
    const partNumber = Math.floor(this.committed / upload.partSize) + 1;
    const size = Math.min(upload.partSize, upload.totalBytes - this.committed);
    this.current = { partNumber, buf: Buffer.allocUnsafe(size), filled: 0 };
    return this.current;
  }

  /** Hashes the full current part and starts its upload once a slot is free (the memory bound). */
  private async commitPart(): Promise<void> {
    const part = this.current;
    const upload = this.upload;
    if (!part || !upload || part.filled !== part.buf.length) return;
    this.current = undefined;
    this.hasher.update(part.buf);
    this.committed += part.buf.length;
    const uploadId = upload.uploadId;
    if (uploadId === undefined) {
      // The only part of a single-PUT file: kept (it is the memory bound's "one filling") for finish().
      this.singleBody = part.buf;
      return;
    }
    while (this.inflight.size >= this.concurrency) await Promise.race(this.inflight);
    this.throwUploadError();
    const task = this.uploadPart(uploadId, part).then(
      (etag) => {
        this.parts.set(part.partNumber, etag);
        this.stats.parts++;
      },
      (err: unknown) => {
        this.uploadError ??= err instanceof Error ? err : toArchiverError(err, ErrorCodes.S3Failed);
      },
    );
    const tracked: Promise<void> = task.finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }

  private async uploadPart(uploadId: string, part: OpenPart): Promise<string> {
    const md5 = contentMd5(part.buf);
    return this.deps.retry(async () => {
      try {
        const out = await this.deps.s3.send(new UploadPartCommand({
          Bucket: this.req.bucket, Key: this.req.key, UploadId: uploadId, PartNumber: part.partNumber,
          Body: part.buf, ContentLength: part.buf.length, ContentMD5: md5,
        }), { abortSignal: this.signal });
        if (!out.ETag) throw new ArchiverError(ErrorCodes.S3Failed, 'S3 UploadPart returned no ETag', { details: { partNumber: part.partNumber } });
        return out.ETag;
      } catch (err) {
        throw toS3Error(err, 'UploadPart', { partNumber: part.partNumber });
      }
    }, { signal: this.signal, onRetry: (e) => this.log.warn({ err: e.error, partNumber: part.partNumber, attempt: e.attempt }, 'part upload failed; retrying') });
  }

  private throwUploadError(): void {
    if (this.uploadError !== undefined) throw this.uploadError;
  }

  private async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    this.throwUploadError();
  }

  private async createUpload(totalBytes: number, etag: string | undefined): Promise<void> {
    const partSize = choosePartSize(totalBytes, this.minPartSize);
    if (totalBytes <= partSize && this.req.handoverAt === undefined && this.req.checkpoint === undefined) {
      // Fits in one part and will not be handed over: one PutObject at the end, no multipart upload.
      this.upload = { uploadId: undefined, partSize, totalBytes, etag };
      this.log.debug({ totalBytes, partSize }, 'single PutObject');
      return;
    }
    const out = await this.s3('CreateMultipartUpload', (abortSignal) => this.deps.s3.send(new CreateMultipartUploadCommand({
      Bucket: this.req.bucket, Key: this.req.key, ContentType: 'application/octet-stream', Metadata: this.req.metadata,
    }), { abortSignal }));
    if (!out.UploadId) throw new ArchiverError(ErrorCodes.S3Failed, 'S3 CreateMultipartUpload returned no UploadId');
    this.upload = { uploadId: out.UploadId, partSize, totalBytes, etag };
    this.log.debug({ totalBytes, partSize, parts: partCount(totalBytes, partSize) }, 'multipart upload created');
  }

  /** Throws away everything received so far and aborts the upload; the next request starts at byte 0. */
  private async restart(reason: string, code: ArchiverError['code']): Promise<void> {
    this.stats.restarts++;
    if (this.stats.restarts > this.maxRestarts) {
      throw new ArchiverError(code, `Gave up on ${this.req.fileName}: ${reason}, after ${this.maxRestarts} restarts`, {
        details: { restarts: this.stats.restarts - 1 },
      });
    }
    this.log.warn({ reason, offset: this.offset, restarts: this.stats.restarts }, 'restarting the file from byte 0');
    const dropped = this.offset;
    await this.drain();
    await this.abortUpload();
    this.upload = undefined;
    this.parts.clear();
    this.committed = 0;
    this.current = undefined;
    this.singleBody = undefined;
    this.stats.parts = 0;
    this.hasher = await createFileHasher(this.hasher.kind === 'wasm');
    if (dropped > 0) this.req.onProgress?.(-dropped);
  }

  private handoverDue(): boolean {
    return this.req.handoverAt !== undefined && this.now() >= this.req.handoverAt;
  }

  private async handover(): Promise<CopyFileResult> {
    if (this.current && this.current.filled > 0) {
      // Bytes of an unfinished part are not in the hash yet; the next invocation fetches them again.
      this.req.onProgress?.(-this.current.filled);
    }
    this.current = undefined;
    const upload = this.upload;
    if (!upload) {
      throw new ArchiverError(ErrorCodes.DeadlineExceeded, `Handover time reached before ${this.req.fileName} was started`, { retryable: true });
    }
    if (upload.uploadId === undefined) throw new ArchiverError(ErrorCodes.Internal, 'Handover of a single-PUT copy');
    await this.drain();
    const checkpoint: CopyCheckpoint = {
      version: 1, bucket: this.req.bucket, key: this.req.key, uploadId: upload.uploadId, partSize: upload.partSize,
      totalBytes: upload.totalBytes, offset: this.committed,
      parts: [...this.parts].sort(([a], [b]) => a - b).map(([partNumber, etag]) => ({ partNumber, etag })),
      hashState: this.hasher.save(),
    };
    if (upload.etag !== undefined) checkpoint.sourceEtag = upload.etag;
    this.log.info({ offset: checkpoint.offset, totalBytes: checkpoint.totalBytes, parts: checkpoint.parts.length }, 'handing the file over');
    return { status: 'handover', checkpoint, stats: this.finishStats() };
  }

  private async finish(): Promise<CopyFileResult> {
    const upload = this.upload;
    if (upload) {
      await this.commitPart();
      await this.drain();
      const single = upload.uploadId === undefined;
      const expectedParts = single ? 1 : partCount(upload.totalBytes, upload.partSize);
      const stored = single ? (this.singleBody ? 1 : 0) : this.parts.size;
      const bodyBytes = single ? (this.singleBody?.length ?? 0) : this.committed;
      if (this.committed !== upload.totalBytes || bodyBytes !== upload.totalBytes || stored !== expectedParts) {
        throw new ArchiverError(ErrorCodes.DownloadLengthMismatch, `Received ${this.committed} of ${upload.totalBytes} bytes`, {
          details: { committed: this.committed, totalBytes: upload.totalBytes, parts: stored, expectedParts },
        });
      }
    }
    const totalBytes = upload?.totalBytes ?? 0;
    const sha256 = this.hasher.digestHex();
    if (upload?.uploadId !== undefined) {
      await this.completeUpload(upload.uploadId);
      await this.verify(totalBytes);
    } else {
      // One PutObject (an empty file's digest goes in its metadata: it is known before the PUT). Its
      // Content-MD5 and ContentLength make the store verify the bytes; the PUT is atomic, so no
      // HeadObject is needed.
      const body = this.singleBody ?? Buffer.alloc(0);
      await this.putObject(body, body.length === 0 ? { ...this.req.metadata, sha256 } : this.req.metadata);
      this.singleBody = undefined;
    }
    this.log.debug({ bytes: totalBytes, ...this.finishStats() }, 'file copied');
    return { status: 'complete', key: this.req.key, bytes: totalBytes, sha256, stats: this.finishStats() };
  }

  private async putObject(body: Buffer, metadata: Record<string, string> | undefined): Promise<void> {
    const md5 = contentMd5(body);
    let uncertain = false;
    try {
      await this.s3('PutObject', async (abortSignal) => {
        try {
          return await this.deps.s3.send(new PutObjectCommand({
            Bucket: this.req.bucket, Key: this.req.key, Body: body, ContentLength: body.length, ContentMD5: md5,
            ContentType: 'application/octet-stream', Metadata: metadata,
          }), { abortSignal });
        } catch (err) {
          // A 4xx is a definite refusal (BadDigest among them); anything else may have stored the object.
          if (!isClientError(err)) uncertain = true;
          throw err;
        }
      });
    } catch (err) {
      this.putMayHaveLanded = uncertain;
      throw err;
    }
    this.completed = true;
    this.stats.singlePut = true;
  }

  private async completeUpload(uploadId: string): Promise<void> {
    const Parts = [...this.parts].sort(([a], [b]) => a - b).map(([PartNumber, ETag]) => ({ PartNumber, ETag }));
    let attempts = 0;
    await this.deps.retry(async () => {
      attempts++;
      try {
        await this.deps.s3.send(new CompleteMultipartUploadCommand({
          Bucket: this.req.bucket, Key: this.req.key, UploadId: uploadId, MultipartUpload: { Parts },
        }), { abortSignal: this.signal });
      } catch (err) {
        // A retried Complete whose first try went through: the upload is gone, the object is there (verify checks it).
        if (attempts > 1 && (err as { name?: string }).name === 'NoSuchUpload') return;
        throw toS3Error(err, 'CompleteMultipartUpload');
      }
    }, { signal: this.signal });
    this.completed = true;
  }

  private async verify(totalBytes: number): Promise<void> {
    const head = await this.s3('HeadObject', (abortSignal) => this.deps.s3.send(
      new HeadObjectCommand({ Bucket: this.req.bucket, Key: this.req.key }), { abortSignal }));
    if (head.ContentLength !== totalBytes) {
      throw new ArchiverError(ErrorCodes.VerifyFailed, `Stored object is ${head.ContentLength} bytes, expected ${totalBytes}`, {
        details: { stored: head.ContentLength, expected: totalBytes },
      });
    }
  }

  private async s3<T>(operation: string, send: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = this.signal;
    return this.deps.retry(async () => {
      try {
        return await send(signal);
      } catch (err) {
        throw toS3Error(err, operation);
      }
    }, { signal });
  }

  private async abortUpload(): Promise<void> {
    const uploadId = this.upload?.uploadId;
    if (uploadId === undefined) return;
    await abortMultipart(this.deps, this.req.bucket, this.req.key, uploadId, this.log);
  }

  /** After a failure: stop in-flight parts, let them settle, then remove the upload (or the unverified object). */
  private async cleanup(err: unknown): Promise<void> {
    if (!this.signal.aborted) this.ac.abort(new Error('copy failed'));
    await Promise.allSettled([...this.inflight]);
    try {
      if (this.completed || this.putMayHaveLanded) {
        await deleteObject(this.deps, this.req.bucket, this.req.key);
      } else {
        await this.abortUpload();
      }
    } catch (cleanupErr) {
      this.log.error({ err: cleanupErr, cause: err }, 'cleanup after a failed copy failed; an upload or object may be left behind');
    }
  }

  private throwIfAborted(): void {
    if (this.signal.aborted) throw this.abortError();
  }

  private abortError(): ArchiverError {
    const reason: unknown = this.req.signal?.reason;
    const timedOut = reason instanceof Error && reason.name === 'TimeoutError';
    return new ArchiverError(timedOut ? ErrorCodes.DeadlineExceeded : ErrorCodes.Aborted,
      timedOut ? `Copy of ${this.req.fileName} ran out of time` : `Copy of ${this.req.fileName} was cancelled`, { cause: reason });
  }

  private finalError(err: unknown): ArchiverError {
    if (this.req.signal?.aborted) return this.abortError();
    if (err instanceof Interruption) return err.error;
    return toArchiverError(err);
  }

  private finishStats(): CopyStats {
    const parts = this.stats.singlePut ? (this.upload ? 1 : 0) : this.parts.size;
    return { ...this.stats, parts, durationMs: this.now() - this.startedAt };
  }
}

function isClientError(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
  return status !== undefined && status >= 400 && status < 500;
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
}

function validateCheckpoint(cp: CopyCheckpoint, req: CopyFileRequest): void {
  const bad = (field: string): never => {
    throw new ArchiverError(ErrorCodes.MessageInvalid, `Copy checkpoint is invalid: ${field}`, { details: { field } });
  };
  if (cp.version !== 1) bad('version');
  if (cp.bucket !== req.bucket || cp.key !== req.key) bad('bucket/key do not match the request');
  if (typeof cp.uploadId !== 'string' || cp.uploadId === '') bad('uploadId');
  if (!Number.isSafeInteger(cp.partSize) || cp.partSize < MIN_PART_SIZE) bad('partSize');
  if (!Number.isSafeInteger(cp.totalBytes) || cp.totalBytes <= 0) bad('totalBytes');
  if (!Number.isSafeInteger(cp.offset) || cp.offset < 0 || cp.offset > cp.totalBytes) bad('offset');
  if (cp.offset % cp.partSize !== 0 && cp.offset !== cp.totalBytes) bad('offset is not a part boundary');
  if (cp.parts.length !== partCount(cp.offset, cp.partSize)) bad('parts');
  cp.parts.forEach((p, i) => {
    if (p.partNumber !== i + 1 || typeof p.etag !== 'string' || p.etag === '') bad(`parts[${i}]`);
  });
  if (typeof cp.hashState !== 'string' || cp.hashState === '') bad('hashState');
}

function cleanupSignal(): AbortSignal {
  return AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
}

/** Aborts an upload (with its own time budget: the caller's signal may be the reason we are here) and checks it is gone. */
async function abortMultipart(deps: CopierDeps, bucket: string, key: string, uploadId: string, log: Logger): Promise<void> {
  const signal = cleanupSignal();
  // Twice at most: a part that landed while the first abort ran can leave the upload alive.
  for (let round = 0; round < 2; round++) {
    await deps.retry(async () => {
      try {
        await deps.s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), { abortSignal: signal });
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchUpload') return;
        throw toS3Error(err, 'AbortMultipartUpload');
      }
    }, { signal });
    try {
      await deps.s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MaxParts: 1 }), { abortSignal: signal });
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchUpload') return;
      log.warn({ err }, 'could not confirm that the multipart upload is gone');
      return;
    }
  }
  log.warn({ uploadId }, 'multipart upload still listed after two aborts');
}

async function deleteObject(deps: CopierDeps, bucket: string, key: string): Promise<void> {
  const signal = cleanupSignal();
  await deps.retry(async () => {
    try {
      await deps.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    } catch (err) {
      throw toS3Error(err, 'DeleteObject');
    }
  }, { signal });
}

export function createCopier(deps: CopierDeps): Copier {
  if (deps.partSizeBytes !== undefined && (!Number.isSafeInteger(deps.partSizeBytes) || deps.partSizeBytes < MIN_PART_SIZE)) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, `partSizeBytes must be a whole number of at least ${MIN_PART_SIZE} (S3's minimum part size)`);
  }
  return {
    async copyFile(req) {
      assertSafeFileName(req.fileName);
      if (req.link) assertAllowedLink(req.link.url, deps.allowedHosts);
      return new FileCopy(deps, req).run();
    },
    async abortCheckpoint(cp) {
      await abortMultipart(deps, cp.bucket, cp.key, cp.uploadId, deps.logger.child({ component: 'copier', key: cp.key }));
    },
  };
}
