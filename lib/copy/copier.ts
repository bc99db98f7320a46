import { ArchiverError, ErrorCodes, isAbortError, toArchiverError } from '../errors.js';
import type { Logger } from '../log.js';
import { sleep } from '../retry.js';
import { toCheckpoint, validateCheckpoint, type CopyCheckpoint } from './checkpoint.js';
import { discardBody, openDownload, validatorOf, type OpenResult, type SourceValidator } from './download.js';
import { assertAllowedLink, assertSafeFileName } from './guard.js';
import { createDeferredHasher, createFileHasher, restoreFileHasher, warmUpSerialisableHash, type FileHasher } from './hasher.js';
import { LinkSource } from './link-source.js';
import { INLINE_BELOW, startMd5Worker } from './md5-worker.js';
import { PartPool } from './part-pool.js';
import { DEFAULT_PART_SIZE, filePartSize, MAX_PART_SIZE, MAX_PARTS, MiB, MIN_PART_SIZE, partCount, SEGMENT_BYTES } from './part-size.js';
import { DEFAULT_RATE_FLOOR, RateFloor } from './rate-floor.js';
import { DEFAULT_CHECKPOINT_EVERY_S, DEFAULT_PART_CONCURRENCY, DEFAULT_RESUMABLE_AFTER_S } from '../config.js';
import type { Copier, CopierDeps, CopyFileRequest, CopyFileResult, CopyRangeRequest, CopyStats, FileLink } from './types.js';
import { abortMultipart, UploadSession } from './upload.js';

export type { CopyCheckpoint } from './checkpoint.js';
export type { Copier, CopierDeps, CopyFileRequest, CopyFileResult, CopyRangeRequest, CopyRangeResult, CopyStats, FileLink } from './types.js';

/**
 * The stream copier: one GES backup file → one S3 object, via a multipart upload straight to the
 * final key. The object appears only at CompleteMultipartUpload, which runs after the length and
 * the SHA-256 are final; it is then checked with HeadObject (deleted if wrong). A file that fits
 * in one part is stored with one PutObject carrying Content-MD5 instead. Every part carries
 * Content-MD5, so the store checks each part's bytes too.
 *
 * STREAMS: with `streams` > 1 the first request asks for the expected first part as a byte range.
 * If the source answers 206 with a safe validator (a strong ETag, else Last-Modified), up to
 * `streams` connections fetch segments (SEGMENT_BYTES at most, at fixed offsets inside each part)
 * as ranges of the same link (`If-Match` / `If-Unmodified-Since`), taking them in file order;
 * several streams fill one part, each at its own offset, and the part is uploaded as soon as it
 * is complete, by whichever stream completes it. While only one stream runs (streams are added
 * as the download proves to be the limit) it asks for the rest of each part in one range. A
 * source that answers 200 (Range ignored) or offers no validator gets one stream reading the
 * whole body.
 * The SHA-256 is fed in part order over the stored parts (see PartPool), so it is the digest of
 * the whole file whatever order the ranges arrive in.
 *
 * MEMORY BOUND: the part buffers, one buffer slot per part from the claim of its first segment
 * until it is stored and hashed (PartPool), as many slots as CopierDeps.partBufferBudgetBytes
 * states (the formula is there, once). See `copierMemoryBound`.
 */

type MemoryDeps = Pick<CopierDeps, 'partSizeBytes' | 'partConcurrency' | 'streams' | 'partBufferBudgetBytes'>;

/** Bytes of part buffers the copier may hold at once for a file of `totalBytes` (with every stream running): see CopierDeps.partBufferBudgetBytes. */
export function copierMemoryBound(deps: MemoryDeps, totalBytes = 0): number {
  const partSize = filePartSize(totalBytes, deps.partSizeBytes ?? DEFAULT_PART_SIZE);
  return partSlots(deps, partSize, Math.max(1, deps.streams ?? 1)) * partSize;
}

/** Buffer slots for parts of `partSize` with `running` streams (the formula on CopierDeps.partBufferBudgetBytes). */
function partSlots(deps: MemoryDeps, partSize: number, running: number): number {
  const partConcurrency = Math.max(1, deps.partConcurrency ?? DEFAULT_PART_CONCURRENCY);
  const budget = deps.partBufferBudgetBytes
    ?? Math.max(DEFAULT_PART_BUFFER_BUDGET, (Math.max(1, deps.streams ?? 1) + partConcurrency) * (deps.partSizeBytes ?? DEFAULT_PART_SIZE));
  return Math.min(partConcurrency + running, Math.max(2, Math.floor(budget / partSize)));
}

/** The least part-buffer budget per file (CopierDeps.partBufferBudgetBytes). */
const DEFAULT_PART_BUFFER_BUDGET = 128 * MiB;

/** An interruption must bring at least this much (or finish its range) to count as progress. */
const PROGRESS_BYTES = MiB;
/**
 * Streams are added one at a time while the download side is what holds the copy back: two ticks
 * of RAMP_TICK_MS in a row in which the streams spent under a tenth of the time waiting for a
 * buffer or an upload slot, and each stream brought less than RAMP_SLOW_STREAM_BYTES_PER_S (a
 * connection capped far away, not a near source that is merely starting up), add one. A near,
 * fast source keeps one stream and its memory (on a shared machine, extra streams only compete
 * for the CPU the store needs); a far one, capped per connection, gets all of them within a second.
 */
const RAMP_TICK_MS = 100;
const RAMP_MAX_WAIT_SHARE = 0.1;
const RAMP_SLOW_STREAM_BYTES_PER_S = 48 * MiB;
const HANDOVER_DRAIN_MS = 30_000;
/**
 * A `resumable` copy keeps a serialisable hash (so an interruption hands over instead of losing
 * the upload) when, at its first part, the rest of the file looks like it takes longer than this
 * at the pace so far (CopierDeps.resumableAfterMs, ARCHIVE_RESUMABLE_AFTER_S). Shorter copies keep
 * the ~5x faster node:crypto hash and start again. The pace at the first part is pessimistic
 * (it includes the first request and TCP's slow start): on a loaded 2-CPU machine a 1 GiB copy
 * that takes 8 s looked like 40 s at its first part, so the default leaves a wide margin.
 */
export const DEFAULT_RESUMABLE_AFTER_MS = DEFAULT_RESUMABLE_AFTER_S * 1000;
/**
 * A copy with `onCheckpoint` and a serialisable hash reports its stored prefix this often, so a
 * crash (kill -9, a lost machine) loses at most this much: the next run continues from there.
 */
export const DEFAULT_CHECKPOINT_EVERY_MS = DEFAULT_CHECKPOINT_EVERY_S * 1000;

interface UploadState {
  /** Undefined: the file fits in one part and is stored with one PutObject at the end (no multipart upload). */
  uploadId: string | undefined;
  partSize: number;
  totalBytes: number;
  parts: number;
  /** Undefined: the source offered nothing that makes a range safe, so no range is ever asked for. */
  validator: SourceValidator | undefined;
  /** Parts are fetched as ranges, by up to `streams` connections. */
  parallel: boolean;
}

type Body = Extract<OpenResult, { kind: 'body' }>;

interface OpenPart {
  partNumber: number;
  /** File offset of the part's first byte. */
  start: number;
  buf: Buffer;
  /** Bytes written so far, by every stream filling the part: full at buf.length. */
  received: number;
}

/** One stream's work: bytes [pos, end) of the file, and the part it is filling. */
interface Span {
  pos: number;
  end: number;
  part: OpenPart | undefined;
}

/** The streams of one pass over the file; a restart or a handover ends it. */
interface Epoch {
  ac: AbortController;
  pool: PartPool;
  /** Parallel mode: the file offset of the first byte no stream has claimed yet. */
  cursor: number;
  /** Parallel mode: parts a stream has claimed a segment of, until they are full. */
  open: Map<number, OpenPart>;
  /** Streams waiting for a buffer slot to open the next part: told to look again once another opened it. */
  slotWaits: Set<AbortController>;
  /** Why the epoch stopped (the first reason wins): a Restart, a HandoverDue, or the failure. */
  stop: Error | undefined;
  workers: Promise<void>[];
  /** Streams started in this pass (counted as each starts, before its first claim). */
  started: number;
}

/** A failure that a fresh request from the current byte may cure. */
class Interruption extends Error {
  constructor(readonly error: ArchiverError) {
    super(error.message);
  }
}

/** Everything received so far must be thrown away: the file starts again at byte 0. */
class Restart extends Error {
  constructor(readonly reason: string, readonly code: ArchiverError['code'], readonly opts: { singleStream?: boolean; unsafeResume?: boolean } = {}) {
    super(reason);
  }
}

/** The handover time has come: stop the streams and hand the stored prefix over. */
class HandoverDue extends Error {
  constructor() {
    super('handover due');
  }
}

class FileCopy {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly minPartSize: number;
  private readonly streams: number;
  private readonly maxStalled: number;
  private readonly maxRestarts: number;
  private readonly partConcurrency: number;
  private readonly startedAt: number;
  private readonly ac = new AbortController();
  private readonly stats: CopyStats = { linkRefreshes: 0, resumes: 0, restarts: 0, bytesDownloaded: 0, parts: 0, singlePut: false, streams: 0, durationMs: 0 };
  private readonly links: LinkSource;
  private readonly session: UploadSession;

  private upload: UploadState | undefined;
  /** Bytes stored and hashed when the current epoch started (a checkpoint's offset, or 0). */
  private committed = 0;
  /** The offset of the last checkpoint given to `onCheckpoint`. */
  private reportedOffset = -1;
  private hasher!: FileHasher;
  private epoch: Epoch | undefined;
  /** Set once the source ignored a Range: no more ranged requests for this file. */
  private singleStream = false;
  private unsafeRestarts = 0;
  /** Progress reported to the caller, net, and the offset this invocation started from. */
  private reported = 0;
  private startOffset = 0;
  /** Time streams spent waiting for a buffer slot or an upload slot: the ramp's signal. */
  private waitedMs = 0;
  /** Waits under way, each with the time up to which it is counted in `waitedMs`. */
  private readonly activeWaits = new Set<{ since: number }>();

  /** `range`: copy only these parts into that upload (a shard; see CopyRangeRequest). */
  constructor(private readonly deps: CopierDeps, private readonly req: CopyFileRequest, private readonly range?: CopyRangeRequest) {
    this.now = deps.now ?? Date.now;
    this.startedAt = this.now();
    this.minPartSize = deps.partSizeBytes ?? DEFAULT_PART_SIZE;
    this.streams = Math.max(1, deps.streams ?? 1);
    this.maxStalled = deps.maxStalledCycles ?? 20;
    this.maxRestarts = deps.maxRestarts ?? 2;
    this.partConcurrency = Math.max(1, deps.partConcurrency ?? DEFAULT_PART_CONCURRENCY);
    this.log = deps.logger.child({ component: 'copier', bucket: req.bucket, key: req.key, fileName: req.fileName });
    this.links = new LinkSource({
      getLink: (signal) => req.getLink(signal), allowedHosts: deps.allowedHosts, marginMs: deps.linkSafetyMarginMs ?? 60_000,
      now: this.now, log: this.log, signal: this.ac.signal, stats: this.stats,
    }, req.link);
    this.session = new UploadSession({
      s3: deps.s3, retry: deps.retry, log: this.log, bucket: req.bucket, key: req.key, metadata: req.metadata,
      concurrency: this.partConcurrency, signal: this.ac.signal,
      onPartError: (err) => {
        if (this.epoch) stopEpoch(this.epoch, err);
      },
    });
  }

  private get signal(): AbortSignal {
    return this.ac.signal;
  }

  async run(): Promise<CopyFileResult> {
    const outer = this.req.signal;
    const onAbort = (): void => this.ac.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    outer?.addEventListener('abort', onAbort, { once: true });
    try {
      this.throwIfAborted();
      await this.restoreOrInit();
      for (;;) {
        try {
          return await this.runEpoch();
        } catch (err) {
          // A range cannot start its file again: the shard's caller restarts the whole file.
          if (!(err instanceof Restart) || this.range) throw err;
          await this.restart(err);
        }
      }
    } catch (err) {
      // A copy that can be continued is never thrown away because its time ran out (Lambda):
      // what is stored stays, named by the checkpoint returned.
      if (this.keepsUploadOnAbort()) return this.handover();
      if (!this.signal.aborted) this.ac.abort(new Error('copy failed'));
      // A range's upload is shared with the other shards: its parts stay for the next delivery.
      if (this.range) await this.session.settle();
      else await this.session.cleanup(this.upload?.uploadId, err);
      throw this.finalError(err);
    } finally {
      outer?.removeEventListener('abort', onAbort);
    }
  }

  private keepsUploadOnAbort(): boolean {
    if (this.range) return this.req.signal?.aborted === true && this.req.handoverAt !== undefined;
    // A resumable copy interrupted before any part was stored has nothing worth a checkpoint.
    return this.req.signal?.aborted === true && (this.req.handoverAt !== undefined || (this.req.resumable === true && this.session.partsStored > 0))
      && this.upload?.uploadId !== undefined && this.hasher.kind === 'wasm';
  }

  /** At the first part of a `resumable` copy: will the rest take longer than `resumableAfterMs` at this pace? */
  private expectsLongCopy(): boolean {
    const total = this.upload?.totalBytes ?? 0;
    const done = this.stats.bytesDownloaded;
    const elapsed = this.now() - this.startedAt;
    if (done <= 0) return true;
    return ((total - done) * elapsed) / done > (this.deps.resumableAfterMs ?? DEFAULT_RESUMABLE_AFTER_MS);
  }

  private async restoreOrInit(): Promise<void> {
    if (this.range) {
      this.restoreRange(this.range);
      return;
    }
    const cp = this.req.checkpoint;
    if (!cp) {
      this.hasher = this.req.handoverAt === undefined && this.req.resumable === true
        ? await createDeferredHasher(() => this.expectsLongCopy())
        : await createFileHasher(this.req.handoverAt !== undefined);
      return;
    }
    validateCheckpoint(cp, this.req);
    const validator = validatorOf(cp.sourceEtag, cp.sourceLastModified);
    this.upload = {
      uploadId: cp.uploadId, partSize: cp.partSize, totalBytes: cp.totalBytes, parts: partCount(cp.totalBytes, cp.partSize),
      validator, parallel: this.streams > 1 && validator !== undefined,
    };
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
    this.startOffset = cp.offset;
  }

  /** A range: the upload is known, every request is a range with If-Match, parts stop at the range's last. */
  private restoreRange(r: CopyRangeRequest): void {
    if (r.start % r.partSize !== 0 || r.start > r.end || r.end > r.totalBytes || (r.end % r.partSize !== 0 && r.end !== r.totalBytes)) {
      throw new ArchiverError(ErrorCodes.Internal, `Range ${r.start}-${r.end} of ${r.fileName} is not made of whole parts of ${r.partSize} bytes`);
    }
    this.hasher = NO_HASH;
    this.upload = {
      uploadId: r.uploadId, partSize: r.partSize, totalBytes: r.totalBytes, parts: partCount(r.end, r.partSize),
      validator: { etag: r.sourceEtag }, parallel: true,
    };
    this.session.restoreParts(r.parts ?? []);
    this.committed = r.start;
    this.startOffset = r.start;
  }

  /** The parts stored for this copy, earlier hops' included, by part number. */
  storedParts(): { partNumber: number; etag: string }[] {
    return this.session.partList();
  }

  /** One pass: the first request when nothing is known yet, then the streams until done, a restart or a handover. */
  private async runEpoch(): Promise<CopyFileResult> {
    this.throwIfAborted();
    let first: Body | undefined;
    if (!this.upload) {
      first = await this.probe();
      if (!first) return this.finish(undefined);
    }
    const upload = this.upload as unknown as UploadState;
    const slots = partSlots(this.deps, upload.partSize, 1);
    // A small file's one buffer is its own (hashed inline, nothing for the MD5 worker to read):
    // a block of the part size, readied page by page by the worker, would cost more than the copy.
    const small = upload.totalBytes < INLINE_BELOW;
    const pool = new PartPool(slots, this.hasher, this.committed / upload.partSize + 1, this.committed, {
      blockSize: small ? Math.max(1, upload.totalBytes) : upload.partSize, limit: partSlots(this.deps, upload.partSize, this.streams),
      allocate: this.deps.allocatePartBuffer ?? (small ? (size: number) => Buffer.alloc(size) : undefined),
    });
    // The blocks of the first parts, taken now: new ones are readied while part 1 downloads.
    pool.reserve(Math.min(slots, upload.parts - this.committed / upload.partSize));
    const epoch: Epoch = {
      ac: new AbortController(), pool, cursor: this.committed, open: new Map(), slotWaits: new Set(), stop: undefined, workers: [], started: 0,
    };
    this.epoch = epoch;
    const onCopyAbort = (): void => stopEpoch(epoch, this.signal.reason);
    this.signal.addEventListener('abort', onCopyAbort, { once: true });
    const handoverAt = this.req.handoverAt;
    const timer = handoverAt === undefined ? undefined : setTimeout(() => stopEpoch(epoch, new HandoverDue()), Math.max(0, handoverAt - this.now()));
    let ramp: NodeJS.Timeout | undefined;
    const onCheckpoint = this.req.onCheckpoint;
    const saver = onCheckpoint === undefined || upload.uploadId === undefined ? undefined
      : setInterval(() => this.reportProgress(epoch, upload, onCheckpoint), this.deps.checkpointEveryMs ?? DEFAULT_CHECKPOINT_EVERY_MS);
    try {
      if (this.handoverDue()) stopEpoch(epoch, new HandoverDue());
      const max = upload.parallel ? Math.max(1, Math.min(this.streams, segmentsLeft(upload, epoch.cursor))) : 1;
      epoch.workers.push(this.worker(epoch, first));
      this.stats.streams = Math.max(this.stats.streams, 1);
      if (max > 1) ramp = this.rampStreams(epoch, max);
      // Workers never reject (they record why they stopped); more may be added while we wait.
      for (let i = 0; i < epoch.workers.length; i++) await epoch.workers[i];
    } finally {
      clearInterval(ramp);
      clearInterval(saver);
      clearTimeout(timer);
      this.signal.removeEventListener('abort', onCopyAbort);
    }
    if (epoch.stop instanceof HandoverDue) return this.handover();
    if (epoch.stop !== undefined) throw epoch.stop;
    return this.finish(pool);
  }

  /**
   * Hands `onCheckpoint` the stored and hashed prefix when it grew since the last one, if the
   * hash can be saved (a deferred hash that chose node:crypto cannot: that copy is short).
   */
  private reportProgress(epoch: Epoch, upload: UploadState, onCheckpoint: (cp: CopyCheckpoint) => void): void {
    const offset = epoch.pool.hashedBytes;
    if (epoch.stop !== undefined || upload.uploadId === undefined || offset <= Math.max(this.reportedOffset, this.startOffset)) return;
    if (this.hasher.kind !== 'wasm') return;
    this.reportedOffset = offset;
    onCheckpoint(this.checkpointAt(upload, upload.uploadId, epoch.pool.frontier, offset));
  }

  /** The stored and hashed prefix up to part `frontier` (`offset` bytes) as a checkpoint. */
  private checkpointAt(upload: UploadState, uploadId: string, frontier: number, offset: number): CopyCheckpoint {
    return toCheckpoint({
      bucket: this.req.bucket, key: this.req.key, uploadId, partSize: upload.partSize,
      totalBytes: upload.totalBytes, offset, parts: this.session.partList(frontier),
      hashState: this.hasher.save(), sourceEtag: upload.validator?.etag, sourceLastModified: upload.validator?.lastModified,
    });
  }

  /** Adds a stream every two ticks in which the download was the limit (see RAMP_TICK_MS). */
  private rampStreams(epoch: Epoch, max: number): NodeJS.Timeout {
    let lastWaited = this.waitedSoFar();
    let lastBytes = this.stats.bytesDownloaded;
    let slowTicks = 0;
    const timer = setInterval(() => {
      const running = epoch.workers.length;
      const total = this.waitedSoFar();
      const waited = total - lastWaited;
      lastWaited = total;
      const perStream = ((this.stats.bytesDownloaded - lastBytes) * 1000) / RAMP_TICK_MS / running;
      lastBytes = this.stats.bytesDownloaded;
      if (epoch.stop !== undefined || running >= max || epoch.cursor >= (this.upload ? workEnd(this.upload) : 0)) {
        clearInterval(timer);
        return;
      }
      const downloadBound = waited <= RAMP_TICK_MS * RAMP_MAX_WAIT_SHARE * running && perStream < RAMP_SLOW_STREAM_BYTES_PER_S;
      slowTicks = downloadBound ? slowTicks + 1 : 0;
      if (slowTicks < 2) return;
      slowTicks = 0;
      epoch.pool.grow();
      epoch.workers.push(this.worker(epoch, undefined));
      this.stats.streams = Math.max(this.stats.streams, epoch.workers.length);
    }, RAMP_TICK_MS);
    return timer;
  }

  /**
   * The first request of a pass: learns the length, the validator and whether ranges work. With
   * streams it asks for the expected first part (from the link's size estimate; else the minimum
   * part size, which is the first segment with the default minimum) as a range, and the part
   * size is then at least that range (createUpload), so the first answer never needs a resume.
   */
  private async probe(): Promise<Body | undefined> {
    const ranged = this.streams > 1 && !this.singleStream;
    let stalled = 0;
    for (;;) {
      const link = await this.links.current();
      const firstRange = ranged ? this.expectedFirstPart(link) : undefined;
      let opened: OpenResult;
      try {
        opened = await this.request(link, 0, firstRange, undefined, this.signal);
        if (opened.kind === 'refused') throw new Interruption(this.links.refused(link, opened.remoteCode));
        if (opened.kind === 'bad-range') throw new Interruption(new ArchiverError(ErrorCodes.DownloadFailed, `Download answered ${opened.reason}`));
        if (opened.kind === 'precondition-failed') throw new Interruption(new ArchiverError(ErrorCodes.DownloadFailed, 'Download answered 412 to a request without a precondition'));
      } catch (err) {
        if (!(err instanceof Interruption)) throw err;
        stalled = await this.stalledAttempt(err, stalled + 1, this.signal);
        continue;
      }
      if (opened.kind === 'range-not-satisfiable') {
        if (opened.total === 0) return undefined; // an empty file: nothing to range over
        this.singleStream = true; // an odd answer to bytes=0-…: ask for the plain file instead
        return this.probe();
      }
      this.links.markWorked(link);
      const validator = validatorOf(opened.etag, opened.lastModified);
      if (opened.status === 206 && validator === undefined) {
        // Ranges without a validator could mix two versions of the file: one plain stream instead.
        discardBody(opened.body);
        this.singleStream = true;
        return this.probe();
      }
      if (opened.total === 0) {
        discardBody(opened.body);
        return undefined;
      }
      await this.createUpload(opened.total, validator, opened.status === 206 ? firstRange : undefined);
      return opened;
    }
  }

  /** The first part's size if the link's size estimate is right; the minimum part size without one. */
  private expectedFirstPart(link: FileLink): number {
    const estimate = link.sizeEstimateBytes;
    if (estimate === undefined || !Number.isSafeInteger(estimate) || estimate <= 0 || estimate > MAX_PARTS * MAX_PART_SIZE) return this.minPartSize;
    return filePartSize(estimate, this.minPartSize);
  }

  /** One stream: segments as ranges (parallel), or the rest of the file from one body. */
  private async worker(epoch: Epoch, first: Body | undefined): Promise<void> {
    const upload = this.upload as unknown as UploadState;
    epoch.started++;
    try {
      if (!upload.parallel) {
        await this.fetchSpan(epoch, { pos: this.committed, end: upload.totalBytes, part: undefined }, first);
        return;
      }
      for (;;) {
        if (this.handoverDue()) throw new HandoverDue();
        const span = await this.claim(epoch, upload, first);
        if (!span) return;
        await this.fetchSpan(epoch, span, first);
        first = undefined;
      }
    } catch (err) {
      if (first) discardBody(first.body);
      stopEpoch(epoch, err);
    }
  }

  /**
   * The next segment for a stream (the first body's range for the first; the rest of the part
   * while the stream is the only one), or undefined when every byte is claimed. A segment of an
   * open part is taken at once; the first segment of a part needs a buffer slot first, so parts
   * open in order, each holding a slot (PartPool). A stream that waits for a slot looks again
   * when another stream opens that part meanwhile, and gives the slot back if it got one but the
   * next segment's part is open by then.
   */
  private async claim(epoch: Epoch, upload: UploadState, first: Body | undefined): Promise<Span | undefined> {
    let slot = false;
    for (;;) {
      const pos = epoch.cursor;
      if (pos >= workEnd(upload)) {
        if (slot) epoch.pool.release();
        return undefined;
      }
      const partNumber = Math.floor(pos / upload.partSize) + 1;
      let part = epoch.open.get(partNumber);
      if (part === undefined && !slot) {
        slot = await this.waitForSlot(epoch);
        continue;
      }
      const opening = part === undefined;
      if (part === undefined) {
        part = this.openPart(epoch, upload, pos);
        epoch.open.set(partNumber, part);
      } else if (slot) {
        epoch.pool.release();
      }
      // A lone stream asks for the rest of the part at once: a quarter of the requests with 32 MiB
      // parts, less work for the source and for this process. Once there is company, segments.
      const segmentEnd = epoch.started <= 1 ? part.start + part.buf.length
        : part.start + (Math.floor((pos - part.start) / SEGMENT_BYTES) + 1) * SEGMENT_BYTES;
      const end = Math.min(part.start + part.buf.length, first ? first.start + first.length : segmentEnd);
      epoch.cursor = end;
      // More segments of this part to take: the streams waiting for a slot take them instead.
      if (opening && end < part.start + part.buf.length) for (const wait of epoch.slotWaits) wait.abort();
      return { pos, end, part };
    }
  }

  /** Waits for a buffer slot: true once one is held, false when another stream opened a part meanwhile (look again). */
  private async waitForSlot(epoch: Epoch): Promise<boolean> {
    const opened = new AbortController();
    epoch.slotWaits.add(opened);
    try {
      await this.waiting(epoch.pool.acquire(AbortSignal.any([epoch.ac.signal, opened.signal])));
      return true;
    } catch (err) {
      if (epoch.ac.signal.aborted || !opened.signal.aborted) throw err;
      return false;
    } finally {
      epoch.slotWaits.delete(opened);
    }
  }

  /** Awaits `p`, counting the time towards `waitedMs` (the ramp's signal). */
  private async waiting<T>(p: Promise<T>): Promise<T> {
    const wait = { since: performance.now() };
    this.activeWaits.add(wait);
    try {
      return await p;
    } finally {
      this.activeWaits.delete(wait);
      this.waitedMs += performance.now() - wait.since;
    }
  }

  /** `waitedMs` including the waits still under way (counted up to now). */
  private waitedSoFar(): number {
    const now = performance.now();
    for (const wait of this.activeWaits) {
      this.waitedMs += now - wait.since;
      wait.since = now;
    }
    return this.waitedMs;
  }

  /** Fetches bytes [span.pos, span.end), resuming from the exact byte after every interruption. */
  private async fetchSpan(epoch: Epoch, span: Span, first: Body | undefined): Promise<void> {
    const upload = this.upload as unknown as UploadState;
    let stalled = 0;
    let opened = first;
    // A request from inside a segment is a resume; in one whole body, any request past byte 0 is.
    const start = upload.parallel ? span.pos : 0;
    while (span.pos < span.end) {
      epoch.ac.signal.throwIfAborted();
      const before = span.pos;
      try {
        opened ??= await this.openSpan(epoch, span.pos, upload.parallel ? span.end : undefined, span.pos > start);
        const body = opened;
        opened = undefined;
        await this.pump(epoch, body, span);
      } catch (err) {
        if (!(err instanceof Interruption)) throw err;
        if (span.pos > 0 && upload.validator === undefined) {
          throw new Restart(`${err.error.message}, and the source gave no ETag or Last-Modified to resume safely`, err.error.code, { unsafeResume: true });
        }
        const progressed = span.pos - before >= PROGRESS_BYTES;
        stalled = await this.stalledAttempt(err, progressed ? 1 : stalled + 1, epoch.ac.signal, span.pos);
      }
    }
  }

  /** Counts an attempt that brought too little; fails past the bound, else waits a little before the next one. */
  private async stalledAttempt(err: Interruption, stalled: number, signal: AbortSignal, offset = 0): Promise<number> {
    if (stalled > this.maxStalled) {
      throw new ArchiverError(err.error.code, `Gave up on ${this.req.fileName} after ${stalled} interruptions without progress: ${err.error.message}`, {
        cause: err.error, details: { ...err.error.details, interruptions: stalled, offset },
      });
    }
    this.log.warn({ err: err.error, offset, interruptions: stalled }, 'download interrupted; resuming');
    // Attempts that bring nothing (a refused or empty answer) back off, so a bad source is not hammered.
    if (stalled > 1) await sleep(Math.min(5_000, 50 * 2 ** (stalled - 2)) * (0.5 + Math.random() / 2), signal);
    return stalled;
  }

  private async request(link: FileLink, offset: number, end: number | undefined, validator: SourceValidator | undefined, signal: AbortSignal): Promise<OpenResult> {
    return this.deps.retry(
      () => openDownload(link.url, { dispatcher: this.deps.dispatcher, offset, end, validator, signal }),
      { signal, onRetry: (e) => this.log.warn({ err: e.error, attempt: e.attempt, delayMs: e.delayMs }, 'download request failed; retrying') },
    );
  }

  /** Opens bytes [pos, end) (end undefined: to the end of the file) and checks the answer continues this file. */
  private async openSpan(epoch: Epoch, pos: number, end: number | undefined, resuming: boolean): Promise<Body> {
    const upload = this.upload as unknown as UploadState;
    const link = await this.links.current();
    if (resuming) this.stats.resumes++;
    const opened = await this.request(link, pos, end, upload.validator, epoch.ac.signal);
    switch (opened.kind) {
      case 'refused':
        throw new Interruption(this.links.refused(link, opened.remoteCode));
      case 'bad-range':
        throw new Interruption(new ArchiverError(ErrorCodes.DownloadFailed, `Download answered ${opened.reason}`, { details: { offset: pos } }));
      case 'precondition-failed':
        throw new Restart('the source changed (412 Precondition Failed)', ErrorCodes.SourceChanged);
      case 'range-not-satisfiable':
        throw new Restart('the source is shorter than before (416)', ErrorCodes.SourceChanged);
      case 'body':
        break;
    }
    this.links.markWorked(link);
    const changed = (why: string): Restart => {
      discardBody(opened.body);
      return new Restart(why, ErrorCodes.SourceChanged);
    };
    if (opened.status === 200) {
      if (pos > 0 || upload.parallel) {
        discardBody(opened.body);
        throw new Restart('the server ignored the Range request (200 instead of 206)', ErrorCodes.DownloadFailed, { singleStream: true });
      }
      if (opened.total !== upload.totalBytes) throw changed('the source length changed');
      // Nothing of this pass received yet: this answer's validator is the one later ranges must match.
      upload.validator = validatorOf(opened.etag, opened.lastModified);
      return opened;
    }
    if (pos === 0 && end === undefined) {
      discardBody(opened.body);
      throw new ArchiverError(ErrorCodes.DownloadFailed, 'Download answered 206 to a request without Range', { details: { status: 206 } });
    }
    if (opened.total !== upload.totalBytes) throw changed(`the source length changed (${upload.totalBytes} → ${opened.total})`);
    const etag = upload.validator?.etag;
    if (etag !== undefined && opened.etag !== undefined && opened.etag !== etag) throw changed('the source ETag changed');
    return opened;
  }

  /** Reads one response into parts; each full part goes to S3 at once. */
  private async pump(epoch: Epoch, opened: Body, span: Span): Promise<void> {
    const upload = this.upload as unknown as UploadState;
    const { body } = opened;
    const responseEnd = opened.start + opened.length;
    const floor = new RateFloor(this.deps.rateFloor ?? DEFAULT_RATE_FLOOR, this.now);
    try {
      for await (const raw of body) {
        const chunk = raw as Buffer;
        let i = 0;
        while (i < chunk.length) {
          const room = Math.min(responseEnd, span.end) - span.pos;
          if (room <= 0) {
            throw new Interruption(new ArchiverError(ErrorCodes.DownloadLengthMismatch, 'Download sent more bytes than it announced', {
              details: { expected: opened.length, offset: span.pos },
            }));
          }
          if (!span.part) {
            // One whole body: the next part, in order, once a buffer slot is free.
            await this.waiting(epoch.pool.acquire(epoch.ac.signal));
            span.part = this.openPart(epoch, upload, span.pos);
          }
          const part = span.part;
          const at = span.pos - part.start;
          const n = Math.min(chunk.length - i, part.buf.length - at, room);
          chunk.copy(part.buf, at, i, i + n);
          part.received += n;
          i += n;
          span.pos += n;
          this.stats.bytesDownloaded += n;
          this.progress(n);
          if (span.pos - part.start === part.buf.length) span.part = undefined;
          if (part.received === part.buf.length) {
            // Full: committed by whichever stream wrote its last byte.
            epoch.open.delete(part.partNumber);
            await this.waiting(this.commitPart(epoch, part));
            if (span.pos < workEnd(upload) && this.handoverDue()) throw new HandoverDue();
          }
        }
        const slow = floor.add(chunk.length);
        if (slow !== undefined) {
          throw new Interruption(new ArchiverError(ErrorCodes.DownloadFailed, `Download slowed to ${Math.round(slow / 1024)} KiB/s, under the floor; reconnecting`, {
            retryable: true, details: { offset: span.pos, bytesPerSecond: Math.round(slow) },
          }));
        }
      }
    } catch (err) {
      discardBody(body);
      if (err instanceof Interruption || err instanceof Restart || err instanceof HandoverDue || err instanceof ArchiverError) throw err;
      epoch.ac.signal.throwIfAborted();
      if (isAbortError(err)) throw err;
      throw new Interruption(new ArchiverError(ErrorCodes.DownloadFailed, 'Download broke off mid-file', {
        retryable: true, cause: err, details: { offset: span.pos, errorCode: (err as { code?: unknown }).code },
      }));
    }
    if (span.pos !== responseEnd && span.pos < span.end) {
      throw new Interruption(new ArchiverError(ErrorCodes.DownloadLengthMismatch, `Download ended after ${span.pos - opened.start} of ${opened.length} bytes`, {
        retryable: true, details: { received: span.pos - opened.start, expected: opened.length, offset: span.pos },
      }));
    }
  }

  private openPart(epoch: Epoch, upload: UploadState, offset: number): OpenPart {
    const partNumber = Math.floor(offset / upload.partSize) + 1;
    const start = (partNumber - 1) * upload.partSize;
    const size = Math.min(upload.partSize, upload.totalBytes - start);
    return { partNumber, start, buf: epoch.pool.buffer(size), received: offset - start };
  }

  /** A full part: into the pool (hashed in order once stored) and to S3 once an upload slot is free (the memory bound). */
  private async commitPart(epoch: Epoch, part: OpenPart): Promise<void> {
    const upload = this.upload as unknown as UploadState;
    epoch.pool.markFilled(part.partNumber, part.buf);
    if (upload.uploadId === undefined) {
      this.session.keepSingleBody(part.buf);
      epoch.pool.markStored(part.partNumber, true);
      return;
    }
    await this.session.queuePart(upload.uploadId, part.partNumber, part.buf, () => epoch.pool.markStored(part.partNumber));
  }

  /** `firstRange`: the length the first request asked for, when the source answered it as a range (206). */
  private async createUpload(totalBytes: number, validator: SourceValidator | undefined, firstRange: number | undefined): Promise<void> {
    // Never smaller than the first range, so that range lies inside part 1 (see probe).
    const partSize = Math.max(filePartSize(totalBytes, this.minPartSize), firstRange ?? 0);
    const parts = partCount(totalBytes, partSize);
    const parallel = firstRange !== undefined && this.streams > 1 && validator !== undefined && parts > 1;
    if (totalBytes <= partSize && this.req.handoverAt === undefined && this.req.checkpoint === undefined) {
      // Fits in one part and will not be handed over: one PutObject at the end, no multipart upload.
      this.upload = { uploadId: undefined, partSize, totalBytes, parts, validator, parallel: false };
      this.log.debug({ totalBytes, partSize }, 'single PutObject');
      return;
    }
    const uploadId = await this.session.createMultipart();
    this.upload = { uploadId, partSize, totalBytes, parts, validator, parallel };
    this.log.debug({ totalBytes, partSize, parts, parallel }, 'multipart upload created');
  }

  /** Throws away everything received so far and aborts the upload; the next pass starts at byte 0. */
  private async restart(r: Restart): Promise<void> {
    if (r.opts.unsafeResume) {
      this.unsafeRestarts++;
      if (this.unsafeRestarts > this.maxStalled) {
        throw new ArchiverError(r.code, `Gave up on ${this.req.fileName}: ${r.reason}, after ${this.maxStalled} restarts`);
      }
    } else {
      this.stats.restarts++;
      if (this.stats.restarts > this.maxRestarts) {
        throw new ArchiverError(r.code, `Gave up on ${this.req.fileName}: ${r.reason}, after ${this.maxRestarts} restarts`, {
          details: { restarts: this.stats.restarts - 1 },
        });
      }
    }
    this.log.warn({ reason: r.reason, restarts: this.stats.restarts }, 'restarting the file from byte 0');
    if (r.opts.singleStream) this.singleStream = true;
    await this.session.settle();
    await this.session.abort(this.upload?.uploadId);
    this.upload = undefined;
    this.epoch = undefined;
    this.session.reset();
    this.committed = 0;
    this.startOffset = 0;
    this.hasher = await createFileHasher(this.hasher.kind === 'wasm');
    this.progress(-this.reported);
  }

  private handoverDue(): boolean {
    return this.req.handoverAt !== undefined && this.now() >= this.req.handoverAt;
  }

  /** Hands the stored prefix over: parts already on their way to S3 may land (within a bound); the rest is fetched again later. */
  private async handover(): Promise<CopyFileResult> {
    const upload = this.upload;
    if (!upload) {
      throw new ArchiverError(ErrorCodes.DeadlineExceeded, `Handover time reached before ${this.req.fileName} was started`, { retryable: true });
    }
    if (upload.uploadId === undefined) throw new ArchiverError(ErrorCodes.Internal, 'Handover of a single-PUT copy');
    const drain = setTimeout(() => this.ac.abort(new ArchiverError(ErrorCodes.DeadlineExceeded, 'Part uploads did not land in time for the handover')),
      this.deps.handoverDrainMs ?? HANDOVER_DRAIN_MS);
    try {
      await this.session.settle();
    } finally {
      clearTimeout(drain);
    }
    const frontier = this.epoch?.pool.frontier ?? this.committed / upload.partSize + 1;
    const offset = this.epoch?.pool.hashedBytes ?? this.committed;
    const checkpoint = this.checkpointAt(upload, upload.uploadId, frontier, offset);
    // Bytes received beyond the stored prefix are fetched again by the next invocation.
    this.progress(offset - this.startOffset - this.reported);
    this.log.info({ offset, totalBytes: upload.totalBytes, parts: checkpoint.parts.length }, 'handing the file over');
    return { status: 'handover', checkpoint, stats: this.finishStats() };
  }

  private async finish(pool: PartPool | undefined): Promise<CopyFileResult> {
    if (this.range) return this.finishRange(pool);
    const upload = this.upload;
    if (upload) {
      await this.session.drain();
      const hashed = pool?.hashedBytes ?? this.committed;
      const single = upload.uploadId === undefined;
      const stored = single ? (this.session.singleBody ? 1 : 0) : this.session.partsStored;
      const bodyBytes = single ? (this.session.singleBody?.length ?? 0) : hashed;
      if (hashed !== upload.totalBytes || bodyBytes !== upload.totalBytes || stored !== (single ? 1 : upload.parts)) {
        throw new ArchiverError(ErrorCodes.DownloadLengthMismatch, `Received ${hashed} of ${upload.totalBytes} bytes`, {
          details: { hashed, totalBytes: upload.totalBytes, parts: stored, expectedParts: upload.parts },
        });
      }
    }
    const totalBytes = upload?.totalBytes ?? 0;
    const sha256 = this.hasher.digestHex();
    // Run right before the commit, and again if the commit finds an object at the key (commit.ts).
    const beforeCommit = async (): Promise<void> => this.req.beforeCommit?.({ bytes: totalBytes, sha256 }, this.signal);
    await beforeCommit();
    if (upload?.uploadId !== undefined) {
      await this.session.complete(upload.uploadId, beforeCommit);
      await this.session.verify(totalBytes);
    } else {
      await this.session.putSingleObject(sha256, beforeCommit);
      this.stats.singlePut = true;
    }
    // Every part is stored (or the PUT is done): nothing reads the blocks any more.
    pool?.dispose();
    this.log.debug({ bytes: totalBytes, ...this.finishStats() }, 'file copied');
    return { status: 'complete', key: this.req.key, bytes: totalBytes, sha256, stats: this.finishStats() };
  }

  /** A range is done once every one of its parts is stored; the caller completes the upload. */
  private async finishRange(pool: PartPool | undefined): Promise<CopyFileResult> {
    const range = this.range as CopyRangeRequest;
    await this.session.drain();
    const stored = pool?.hashedBytes ?? this.committed;
    if (stored !== range.end) {
      throw new ArchiverError(ErrorCodes.DownloadLengthMismatch, `Received bytes ${range.start}-${stored} of the range ${range.start}-${range.end}`, {
        details: { stored, start: range.start, end: range.end },
      });
    }
    pool?.dispose();
    return { status: 'complete', key: this.req.key, bytes: range.end - range.start, sha256: '', stats: this.finishStats() };
  }

  private progress(delta: number): void {
    if (delta === 0) return;
    this.reported += delta;
    this.req.onProgress?.(delta);
  }

  private throwIfAborted(): void {
    if (this.signal.aborted) throw this.abortError();
  }

  private abortError(): ArchiverError {
    const reason: unknown = this.req.signal?.reason;
    if (reason instanceof ArchiverError && (reason.code === ErrorCodes.DeadlineExceeded || reason.code === ErrorCodes.Aborted)) {
      return new ArchiverError(reason.code, `Copy of ${this.req.fileName} stopped: ${reason.message}`, { cause: reason });
    }
    // Duck-typed: AbortSignal.timeout's DOMException is not `instanceof Error` in every realm.
    const timedOut = (reason as { name?: unknown } | undefined)?.name === 'TimeoutError';
    return new ArchiverError(timedOut ? ErrorCodes.DeadlineExceeded : ErrorCodes.Aborted,
      timedOut ? `Copy of ${this.req.fileName} ran out of time` : `Copy of ${this.req.fileName} was cancelled`, { cause: reason });
  }

  private finalError(err: unknown): ArchiverError {
    if (this.req.signal?.aborted) return this.abortError();
    if (err instanceof Interruption) return err.error;
    if (err instanceof Restart) return new ArchiverError(err.code, err.reason);
    return toArchiverError(err);
  }

  private finishStats(): CopyStats {
    const parts = this.stats.singlePut ? (this.upload ? 1 : 0) : this.session.partsStored;
    return { ...this.stats, parts, durationMs: this.now() - this.startedAt };
  }
}

/** A range copy hashes nothing: the whole file's SHA-256 is computed over the completed object. */
const NO_HASH: FileHasher = { kind: 'node', update: () => undefined, digestHex: () => '', save: () => '' };

/** Stops every stream of a pass; the first reason given is the one that counts. */
function stopEpoch(epoch: Epoch, reason: unknown): void {
  if (epoch.stop !== undefined) return;
  epoch.stop = reason instanceof Error ? reason : toArchiverError(reason);
  epoch.ac.abort(epoch.stop);
}

export function createCopier(deps: CopierDeps): Copier {
  if (deps.partSizeBytes !== undefined && (!Number.isSafeInteger(deps.partSizeBytes) || deps.partSizeBytes < MIN_PART_SIZE)) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, `partSizeBytes must be a whole number of at least ${MIN_PART_SIZE} (S3's minimum part size)`);
  }
  if (deps.streams !== undefined && (!Number.isSafeInteger(deps.streams) || deps.streams < 1)) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, 'streams must be a whole number of at least 1');
  }
  // While the caller checks the bucket and asks GES for links, not when the first copy starts:
  // the SHA-256 compile and the Content-MD5 thread (which also readies part memory).
  warmUpSerialisableHash();
  startMd5Worker();
  return {
    async copyFile(req) {
      assertSafeFileName(req.fileName);
      if (req.link) assertAllowedLink(req.link.url, deps.allowedHosts);
      return new FileCopy(deps, req).run();
    },
    async copyRange(range) {
      assertSafeFileName(range.fileName);
      const req: CopyFileRequest = {
        bucket: range.bucket, key: range.key, fileName: range.fileName, getLink: (signal) => range.getLink(signal),
        ...(range.signal ? { signal: range.signal } : {}),
        ...(range.handoverAt === undefined ? {} : { handoverAt: range.handoverAt }),
        ...(range.onProgress ? { onProgress: (delta: number) => range.onProgress?.(delta) } : {}),
      };
      const copy = new FileCopy(deps, req, range);
      const result = await copy.run();
      if (result.status === 'handover') {
        return { status: 'handover', offset: result.checkpoint.offset, parts: result.checkpoint.parts, stats: result.stats };
      }
      return { status: 'complete', parts: copy.storedParts(), stats: result.stats };
    },
    async abortCheckpoint(cp) {
      await abortMultipart({
        s3: deps.s3, retry: deps.retry, bucket: cp.bucket, key: cp.key, log: deps.logger.child({ component: 'copier', key: cp.key }),
      }, cp.uploadId);
    },
  };
}

/** Where this copy's bytes end: the file's end, or a range's (its `parts` stop before the file's last). */
function workEnd(upload: UploadState): number {
  return Math.min(upload.totalBytes, upload.parts * upload.partSize);
}

/** Segments not claimed yet from file offset `from` on (each part is cut at SEGMENT_BYTES from its start). */
function segmentsLeft(upload: UploadState, from: number): number {
  let count = 0;
  for (let pos = from; pos < workEnd(upload);) {
    const partStart = Math.floor(pos / upload.partSize) * upload.partSize;
    const partEnd = Math.min(partStart + upload.partSize, upload.totalBytes);
    count += Math.ceil((partEnd - pos) / SEGMENT_BYTES);
    pos = partEnd;
  }
  return count;
}
