import { ArchiverError, ErrorCodes, isAbortError, toArchiverError } from '../errors.js';
import type { Logger } from '../log.js';
import { toCheckpoint, validateCheckpoint } from './checkpoint.js';
import { discardBody, openDownload, type BodyStream } from './download.js';
import { assertAllowedLink, assertSafeFileName } from './guard.js';
import { createFileHasher, restoreFileHasher, type FileHasher } from './hasher.js';
import { LinkSource } from './link-source.js';
import { choosePartSize, DEFAULT_PART_CONCURRENCY, DEFAULT_PART_SIZE, MIN_PART_SIZE, partCount } from './part-size.js';
import type { Copier, CopierDeps, CopyFileRequest, CopyFileResult, CopyStats } from './types.js';
import { abortMultipart, UploadSession } from './upload.js';

export type { CopyCheckpoint } from './checkpoint.js';
export type { Copier, CopierDeps, CopyFileRequest, CopyFileResult, CopyStats, FileLink } from './types.js';

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

/** Bytes of file body the copier may hold at once for a file of `totalBytes` (default: up to 156.25 GiB with default parts). */
export function copierMemoryBound(deps: Pick<CopierDeps, 'partSizeBytes' | 'partConcurrency'>, totalBytes = 0): number {
  const concurrency = deps.partConcurrency ?? DEFAULT_PART_CONCURRENCY;
  return (concurrency + 1) * choosePartSize(totalBytes, deps.partSizeBytes ?? DEFAULT_PART_SIZE);
}

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
  private readonly minPartSize: number;
  private readonly maxStalled: number;
  private readonly maxRestarts: number;
  private readonly startedAt: number;
  private readonly ac = new AbortController();
  private readonly stats: CopyStats = { linkRefreshes: 0, resumes: 0, restarts: 0, bytesDownloaded: 0, parts: 0, singlePut: false, durationMs: 0 };
  private readonly links: LinkSource;
  private readonly session: UploadSession;

  private upload: UploadState | undefined;
  /** Bytes of whole parts handed to the hasher and to S3. */
  private committed = 0;
  private current: OpenPart | undefined;
  private hasher!: FileHasher;

  constructor(private readonly deps: CopierDeps, private readonly req: CopyFileRequest) {
    this.now = deps.now ?? Date.now;
    this.startedAt = this.now();
    this.minPartSize = deps.partSizeBytes ?? DEFAULT_PART_SIZE;
    this.maxStalled = deps.maxStalledCycles ?? 20;
    this.maxRestarts = deps.maxRestarts ?? 2;
    this.log = deps.logger.child({ component: 'copier', bucket: req.bucket, key: req.key, fileName: req.fileName });
    this.links = new LinkSource({
      getLink: (signal) => req.getLink(signal), allowedHosts: deps.allowedHosts, marginMs: deps.linkSafetyMarginMs ?? 60_000,
      now: this.now, log: this.log, signal: this.ac.signal, stats: this.stats,
    }, req.link);
    this.session = new UploadSession({
      s3: deps.s3, retry: deps.retry, log: this.log, bucket: req.bucket, key: req.key, metadata: req.metadata,
      concurrency: Math.max(1, deps.partConcurrency ?? DEFAULT_PART_CONCURRENCY), signal: this.ac.signal,
    });
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
      if (!this.signal.aborted) this.ac.abort(new Error('copy failed'));
      await this.session.cleanup(this.upload?.uploadId, err);
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
      await this.session.abort(this.upload.uploadId);
      this.upload = undefined;
      this.hasher = await createFileHasher(true);
      return;
    }
    this.session.restoreParts(cp.parts);
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
    const link = await this.links.current();
    const offset = this.offset;
    const resuming = offset > 0;
    if (resuming) this.stats.resumes++;
    const opened = await this.deps.retry(
      () => openDownload(link.url, { dispatcher: this.deps.dispatcher, offset, ifMatch: this.upload?.etag, signal: this.signal }),
      { signal: this.signal, onRetry: (e) => this.log.warn({ err: e.error, attempt: e.attempt, delayMs: e.delayMs }, 'download request failed; retrying') },
    );
    switch (opened.kind) {
      case 'refused':
        throw new Interruption(this.links.refused(link, opened.remoteCode));
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
    this.links.markWorked();
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
    if (upload.uploadId === undefined) {
      this.session.keepSingleBody(part.buf);
      return;
    }
    await this.session.queuePart(upload.uploadId, part.partNumber, part.buf);
  }

  private async createUpload(totalBytes: number, etag: string | undefined): Promise<void> {
    const partSize = choosePartSize(totalBytes, this.minPartSize);
    if (totalBytes <= partSize && this.req.handoverAt === undefined && this.req.checkpoint === undefined) {
      // Fits in one part and will not be handed over: one PutObject at the end, no multipart upload.
      this.upload = { uploadId: undefined, partSize, totalBytes, etag };
      this.log.debug({ totalBytes, partSize }, 'single PutObject');
      return;
    }
    const uploadId = await this.session.createMultipart();
    this.upload = { uploadId, partSize, totalBytes, etag };
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
    await this.session.drain();
    await this.session.abort(this.upload?.uploadId);
    this.upload = undefined;
    this.session.reset();
    this.committed = 0;
    this.current = undefined;
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
    await this.session.drain();
    const checkpoint = toCheckpoint({
      bucket: this.req.bucket, key: this.req.key, uploadId: upload.uploadId, partSize: upload.partSize,
      totalBytes: upload.totalBytes, offset: this.committed, parts: this.session.partList(),
      hashState: this.hasher.save(), sourceEtag: upload.etag,
    });
    this.log.info({ offset: checkpoint.offset, totalBytes: checkpoint.totalBytes, parts: checkpoint.parts.length }, 'handing the file over');
    return { status: 'handover', checkpoint, stats: this.finishStats() };
  }

  private async finish(): Promise<CopyFileResult> {
    const upload = this.upload;
    if (upload) {
      await this.commitPart();
      await this.session.drain();
      const single = upload.uploadId === undefined;
      const singleBody = this.session.singleBody;
      const expectedParts = single ? 1 : partCount(upload.totalBytes, upload.partSize);
      const stored = single ? (singleBody ? 1 : 0) : this.session.partsStored;
      const bodyBytes = single ? (singleBody?.length ?? 0) : this.committed;
      if (this.committed !== upload.totalBytes || bodyBytes !== upload.totalBytes || stored !== expectedParts) {
        throw new ArchiverError(ErrorCodes.DownloadLengthMismatch, `Received ${this.committed} of ${upload.totalBytes} bytes`, {
          details: { committed: this.committed, totalBytes: upload.totalBytes, parts: stored, expectedParts },
        });
      }
    }
    const totalBytes = upload?.totalBytes ?? 0;
    const sha256 = this.hasher.digestHex();
    await this.req.beforeCommit?.({ bytes: totalBytes, sha256 }, this.signal);
    if (upload?.uploadId !== undefined) {
      await this.session.complete(upload.uploadId);
      await this.session.verify(totalBytes);
    } else {
      await this.session.putSingleObject(sha256);
      this.stats.singlePut = true;
    }
    this.log.debug({ bytes: totalBytes, ...this.finishStats() }, 'file copied');
    return { status: 'complete', key: this.req.key, bytes: totalBytes, sha256, stats: this.finishStats() };
  }

  private throwIfAborted(): void {
    if (this.signal.aborted) throw this.abortError();
  }

  private abortError(): ArchiverError {
    const reason: unknown = this.req.signal?.reason;
    // The caller said why it stopped us (DEADLINE_EXCEEDED from a Lambda deadline, ABORTED from Ctrl-C): keep its code.
    if (reason instanceof ArchiverError) {
      return new ArchiverError(reason.code, `Copy of ${this.req.fileName} stopped: ${reason.message}`, {
        cause: reason, retryable: reason.retryable, ...(reason.details === undefined ? {} : { details: reason.details }),
      });
    }
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
    const parts = this.stats.singlePut ? (this.upload ? 1 : 0) : this.session.partsStored;
    return { ...this.stats, parts, durationMs: this.now() - this.startedAt };
  }
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
      await abortMultipart({
        s3: deps.s3, retry: deps.retry, bucket: cp.bucket, key: cp.key, log: deps.logger.child({ component: 'copier', key: cp.key }),
      }, cp.uploadId);
    },
  };
}
