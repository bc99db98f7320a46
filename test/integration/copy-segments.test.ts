// Parts bigger than a segment: several streams fill one part buffer (each its own segment, at its
// own offset), resumes from the exact byte inside a segment, the part-buffer bound, handovers with
// segments in flight, and checkpoints whose part size differs from today's choice. Against the
// GES/OBS emulator and Swift; an undici interceptor on the copier's dispatcher records (and, for
// one test, delays) the download requests.
import { createHash } from 'node:crypto';
import { ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import { Agent, type Dispatcher } from 'undici';
import { createCopier, type CopierDeps, type CopyCheckpoint, type CopyFileRequest } from '../../lib/copy/copier.js';
import { sharedBuffer } from '../../lib/copy/md5-worker.js';
import { MiB, SEGMENT_BYTES } from '../../lib/copy/part-size.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { gesLinkSource, useCopyStack } from '../support/copy.js';
import { getObjectBytes, s3Client } from '../support/aws.js';
import { type Emulator } from '../emulator/index.js';

const PART = 16 * MiB; // the minimum part size here: two 8 MiB segments per part
const G = 'graph-s';
const B = 'backup-s';
const FILE = { name: 'seg.bin', bytes: 56 * MiB + 4321 }; // parts 16, 16, 16 and 8 MiB + 4321: segments 2, 2, 2, 2

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 5_000 });

let s3: S3Client;
let emu: Emulator;
let token: string;
let bucket: string;
let agent: Agent;

useCopyStack('copy-seg', { graphs: [{ id: G, backups: [{ id: B, files: [FILE] }] }] }, (stack) => ({ s3, emu, token, bucket, dispatcher: agent } = stack), { noUploadsLeft: true });

/** The download requests a dispatcher saw: the first byte each asked for, and the order their bodies ended in. */
interface Recorder {
  dispatcher: Dispatcher;
  starts: number[];
  ended: number[];
}

/** `agent` with every request's Range recorded; a request whose Range starts at an offset `delayMs` returns for is held that long first. */
function recorder(delayMs: (start: number) => number = () => 0): Recorder {
  const starts: number[] = [];
  const ended: number[] = [];
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    const headers = opts.headers as Record<string, string> | undefined;
    const m = /^bytes=(\d+)-/.exec(headers?.['range'] ?? '');
    const start = m ? Number(m[1]) : 0;
    starts.push(start);
    const wrapped: Dispatcher.DispatchHandler = {
      onRequestStart: (c, ctx) => handler.onRequestStart?.(c, ctx),
      onResponseStart: (c, status, h, msg) => handler.onResponseStart?.(c, status, h, msg),
      onResponseData: (c, chunk) => handler.onResponseData?.(c, chunk),
      onResponseEnd: (c, trailers) => {
        ended.push(start);
        handler.onResponseEnd?.(c, trailers);
      },
      onResponseError: (c, err) => handler.onResponseError?.(c, err),
    };
    const ms = delayMs(start);
    if (ms <= 0) return dispatch(opts, wrapped);
    setTimeout(() => dispatch(opts, wrapped), ms);
    return true;
  });
  return { dispatcher, starts, ended };
}

function deps(overrides: Partial<CopierDeps> = {}): CopierDeps {
  return {
    s3, logger: silentLogger(), retry: fastRetry, allowedHosts: ['127.0.0.1'], dispatcher: agent,
    partSizeBytes: PART, partConcurrency: 2, streams: 4, ...overrides,
  };
}

function links(): CopyFileRequest['getLink'] {
  return gesLinkSource(emu, token, G, B, FILE.name).getLink;
}

/**
 * An S3 client that fires `deadline` (as the Lambda deadline would) once part 1 is stored: the
 * stored prefix is then part 1 at least, and the streams are in the middle of later segments.
 */
function deadlineOncePart1Stored(deadline: AbortController): S3Client {
  const client = s3Client();
  client.middlewareStack.add((next, context) => async (args) => {
    const out = await next(args);
    if (context.commandName === 'UploadPartCommand' && (args.input as { PartNumber?: number }).PartNumber === 1) {
      // A moment later: the copier has recorded part 1 as stored by then.
      setTimeout(() => deadline.abort(new ArchiverError(ErrorCodes.DeadlineExceeded, 'The Lambda deadline is near')), 100);
    }
    return out;
  }, { step: 'initialize', name: 'deadlineOncePart1StoredForTest' });
  return client;
}

let keyCounter = 0;
const freshKey = (): string => `ges-backups/${G}/${B}/${++keyCounter}/${FILE.name}`;

async function partSizes(key: string, uploadId: string): Promise<number[]> {
  const listed = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
  return (listed.Parts ?? []).map((p) => p.Size ?? 0);
}

describe('several streams fill one part', () => {
  it('takes segments, not parts: the segments of one part arrive out of order, and the SHA-256 is the file\'s', async () => {
    // Prepare: 16 MiB/s per connection (a far source: streams are added); the first segment of
    // parts 2-4 waits 1.5 s before its request goes out, so the second segment, on another
    // stream, is complete first.
    const key = freshKey();
    emu.faults.throttleDownloads(16 * MiB);
    const rec = recorder((start) => (start > 0 && start % PART === 0 ? 1_500 : 0));
    // Act
    const result = await createCopier(deps({ dispatcher: rec.dispatcher })).copyFile({ bucket, key, fileName: FILE.name, getLink: links() });
    // Assess
    expect(result).toMatchObject({ status: 'complete', bytes: FILE.bytes, sha256: emu.fileSha256(G, B, FILE.name) });
    expect(result.stats).toMatchObject({ parts: 4, resumes: 0, restarts: 0 });
    expect(result.stats.streams).toBeGreaterThan(1);
    // One request for part 1 (the first request asks for the expected first part), then one per 8 MiB segment.
    expect([...rec.starts].sort((a, b) => a - b)).toEqual([0, 16, 24, 32, 40, 48, 56].map((m) => m * MiB));
    const secondOfPart2 = rec.ended.indexOf(PART + SEGMENT_BYTES);
    const firstOfPart2 = rec.ended.indexOf(PART);
    expect(secondOfPart2).toBeGreaterThanOrEqual(0);
    expect(secondOfPart2).toBeLessThan(firstOfPart2);
    expect(emu.stats.downloadBytes.get(FILE.name)).toBe(FILE.bytes);
    expect(sha256(await getObjectBytes(bucket, key))).toBe(emu.fileSha256(G, B, FILE.name));
  });

  it('resumes a segment that breaks off from its exact byte, not from the part or segment start', async () => {
    // Prepare: the first four responses break off after 3 MiB + 7 bytes each.
    const key = freshKey();
    const cut = 3 * MiB + 7;
    emu.faults.truncateDownload(FILE.name, cut, 4);
    const rec = recorder();
    // Act
    const result = await createCopier(deps({ dispatcher: rec.dispatcher })).copyFile({ bucket, key, fileName: FILE.name, getLink: links() });
    // Assess: every byte was sent exactly once, and each resume asked for the byte after the cut.
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, FILE.name) });
    expect(result.stats).toMatchObject({ resumes: 4, restarts: 0 });
    expect(emu.stats.downloadBytes.get(FILE.name)).toBe(FILE.bytes);
    const inside = rec.starts.filter((s) => s % SEGMENT_BYTES !== 0);
    expect(inside).toHaveLength(4);
    for (const s of inside) expect(rec.starts).toContain(s - cut);
  });
});

describe('the first request', () => {
  it('asks for the first part the size estimate implies, and a wrong estimate costs no resume', async () => {
    // Prepare: GES says about 1 GiB (32 MiB parts); the file is 56 MiB (16 MiB parts by itself).
    const key = freshKey();
    const rec = recorder();
    const ges = links();
    const getLink: CopyFileRequest['getLink'] = async (signal) => ({ ...(await ges(signal)), sizeEstimateBytes: 1024 * MiB });
    // Act
    const result = await createCopier(deps({ dispatcher: rec.dispatcher })).copyFile({ bucket, key, fileName: FILE.name, getLink });
    // Assess: part 1 is the 32 MiB the first request asked for; the rest comes as 8 MiB segments,
    // or in one range while the stream is alone (a near source: the ramp may add none).
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, FILE.name) });
    expect(result.stats).toMatchObject({ parts: 2, resumes: 0, restarts: 0 });
    const starts = [...rec.starts].sort((a, b) => a - b);
    expect(starts.slice(0, 2)).toEqual([0, 32 * MiB]);
    expect(starts.filter((s) => ![0, 32, 40, 48, 56].includes(s / MiB))).toEqual([]);
    expect(emu.stats.downloadBytes.get(FILE.name)).toBe(FILE.bytes);
  });
});

describe('a lone stream', () => {
  it('asks for the rest of each part in one range while no other stream runs', async () => {
    // Prepare: a near source and a store that takes 300 ms per part, so the stream mostly waits
    // for the store and the ramp adds no stream (the download is not the limit).
    const key = freshKey();
    const rec = recorder();
    const store = s3Client();
    store.middlewareStack.add((next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand') await new Promise((resolve) => setTimeout(resolve, 300));
      return next(args);
    }, { step: 'initialize', name: 'slowPartsForTest' });
    // Act
    const result = await createCopier(deps({ s3: store, dispatcher: rec.dispatcher })).copyFile({ bucket, key, fileName: FILE.name, getLink: links() }).finally(() => store.destroy());
    // Assess: one request per part (16 MiB parts: a segment would be 8 MiB), every byte once.
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, FILE.name) });
    expect(result.stats).toMatchObject({ parts: 4, resumes: 0, restarts: 0, streams: 1 });
    expect([...rec.starts].sort((a, b) => a - b)).toEqual([0, 16, 32, 48].map((m) => m * MiB));
    expect(emu.stats.downloadBytes.get(FILE.name)).toBe(FILE.bytes);
    expect(sha256(await getObjectBytes(bucket, key))).toBe(emu.fileSha256(G, B, FILE.name));
  });
});

describe('the part-buffer bound', () => {
  it('never makes more part buffers than the budget allows, however many streams fill them', async () => {
    // Prepare: a 32 MiB budget is two 16 MiB buffers; 4 streams on a far source; a counting allocator.
    const key = freshKey();
    emu.faults.throttleDownloads(12 * MiB);
    const made: number[] = [];
    const allocatePartBuffer = (size: number): Buffer => {
      made.push(size);
      return sharedBuffer(size);
    };
    // Act
    const result = await createCopier(deps({ partBufferBudgetBytes: 2 * PART, allocatePartBuffer })).copyFile({
      bucket, key, fileName: FILE.name, getLink: links(),
    });
    // Assess: two 16 MiB blocks, recycled; the shorter last part is a view of one of them.
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, FILE.name) });
    expect(result.stats.streams).toBeGreaterThan(2);
    expect(made).toEqual([PART, PART]);
  });
});

describe('handover and checkpoints with segments', () => {
  it('hands over at the stored prefix with segments in flight, and the checkpoint resumes', async () => {
    // Prepare: a far source (streams are added); the deadline comes once part 1 is stored (one
    // stream fills it, while the others fill later parts segment by segment).
    const key = freshKey();
    emu.faults.throttleDownloads(6 * MiB);
    const deadline = new AbortController();
    const store = deadlineOncePart1Stored(deadline);
    // Act
    const one = await createCopier(deps({ s3: store })).copyFile({
      bucket, key, fileName: FILE.name, getLink: links(), handoverAt: Date.now() + 3_600_000, signal: deadline.signal,
    }).finally(() => store.destroy());
    if (one.status !== 'handover') throw new Error('expected a handover');
    const cp = one.checkpoint;
    // Assess: the checkpoint is the stored prefix, at a part boundary, with the parts below it;
    // bytes beyond it had arrived (segments in flight) and are fetched again by the next run.
    expect(one.stats.streams).toBeGreaterThan(1);
    expect(emu.stats.downloadBytes.get(FILE.name)).toBeGreaterThan(cp.offset);
    expect(cp.partSize).toBe(PART);
    expect(cp.offset % PART).toBe(0);
    expect(cp.offset).toBeGreaterThanOrEqual(PART);
    expect(cp.parts.map((p) => p.partNumber)).toEqual(Array.from({ length: cp.offset / PART }, (_, i) => i + 1));
    emu.faults.throttleDownloads(null);
    const two = await createCopier(deps()).copyFile({ bucket, key, fileName: FILE.name, getLink: links(), checkpoint: cp, handoverAt: Date.now() + 3_600_000 });
    expect(two).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, FILE.name) });
    expect(sha256(await getObjectBytes(bucket, key))).toBe(emu.fileSha256(G, B, FILE.name));
  });

  it('continues a checkpoint with 8 MiB parts (an older choice) in 8 MiB parts, fetched as segments', async () => {
    // Prepare: invocation 1 with an 8 MiB minimum hands over once its first part is stored.
    const key = freshKey();
    emu.faults.throttleDownloads(6 * MiB);
    const deadline = new AbortController();
    const store = deadlineOncePart1Stored(deadline);
    const one = await createCopier(deps({ s3: store, partSizeBytes: 8 * MiB })).copyFile({
      bucket, key, fileName: FILE.name, getLink: links(), handoverAt: Date.now() + 3_600_000, signal: deadline.signal,
    }).finally(() => store.destroy());
    if (one.status !== 'handover') throw new Error('expected a handover');
    const cp: CopyCheckpoint = one.checkpoint;
    expect(cp.partSize).toBe(8 * MiB);
    expect(cp.offset).toBeLessThan(FILE.bytes);
    emu.faults.throttleDownloads(null);
    // Act: invocation 2 would choose 16 MiB parts for this file; it must keep the checkpoint's.
    const two = await createCopier(deps()).copyFile({
      bucket, key, fileName: FILE.name, getLink: links(), checkpoint: cp, handoverAt: Date.now() + 3_600_000,
      beforeCommit: async () => {
        // Assess (before the commit): every part of the upload is 8 MiB but the last.
        const sizes = await partSizes(key, cp.uploadId);
        expect(sizes).toEqual([...Array.from({ length: 7 }, () => 8 * MiB), FILE.bytes - 7 * 8 * MiB]);
      },
    });
    // Assess
    expect(two).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, FILE.name) });
    expect(sha256(await getObjectBytes(bucket, key))).toBe(emu.fileSha256(G, B, FILE.name));
  });
});
