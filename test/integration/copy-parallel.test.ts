// Parallel ranged downloads of one file (several streams), against the GES/OBS emulator and
// Swift, and against a bare node:http server for sources that misbehave in ways OBS does not:
// no validator, weak ETags, Range ignored, empty or overlapping 206 answers, trickling bodies.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeleteObjectCommand, ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'undici';
import { copierMemoryBound, createCopier, type CopierDeps, type CopyFileRequest } from '../../lib/copy/copier.js';
import { MiB } from '../../lib/copy/part-size.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { failure, expectNoTrace as expectNoTraceIn, gesLinkSource, type GesLinkSource, useCopyStack } from '../support/copy.js';
import { getObjectBytes, s3Client } from '../support/aws.js';
import { type Emulator } from '../emulator/index.js';

const PART = 5 * MiB;
const G = 'graph-p';
const B = 'backup-p';
const BIG = { name: 'big.bin', bytes: 33 * MiB + 4321 }; // 7 parts, the last one short

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 5_000 });

let s3: S3Client;
let emu: Emulator;
let token: string;
let bucket: string;
let dispatcher: Agent;

useCopyStack('copy-par', { graphs: [{ id: G, backups: [{ id: B, files: [BIG] }] }] }, (stack) => ({ s3, emu, token, bucket, dispatcher } = stack), { noUploadsLeft: true });

function deps(overrides: Partial<CopierDeps> = {}): CopierDeps {
  return {
    s3, logger: silentLogger(), retry: fastRetry, allowedHosts: ['127.0.0.1'], dispatcher,
    partSizeBytes: PART, partConcurrency: 2, streams: 4, ...overrides,
  };
}

function gesLinks(name: string, hook?: (call: number) => void): GesLinkSource {
  return gesLinkSource(emu, token, G, B, name, hook);
}

let keyCounter = 0;
const freshKey = (name: string): string => `ges-backups/${G}/${B}/${++keyCounter}/${name}`;


function expectNoTrace(key: string): Promise<void> {
  return expectNoTraceIn(bucket, key);
}

describe('parallel ranged streams against the emulator and Swift', () => {
  it('fetches parts over several connections and stores exactly the file, hashed in order', async () => {
    // Prepare: a far source, 8 MiB/s per connection: the download is the limit, so streams are added.
    const key = freshKey(BIG.name);
    emu.faults.throttleDownloads(8 * MiB);
    // Act
    const result = await createCopier(deps()).copyFile({ bucket, key, fileName: BIG.name, getLink: gesLinks(BIG.name).getLink });
    // Assess
    expect(result).toMatchObject({ status: 'complete', bytes: BIG.bytes, sha256: emu.fileSha256(G, B, BIG.name) });
    expect(result.stats).toMatchObject({ streams: 4, parts: 7, resumes: 0, restarts: 0 });
    expect(emu.stats.rangeRequests).toBe(7); // one range per part, the first one included
    expect(emu.stats.downloadBytes.get(BIG.name)).toBe(BIG.bytes); // every byte fetched once
    expect(sha256(await getObjectBytes(bucket, key))).toBe(emu.fileSha256(G, B, BIG.name));
  });

  it('keeps one stream while the store is the limit (no memory spent on streams that would only wait)', async () => {
    // Prepare: every part upload takes at least 300 ms; the source is fast.
    const slow = s3Client();
    slow.middlewareStack.add((next, context) => async (args) => {
      if (context.commandName === 'UploadPartCommand') await new Promise((r) => setTimeout(r, 300));
      return next(args);
    }, { step: 'initialize', name: 'slowUploadsForTest' });
    const key = freshKey(BIG.name);
    try {
      // Act
      const result = await createCopier(deps({ s3: slow, partConcurrency: 1 })).copyFile({ bucket, key, fileName: BIG.name, getLink: gesLinks(BIG.name).getLink });
      // Assess
      expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, BIG.name) });
      expect(result.stats.streams).toBe(1);
    } finally {
      slow.destroy();
    }
  });

  it('resumes a range that breaks off from the exact byte, on that stream only', async () => {
    // Prepare
    const key = freshKey(BIG.name);
    emu.faults.truncateDownload(BIG.name, 2 * MiB + 5, 3);
    // Act
    const result = await createCopier(deps()).copyFile({ bucket, key, fileName: BIG.name, getLink: gesLinks(BIG.name).getLink });
    // Assess
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, BIG.name) });
    expect(result.stats.resumes).toBe(3);
    expect(result.stats.restarts).toBe(0);
    expect(emu.stats.downloadBytes.get(BIG.name)).toBe(BIG.bytes);
  });

  it('refreshes a refused link once for all streams', async () => {
    // Prepare: every link issued so far is revoked when a range has sent 3 MiB, while 4 streams are busy.
    const key = freshKey(BIG.name);
    const gl = gesLinks(BIG.name);
    emu.faults.expireLinksAfterBytes(BIG.name, 3 * MiB);
    // Act
    const result = await createCopier(deps()).copyFile({ bucket, key, fileName: BIG.name, getLink: gl.getLink });
    // Assess
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, BIG.name) });
    expect(gl.calls()).toBe(2);
    expect(result.stats.linkRefreshes).toBe(1);
    expect(result.stats.restarts).toBe(0);
  });

  it('restarts every stream from byte 0 when the source changes, and stores the new content', async () => {
    // Prepare: links die mid-file and the file changes before the fresh link is issued.
    const key = freshKey(BIG.name);
    const gl = gesLinks(BIG.name, (call) => {
      if (call === 2) emu.faults.changeFile(G, B, BIG.name, 'changed');
    });
    emu.faults.expireLinksAfterBytes(BIG.name, 3 * MiB);
    // Act
    const result = await createCopier(deps()).copyFile({ bucket, key, fileName: BIG.name, getLink: gl.getLink });
    // Assess
    const newSha = emu.fileSha256(G, B, BIG.name);
    expect(result).toMatchObject({ status: 'complete', sha256: newSha });
    expect(result.stats.restarts).toBe(1);
    expect(sha256(await getObjectBytes(bucket, key))).toBe(newSha);
  });

  it('drops a trickling body under the rate floor and resumes it on a new connection', async () => {
    // Prepare: bodies paced at 256 KiB/s; the floor wants 1 MiB/s over 300 ms windows.
    const key = freshKey(BIG.name);
    emu.faults.throttleDownloads(256 * 1024);
    setTimeout(() => emu.faults.throttleDownloads(null), 1_500);
    // Act
    const result = await createCopier(deps({ rateFloor: { bytesPerSecond: MiB, windowMs: 300 } })).copyFile({
      bucket, key, fileName: BIG.name, getLink: gesLinks(BIG.name).getLink,
    });
    // Assess
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, BIG.name) });
    expect(result.stats.resumes).toBeGreaterThanOrEqual(1);
    expect(result.stats.restarts).toBe(0);
  });
});

describe('the Lambda deadline never throws a continued upload away', () => {
  it('saves a checkpoint instead of aborting when the deadline fires mid-part, and the upload can be finished', async () => {
    // Prepare: invocation 1 hands over early (handoverAt already reached after the first parts).
    const key = freshKey(BIG.name);
    let clockShift = 0;
    const now = (): number => Date.now() + clockShift;
    let got = 0;
    const one = await createCopier(deps({ now, streams: 2 })).copyFile({
      bucket, key, fileName: BIG.name, getLink: gesLinks(BIG.name).getLink, handoverAt: Date.now() + 3_600_000,
      onProgress: (d) => { got += d; if (got >= 11 * MiB) clockShift = 7_200_000; },
    });
    if (one.status !== 'handover') throw new Error('expected a handover');
    expect(one.checkpoint.offset % PART).toBe(0);
    expect(one.checkpoint.offset).toBeGreaterThanOrEqual(PART);
    // Act: invocation 2 continues from the checkpoint over a slow link; its deadline (the signal) fires mid-part.
    emu.faults.throttleDownloads(2 * MiB);
    const deadline = new AbortController();
    setTimeout(() => deadline.abort(new ArchiverError(ErrorCodes.DeadlineExceeded, 'The Lambda deadline is near')), 1_500);
    const two = await createCopier(deps({ streams: 2 })).copyFile({
      bucket, key, fileName: BIG.name, getLink: gesLinks(BIG.name).getLink, checkpoint: one.checkpoint,
      handoverAt: Date.now() + 3_600_000, signal: deadline.signal,
    });
    // Assess: a checkpoint, not an abort; the upload is still there with the checkpoint's parts.
    if (two.status !== 'handover') throw new Error('expected a checkpoint after the deadline');
    expect(two.checkpoint.uploadId).toBe(one.checkpoint.uploadId);
    expect(two.checkpoint.offset).toBeGreaterThanOrEqual(one.checkpoint.offset);
    const listed = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: two.checkpoint.uploadId }));
    expect((listed.Parts ?? []).length).toBeGreaterThanOrEqual(two.checkpoint.parts.length);
    // And invocation 3 finishes the same upload with the whole file's SHA-256.
    emu.faults.throttleDownloads(null);
    const three = await createCopier(deps()).copyFile({
      bucket, key, fileName: BIG.name, getLink: gesLinks(BIG.name).getLink, checkpoint: two.checkpoint, handoverAt: Date.now() + 3_600_000,
    });
    expect(three).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, BIG.name) });
    expect(sha256(await getObjectBytes(bucket, key))).toBe(emu.fileSha256(G, B, BIG.name));
  });

  it('a deadline without handover (the CLI) still aborts the upload and leaves nothing', async () => {
    // Prepare
    const key = freshKey(BIG.name);
    emu.faults.throttleDownloads(4 * MiB);
    // Act
    const err = await failure(createCopier(deps()).copyFile({
      bucket, key, fileName: BIG.name, getLink: gesLinks(BIG.name).getLink,
      signal: AbortSignal.timeout(1_200),
    }));
    // Assess
    expect(err.code).toBe(ErrorCodes.DeadlineExceeded);
    await expectNoTrace(key);
  });

  it('on a versioned bucket, a failed copy deletes only the version it created, never the key', async () => {
    // Prepare: the store reports a version for the Complete and a wrong length after it; deletes are recorded.
    const versioned = s3Client();
    const deletes: unknown[] = [];
    versioned.middlewareStack.add((next, context) => async (args) => {
      if (context.commandName === 'DeleteObjectCommand') {
        deletes.push(args.input);
        return { output: { $metadata: {} }, response: {} };
      }
      const out = await next(args);
      if (context.commandName === 'CompleteMultipartUploadCommand') (out.output as { VersionId?: string }).VersionId = 'v-ours';
      if (context.commandName === 'HeadObjectCommand') (out.output as { ContentLength?: number }).ContentLength = 1;
      return out;
    }, { step: 'initialize', name: 'versionedStoreForTest' });
    const key = freshKey(BIG.name);
    try {
      // Act
      const err = await failure(createCopier(deps({ s3: versioned })).copyFile({ bucket, key, fileName: BIG.name, getLink: gesLinks(BIG.name).getLink }));
      // Assess
      expect(err.code).toBe(ErrorCodes.VerifyFailed);
      expect(deletes).toEqual([expect.objectContaining({ Key: key, VersionId: 'v-ours' })]);
    } finally {
      versioned.destroy();
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    }
  });

  it('states its memory bound as (streams + upload slots) x part size, within the part-buffer budget', () => {
    expect(copierMemoryBound({ streams: 4, partConcurrency: 4, partSizeBytes: 8 * MiB })).toBe(64 * MiB);
    // 200 GiB now gets 32 MiB parts (they grow with the file), 4 of them in the 128 MiB budget.
    expect(copierMemoryBound({ streams: 1, partConcurrency: 4, partSizeBytes: 8 * MiB }, 200 * 1024 * MiB)).toBe(4 * 32 * MiB);
  });
});

// ---------------------------------------------------------------------------------------------
// A bare download server with full single-range support and switchable misbehaviour.

interface BareOptions {
  etag?: string | undefined;
  lastModified?: string | undefined;
  ignoreRange?: boolean;
  /** Every ranged answer is an empty 206. */
  emptyPartial?: boolean;
  /** Ranged answers start this many bytes before the byte asked for. */
  overlapBy?: number;
  /** The first N responses break off after this many bytes. */
  cut?: { afterBytes: number; times: number };
  /** Paces every response to this rate. */
  bytesPerSecond?: number;
}

interface Bare {
  base: string;
  requests: { range: string | undefined; ifMatch: string | undefined; ifUnmodifiedSince: string | undefined }[];
  close(): Promise<void>;
}

async function bareServer(content: Buffer, o: BareOptions): Promise<Bare> {
  const requests: Bare['requests'] = [];
  let cuts = o.cut?.times ?? 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return typeof v === 'string' ? v : undefined;
    };
    requests.push({ range: header('range'), ifMatch: header('if-match'), ifUnmodifiedSince: header('if-unmodified-since') });
    const m = /^bytes=(\d+)-(\d*)$/.exec(header('range') ?? '');
    const headers: Record<string, string> = {};
    if (o.etag !== undefined) headers['etag'] = o.etag;
    if (o.lastModified !== undefined) headers['last-modified'] = o.lastModified;
    if (!m || o.ignoreRange) {
      send(res, 200, headers, content);
      return;
    }
    if (o.emptyPartial) {
      res.writeHead(206, { ...headers, 'content-length': '0', 'content-range': `bytes ${m[1]}-${m[1]}/${content.length}` }).end();
      return;
    }
    const start = Math.max(0, Number(m[1]) - (o.overlapBy ?? 0));
    const end = m[2] === '' ? content.length - 1 : Math.min(Number(m[2]), content.length - 1);
    send(res, 206, { ...headers, 'content-range': `bytes ${start}-${end}/${content.length}` }, content.subarray(start, end + 1));
  });
  const send = (res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): void => {
    res.writeHead(status, { ...headers, 'content-length': String(body.length) });
    if (cuts > 0 && o.cut && body.length > o.cut.afterBytes) {
      cuts--;
      res.write(body.subarray(0, o.cut.afterBytes), () => res.destroy());
      return;
    }
    if (o.bytesPerSecond === undefined) {
      res.end(body);
      return;
    }
    const step = 64 * 1024;
    const started = Date.now();
    const pace = (sent: number): void => {
      if (res.destroyed) return;
      if (sent >= body.length) {
        res.end();
        return;
      }
      res.write(body.subarray(sent, sent + step));
      const due = started + ((sent + step) / (o.bytesPerSecond ?? 1)) * 1000;
      setTimeout(() => pace(sent + step), Math.max(0, due - Date.now()));
    };
    pace(0);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

describe('parallel streams against sources that misbehave', () => {
  const content = Buffer.alloc(17 * MiB + 99);
  for (let i = 0; i + 4 <= content.length; i += 4096) content.writeUInt32LE(i ^ 0x5a5a5a5a, i);
  const link = (base: string): CopyFileRequest['getLink'] => () => Promise.resolve({ url: `${base}/f`, expiresAt: Date.now() + 3_600_000 });

  it('falls back to one stream when the source ignores Range (200 to the first ranged request)', async () => {
    // Prepare
    const server = await bareServer(content, { etag: '"v1"', ignoreRange: true });
    const key = freshKey('norange.bin');
    try {
      // Act
      const result = await createCopier(deps()).copyFile({ bucket, key, fileName: 'norange.bin', getLink: link(server.base) });
      // Assess
      expect(result).toMatchObject({ status: 'complete', bytes: content.length, sha256: sha256(content) });
      expect(result.stats).toMatchObject({ streams: 1, restarts: 0 });
      expect(server.requests).toHaveLength(1);
      expect(sha256(await getObjectBytes(bucket, key))).toBe(sha256(content));
    } finally {
      await server.close();
    }
  });

  it('uses If-Unmodified-Since when the source has a weak ETag but a Last-Modified', async () => {
    // Prepare: a slow source (4 MiB/s per connection), so streams are added.
    const lastModified = new Date(Date.UTC(2026, 0, 2, 3, 4, 5)).toUTCString();
    const server = await bareServer(content, { etag: 'W/"weak"', lastModified, bytesPerSecond: 4 * MiB });
    const key = freshKey('weak.bin');
    try {
      // Act
      const result = await createCopier(deps()).copyFile({ bucket, key, fileName: 'weak.bin', getLink: link(server.base) });
      // Assess
      expect(result).toMatchObject({ status: 'complete', sha256: sha256(content) });
      expect(result.stats.streams).toBeGreaterThan(1);
      const later = server.requests.slice(1);
      expect(later.length).toBeGreaterThan(0);
      expect(later.every((r) => r.ifMatch === undefined && r.ifUnmodifiedSince === lastModified)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('with no validator at all, reads one stream and starts again from byte 0 rather than resume', async () => {
    // Prepare: no ETag, no Last-Modified; the first plain body breaks off mid-file.
    const server = await bareServer(content, { cut: { afterBytes: 7 * MiB, times: 1 } });
    const key = freshKey('novalidator.bin');
    try {
      // Act
      const result = await createCopier(deps()).copyFile({ bucket, key, fileName: 'novalidator.bin', getLink: link(server.base) });
      // Assess
      expect(result).toMatchObject({ status: 'complete', sha256: sha256(content) });
      expect(result.stats.streams).toBe(1);
      // The first request probes with a range, then plain GETs only: never a Range after byte 0 without a validator.
      expect(server.requests.slice(1).map((r) => r.range)).toEqual([undefined, undefined]);
      expect(sha256(await getObjectBytes(bucket, key))).toBe(sha256(content));
    } finally {
      await server.close();
    }
  });

  it('an empty 206 is a stalled attempt: the copy fails within a bounded number of requests and leaves nothing', async () => {
    // Prepare
    const server = await bareServer(content, { etag: '"v1"', emptyPartial: true });
    const key = freshKey('empty206.bin');
    try {
      // Act
      const err = await failure(createCopier(deps({ maxStalledCycles: 4 })).copyFile({ bucket, key, fileName: 'empty206.bin', getLink: link(server.base) }));
      // Assess
      expect(err.code).toBe(ErrorCodes.DownloadFailed);
      expect(err.message).toContain('empty 206');
      expect(server.requests.length).toBeLessThanOrEqual(5);
      await expectNoTrace(key);
    } finally {
      await server.close();
    }
  });

  it('an overlapping 206 is never mixed into the file: stalled attempts, bounded, nothing stored', async () => {
    // Prepare: every ranged answer starts 10 bytes early.
    const server = await bareServer(content, { etag: '"v1"', overlapBy: 10 });
    const key = freshKey('overlap.bin');
    try {
      // Act
      const err = await failure(createCopier(deps({ maxStalledCycles: 3 })).copyFile({ bucket, key, fileName: 'overlap.bin', getLink: link(server.base) }));
      // Assess
      expect(err.code).toBe(ErrorCodes.DownloadFailed);
      expect(server.requests.length).toBeLessThanOrEqual(1 + 4 * 4);
      await expectNoTrace(key);
    } finally {
      await server.close();
    }
  });
});
