// The stream copier against the real local S3 (Swift s3api, started by jest's global setup) and
// real download servers: the GES/OBS emulator, and a tiny node:http server for the behaviours
// the emulator does not have (a server that ignores Range, redirects, raw URL capture).
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AbortMultipartUploadCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'undici';
import { createCopier, type CopierDeps, type CopyCheckpoint, type FileLink } from '../../lib/copy/copier.js';
import { MiB } from '../../lib/copy/part-size.js';
import { ErrorCodes } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { failure, expectNoTrace as expectNoTraceIn, gesLinkSource, type GesLinkSource, useCopyStack } from '../support/copy.js';
import { getObjectBytes, listInProgressUploads, listKeys } from '../support/aws.js';
import { type Emulator } from '../emulator/index.js';

const PART = 5 * MiB; // S3's (and Swift's) minimum part size: the smallest parts a real store takes
const G = 'graph-1';
const B = 'backup-1';
const FILES = {
  big: { name: 'data.bin', bytes: 23 * MiB + 12_345 }, // 5 parts, the last one short
  empty: { name: 'empty.xml', bytes: 0 },
  small: { name: 'schema.xml', bytes: 1_000 },
};

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 5_000 });

let s3: S3Client;
let emu: Emulator;
let token: string;
let bucket: string;
let dispatcher: Agent;

useCopyStack('copy', { graphs: [{ id: G, backups: [{ id: B, files: Object.values(FILES) }] }] }, (stack) => ({ s3, emu, token, bucket, dispatcher } = stack));

function deps(overrides: Partial<CopierDeps> = {}): CopierDeps {
  return {
    s3, logger: silentLogger(), retry: fastRetry, allowedHosts: ['127.0.0.1'], dispatcher,
    partSizeBytes: PART, partConcurrency: 2, ...overrides,
  };
}

function gesLinks(name: string, hook?: (call: number) => void): GesLinkSource {
  return gesLinkSource(emu, token, G, B, name, hook);
}

let keyCounter = 0;
const freshKey = (name: string): string => `ges-backups/${G}/${B}/${++keyCounter}/${name}`;

async function objectExists(key: string): Promise<boolean> {
  return (await listKeys(bucket, key)).includes(key);
}

function expectNoTrace(key: string): Promise<void> {
  return expectNoTraceIn(bucket, key);
}


afterEach(async () => {
  // Whatever a test did, no copy may leave a multipart upload behind. Leftovers are removed
  // first, so one failure does not fail every later test too.
  const left = await listInProgressUploads(bucket);
  await Promise.all(left.map((u) => s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }))));
  expect(left.map((u) => u.Key)).toEqual([]);
});

describe('copier against Swift and the GES emulator', () => {
  it('copies a multi-part file and stores exactly its bytes', async () => {
    // Prepare
    const key = freshKey(FILES.big.name);
    const { getLink } = gesLinks(FILES.big.name);
    let progress = 0;
    // Act
    const result = await createCopier(deps()).copyFile({
      bucket, key, fileName: FILES.big.name, getLink, onProgress: (d) => { progress += d; }, metadata: { 'graph-id': G },
    });
    // Assess
    const expectedSha = emu.fileSha256(G, B, FILES.big.name);
    expect(result).toMatchObject({ status: 'complete', key, bytes: FILES.big.bytes, sha256: expectedSha });
    expect(result.stats).toMatchObject({ parts: 5, resumes: 0, restarts: 0, linkRefreshes: 0, bytesDownloaded: FILES.big.bytes });
    expect(progress).toBe(FILES.big.bytes);
    expect(sha256(await getObjectBytes(bucket, key))).toBe(expectedSha);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.Metadata).toMatchObject({ 'graph-id': G });
    expect(emu.stats.authHeadersSentToObs).toBe(0);
    expect(emu.stats.rangeRequests).toBe(0);
  });

  it('copies a small single-part file', async () => {
    const key = freshKey(FILES.small.name);
    const result = await createCopier(deps()).copyFile({ bucket, key, fileName: FILES.small.name, getLink: gesLinks(FILES.small.name).getLink });
    expect(result).toMatchObject({ status: 'complete', bytes: 1_000, sha256: emu.fileSha256(G, B, FILES.small.name) });
    expect(sha256(await getObjectBytes(bucket, key))).toBe(emu.fileSha256(G, B, FILES.small.name));
  });

  it('copies a zero-byte file, with its sha256 in the metadata', async () => {
    // Prepare
    const key = freshKey(FILES.empty.name);
    // Act
    const result = await createCopier(deps()).copyFile({ bucket, key, fileName: FILES.empty.name, getLink: gesLinks(FILES.empty.name).getLink });
    // Assess
    const emptySha = sha256(Buffer.alloc(0));
    expect(result).toMatchObject({ status: 'complete', bytes: 0, sha256: emptySha });
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentLength).toBe(0);
    expect(head.Metadata?.['sha256']).toBe(emptySha);
  });

  it('refreshes a link that expires mid-file and resumes with a Range instead of starting again', async () => {
    // Prepare
    const key = freshKey(FILES.big.name);
    const links = gesLinks(FILES.big.name);
    emu.faults.expireLinksAfterBytes(FILES.big.name, 12 * MiB + 777);
    // Act
    const result = await createCopier(deps()).copyFile({ bucket, key, fileName: FILES.big.name, getLink: links.getLink });
    // Assess
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, FILES.big.name) });
    expect(links.calls()).toBe(2);
    expect(result.stats.linkRefreshes).toBe(1);
    expect(emu.stats.rangeRequests).toBeGreaterThanOrEqual(1);
    const served = emu.stats.downloadBytes.get(FILES.big.name) ?? 0;
    expect(served - FILES.big.bytes).toBeLessThan(MiB); // bytes downloaded again ≪ file size
    expect(sha256(await getObjectBytes(bucket, key))).toBe(emu.fileSha256(G, B, FILES.big.name));
  });

  it('resumes after bodies that break off mid-file', async () => {
    // Prepare
    const key = freshKey(FILES.big.name);
    const links = gesLinks(FILES.big.name);
    emu.faults.truncateDownload(FILES.big.name, 3 * MiB + 5, 3);
    // Act
    const result = await createCopier(deps()).copyFile({ bucket, key, fileName: FILES.big.name, getLink: links.getLink });
    // Assess
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, FILES.big.name) });
    expect(result.stats.resumes).toBe(3);
    expect(result.stats.restarts).toBe(0);
    expect(links.calls()).toBe(1);
    expect(emu.stats.downloadBytes.get(FILES.big.name)).toBe(FILES.big.bytes);
  });

  it('restarts from byte 0 with the new content when the source changes (412 on If-Match)', async () => {
    // Prepare: the link expires mid-file, and the file changes before the fresh link is issued.
    const key = freshKey(FILES.big.name);
    const links = gesLinks(FILES.big.name, (call) => {
      if (call === 2) emu.faults.changeFile(G, B, FILES.big.name, 'changed-once');
    });
    emu.faults.expireLinksAfterBytes(FILES.big.name, 11 * MiB);
    // Act
    const result = await createCopier(deps()).copyFile({ bucket, key, fileName: FILES.big.name, getLink: links.getLink });
    // Assess
    const newSha = emu.fileSha256(G, B, FILES.big.name);
    expect(result).toMatchObject({ status: 'complete', sha256: newSha });
    expect(result.stats.restarts).toBe(1);
    expect(sha256(await getObjectBytes(bucket, key))).toBe(newSha);
  });

  it('gives up with SOURCE_CHANGED when the source keeps changing, leaving nothing behind', async () => {
    // Prepare: every fresh link comes after a change, and every download is cut.
    const key = freshKey(FILES.big.name);
    const links = gesLinks(FILES.big.name, (call) => {
      if (call > 1) emu.faults.changeFile(G, B, FILES.big.name, `changed-${call}`);
      emu.faults.expireLinksAfterBytes(FILES.big.name, 6 * MiB);
    });
    // Act
    const err = await failure(createCopier(deps()).copyFile({ bucket, key, fileName: FILES.big.name, getLink: links.getLink }));
    // Assess
    expect(err.code).toBe(ErrorCodes.SourceChanged);
    await expectNoTrace(key);
  });

  it('fails clearly on a download that keeps failing mid-file, and leaves no upload and no object', async () => {
    // Prepare: the first 7 MiB arrive (one part uploaded), then OBS answers 500 for good.
    const key = freshKey(FILES.big.name);
    emu.faults.truncateDownload(FILES.big.name, 7 * MiB);
    let armed = false;
    const onProgress = (): void => {
      if (!armed) {
        armed = true;
        emu.faults.obsStatus(FILES.big.name, 500, 1_000);
      }
    };
    // Act
    const err = await failure(createCopier(deps()).copyFile({ bucket, key, fileName: FILES.big.name, getLink: gesLinks(FILES.big.name).getLink, onProgress }));
    // Assess
    expect(err.code).toBe(ErrorCodes.DownloadFailed);
    expect(err.message).toMatch(/answered 500/);
    await expectNoTrace(key);
  });

  it('fails with LINK_EXPIRED when fresh links are refused, after asking for one fresh link', async () => {
    const key = freshKey(FILES.big.name);
    const links = gesLinks(FILES.big.name);
    emu.faults.obsStatus(FILES.big.name, 403, 10);
    const err = await failure(createCopier(deps()).copyFile({ bucket, key, fileName: FILES.big.name, getLink: links.getLink }));
    expect(err.code).toBe(ErrorCodes.LinkExpired);
    expect(links.calls()).toBe(2);
    await expectNoTrace(key);
  });

  it('refuses a link to a host not in the list before any request reaches it', async () => {
    // Prepare
    const key = freshKey(FILES.big.name);
    // Act
    const err = await failure(createCopier(deps({ allowedHosts: ['*.myhuaweicloud.com'] })).copyFile({
      bucket, key, fileName: FILES.big.name, getLink: gesLinks(FILES.big.name).getLink,
    }));
    // Assess
    expect(err.code).toBe(ErrorCodes.LinkRefused);
    expect(emu.stats.downloadRequests).toBe(0);
    await expectNoTrace(key);
  });

  it('refuses an unsafe file name before asking for a link', async () => {
    const links = gesLinks(FILES.big.name);
    const err = await failure(createCopier(deps()).copyFile({ bucket, key: 'x/../y', fileName: '../y', getLink: links.getLink }));
    expect(err.code).toBe(ErrorCodes.UnsafeFileName);
    expect(links.calls()).toBe(0);
  });

  it('hands over at a part boundary and a second copier finishes from the checkpoint', async () => {
    // Prepare: a clock that reaches the handover time once 11 MiB have arrived.
    const key = freshKey(FILES.big.name);
    let clock = 1_000;
    const handoverAt = 2_000;
    const link = async (): Promise<FileLink> => ({ ...(await gesLinks(FILES.big.name).getLink(new AbortController().signal)), expiresAt: Number.MAX_SAFE_INTEGER });
    let received = 0;
    // Act 1
    const first = await createCopier(deps({ now: () => clock })).copyFile({
      bucket, key, fileName: FILES.big.name, getLink: link, handoverAt,
      onProgress: (d) => { received += d; if (received >= 11 * MiB) clock = handoverAt; },
    });
    // Assess 1
    if (first.status !== 'handover') throw new Error(`expected a handover, got ${first.status}`);
    const cp = JSON.parse(JSON.stringify(first.checkpoint)) as CopyCheckpoint; // as it travels through SQS
    expect(cp).toMatchObject({ version: 1, bucket, key, partSize: PART, totalBytes: FILES.big.bytes, offset: 3 * PART });
    expect(cp.parts.map((p) => p.partNumber)).toEqual([1, 2, 3]);
    expect(await objectExists(key)).toBe(false);
    expect((await listInProgressUploads(bucket)).map((u) => u.UploadId)).toEqual([cp.uploadId]);
    // Act 2
    const second = await createCopier(deps()).copyFile({ bucket, key, fileName: FILES.big.name, getLink: link, checkpoint: cp, handoverAt: Date.now() + 600_000 });
    // Assess 2
    const expectedSha = emu.fileSha256(G, B, FILES.big.name);
    expect(second).toMatchObject({ status: 'complete', bytes: FILES.big.bytes, sha256: expectedSha });
    expect(second.stats.bytesDownloaded).toBe(FILES.big.bytes - 3 * PART);
    expect(sha256(await getObjectBytes(bucket, key))).toBe(expectedSha);
  });

  it('abortCheckpoint removes the handed-over upload', async () => {
    // Prepare
    const key = freshKey(FILES.big.name);
    let clock = 0;
    const first = await createCopier(deps({ now: () => clock })).copyFile({
      bucket, key, fileName: FILES.big.name, handoverAt: 1,
      getLink: async (s) => ({ ...(await gesLinks(FILES.big.name).getLink(s)), expiresAt: Number.MAX_SAFE_INTEGER }),
      onProgress: () => { clock = 1; },
    });
    if (first.status !== 'handover') throw new Error('expected a handover');
    expect(await listInProgressUploads(bucket)).toHaveLength(1);
    // Act
    await createCopier(deps()).abortCheckpoint(first.checkpoint);
    // Assess
    await expectNoTrace(key);
  });

  it('stops on the caller\'s signal with ABORTED and cleans up', async () => {
    // Prepare
    const key = freshKey(FILES.big.name);
    const ac = new AbortController();
    let received = 0;
    emu.faults.throttleDownloads(8 * MiB);
    // Act
    const err = await failure(createCopier(deps()).copyFile({
      bucket, key, fileName: FILES.big.name, getLink: gesLinks(FILES.big.name).getLink, signal: ac.signal,
      onProgress: (d) => { received += d; if (received > 11 * MiB) ac.abort(); },
    }));
    // Assess
    expect(err.code).toBe(ErrorCodes.Aborted);
    await expectNoTrace(key);
  });
});

// ---------------------------------------------------------------------------------------------
// A bare download server for what the emulator does not do.

interface Served {
  url: string;
  headers: IncomingMessage['headers'];
  method: string;
}

async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ base: string; seen: Served[]; close(): Promise<void> }> {
  const seen: Served[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers, method: req.method ?? '' });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** Serves `content`; honours `Range: bytes=N-` unless `ignoreRange`; cuts the first response after `cutAfter` bytes. */
function fileHandler(content: Buffer, opts: { ignoreRange?: boolean; cutAfter?: number } = {}) {
  let cuts = opts.cutAfter === undefined ? 0 : 1;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range && !opts.ignoreRange ? Number(range[1]) : 0;
    const body = content.subarray(start);
    const headers: Record<string, string> = { 'content-length': String(body.length), etag: '"v1"' };
    if (start > 0) headers['content-range'] = `bytes ${start}-${content.length - 1}/${content.length}`;
    res.writeHead(start > 0 ? 206 : 200, headers);
    if (cuts > 0 && opts.cutAfter !== undefined) {
      cuts--;
      res.write(body.subarray(0, opts.cutAfter), () => res.destroy());
      return;
    }
    res.end(body);
  };
}

describe('copier against a bare download server', () => {
  const content = Buffer.alloc(12 * MiB + 3);
  for (let i = 0; i + 4 <= content.length; i += 4096) content.writeUInt32LE(i, i);

  it('sends the link exactly as given: no re-encoding, no HEAD, no auth headers', async () => {
    // Prepare
    const server = await startServer(fileHandler(content));
    const path = "/bucket/dir%2Fx/fi~le%20'1'.bin?AccessKeyId=AK&Expires=9999999999&Signature=a%2Bb%2F%3D&x=%7e|{}";
    try {
      // Act
      const result = await createCopier(deps()).copyFile({
        bucket, key: freshKey('raw.bin'), fileName: 'raw.bin', getLink: () => Promise.resolve({ url: `${server.base}${path}`, expiresAt: Date.now() + 3_600_000 }),
      });
      // Assess
      expect(result).toMatchObject({ status: 'complete', sha256: sha256(content) });
      expect(server.seen.map((s) => [s.method, s.url])).toEqual([['GET', path]]);
      expect(server.seen[0]?.headers['authorization']).toBeUndefined();
      expect(server.seen[0]?.headers['x-auth-token']).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it('starts the file again when the server answers a Range with 200', async () => {
    // Prepare
    const server = await startServer(fileHandler(content, { ignoreRange: true, cutAfter: 7 * MiB }));
    const key = freshKey('norange.bin');
    try {
      // Act
      const result = await createCopier(deps()).copyFile({
        bucket, key, fileName: 'norange.bin', getLink: () => Promise.resolve({ url: `${server.base}/f`, expiresAt: Date.now() + 3_600_000 }),
      });
      // Assess
      expect(result).toMatchObject({ status: 'complete', bytes: content.length, sha256: sha256(content) });
      expect(result.stats.restarts).toBe(1);
      expect(server.seen[1]?.headers.range).toBe(`bytes=${7 * MiB}-`);
      expect(server.seen[1]?.headers['if-match']).toBe('"v1"');
      expect(sha256(await getObjectBytes(bucket, key))).toBe(sha256(content));
    } finally {
      await server.close();
    }
  });

  it('does not follow a redirect', async () => {
    // Prepare
    const target = await startServer(fileHandler(content));
    const server = await startServer((_req, res) => { res.writeHead(302, { location: `${target.base}/f` }).end(); });
    const key = freshKey('redirect.bin');
    try {
      // Act
      const err = await failure(createCopier(deps()).copyFile({
        bucket, key, fileName: 'redirect.bin', getLink: () => Promise.resolve({ url: `${server.base}/f`, expiresAt: Date.now() + 3_600_000 }),
      }));
      // Assess
      expect(err.code).toBe(ErrorCodes.DownloadFailed);
      expect(target.seen).toHaveLength(0);
      await expectNoTrace(key);
    } finally {
      await Promise.all([server.close(), target.close()]);
    }
  });

  it('refuses a refreshed link that points elsewhere, before requesting it', async () => {
    // Prepare: the first link is cut mid-file and expired; the fresh one points to a host not allowed.
    const server = await startServer(fileHandler(content, { cutAfter: 6 * MiB }));
    const key = freshKey('moved.bin');
    let calls = 0;
    const getLink = (): Promise<FileLink> => {
      calls++;
      return Promise.resolve(calls === 1
        ? { url: `${server.base}/f`, expiresAt: Date.now() + 3_600_000 }
        : { url: `${server.base.replace('127.0.0.1', 'localhost')}/f`, expiresAt: Date.now() + 3_600_000 });
    };
    let expired = false;
    try {
      // Act
      const err = await failure(createCopier(deps({ now: () => (expired ? Date.now() + 7_200_000 : Date.now()) })).copyFile({
        bucket, key, fileName: 'moved.bin', getLink, onProgress: () => { expired = true; },
      }));
      // Assess
      expect(err.code).toBe(ErrorCodes.LinkRefused);
      expect(err.message).toContain('localhost');
      expect(server.seen).toHaveLength(1);
      await expectNoTrace(key);
    } finally {
      await server.close();
    }
  });
});
