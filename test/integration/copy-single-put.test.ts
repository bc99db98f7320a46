// Small files take one PutObject (with Content-MD5) instead of Create/UploadPart/Complete/Head;
// multipart parts carry Content-MD5 too. Against the real local S3 (Swift s3api) and the GES
// emulator. S3 requests are recorded with a client middleware; a second middleware corrupts a
// request body after the SDK serialised it (before signing), to show the store checks the MD5.
import { createHash } from 'node:crypto';
import { AbortMultipartUploadCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'undici';
import { createCopier, type CopierDeps, type CopyFileRequest, type FileLink } from '../../lib/copy/copier.js';
import { contentMd5 } from '../../lib/copy/hasher.js';
import { linkExpiresAt } from '../../lib/links/link-expiry.js';
import { MiB } from '../../lib/copy/part-size.js';
import { ErrorCodes, type ArchiverError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { createTestBucket, getObjectBytes, listInProgressUploads, listKeys, s3Client, s3Endpoint } from '../support/aws.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { issueToken, links } from '../emulator/test-client.js';

const PART = 5 * MiB;
const G = 'graph-sp';
const B = 'backup-sp';
const FILES = {
  small: { name: 'schema.xml', bytes: 1_000 },
  mid: { name: 'mid.bin', bytes: 3 * MiB + 17 },
  exact: { name: 'exact.bin', bytes: PART }, // exactly one part: still a single PUT
  over: { name: 'over.bin', bytes: PART + 1 }, // one byte more: multipart, 2 parts
  big: { name: 'big.bin', bytes: 12 * MiB + 5 }, // 3 parts
  empty: { name: 'empty.bin', bytes: 0 },
};

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 5_000 });

let emu: Emulator;
let token: string;
let bucket: string;
let dispatcher: Agent;
const clients: S3Client[] = [];

beforeAll(async () => {
  dispatcher = new Agent();
  bucket = await createTestBucket('copy-sp');
  emu = await startEmulator({ graphs: [{ id: G, backups: [{ id: B, files: Object.values(FILES) }] }] });
  token = await issueToken(emu);
});

afterAll(async () => {
  await emu.close();
  await dispatcher.close();
  for (const c of clients) c.destroy();
});

beforeEach(() => {
  emu.faults.reset();
  emu.resetStats();
});

afterEach(async () => {
  const s3 = s3Client();
  clients.push(s3);
  const left = await listInProgressUploads(bucket);
  await Promise.all(left.map((u) => s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }))));
  expect(left.map((u) => u.Key)).toEqual([]);
});

interface Sent {
  command: string;
  headers: Record<string, string>;
}

/** An S3 client that records every request it sends (after the SDK's checksum step, per attempt). */
function recordingS3(options: { checksums?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED'; corrupt?: (command: string) => boolean } = {}): { s3: S3Client; sent: Sent[] } {
  const s3 = options.checksums === 'WHEN_SUPPORTED'
    ? new S3Client({
      endpoint: s3Endpoint(), region: process.env.AWS_REGION ?? 'us-east-1', forcePathStyle: true,
      credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test:tester', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing' },
      requestChecksumCalculation: 'WHEN_SUPPORTED', responseChecksumValidation: 'WHEN_SUPPORTED',
    })
    : s3Client();
  clients.push(s3);
  const sent: Sent[] = [];
  const corrupt = options.corrupt;
  if (corrupt) {
    // Flips one byte of the body after serialisation and before signing: the request is valid
    // except that its Content-MD5 no longer matches what arrives.
    s3.middlewareStack.add((next, context) => async (args) => {
      const request = args.request as { body?: unknown };
      if (corrupt(context.commandName ?? '') && Buffer.isBuffer(request.body) && request.body.length > 0) {
        const copy = Buffer.from(request.body);
        copy[0] = (copy[0] ?? 0) ^ 0xff;
        request.body = copy;
      }
      return next(args);
    }, { step: 'build', priority: 'low', name: 'corruptBodyForTest' });
  }
  s3.middlewareStack.add((next, context) => async (args) => {
    const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
    const entry = { command: context.commandName ?? '', headers: { ...headers } };
    sent.push(entry);
    try {
      return await next(args);
    } catch (err) {
      // A fresh client's first commit asks for If-None-Match, which Swift refuses (501) before
      // it stores anything; the client then commits without it (copy-conditional.test.ts).
      // Only what the store acted on is recorded here.
      if ('if-none-match' in headers && (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 501) sent.splice(sent.indexOf(entry), 1);
      throw err;
    }
  }, { step: 'finalizeRequest', priority: 'low', name: 'recordForTest' });
  return { s3, sent };
}

function deps(s3: S3Client, overrides: Partial<CopierDeps> = {}): CopierDeps {
  return { s3, logger: silentLogger(), retry: fastRetry, allowedHosts: ['127.0.0.1'], dispatcher, partSizeBytes: PART, partConcurrency: 2, ...overrides };
}

function gesLink(name: string): CopyFileRequest['getLink'] {
  return async (): Promise<FileLink> => {
    const receivedAt = Date.now();
    const file = (await links(emu, token, G, B)).find((f) => f.name === name);
    if (!file) throw new Error(`no link for ${name}`);
    return { url: file.download_link, expiresAt: linkExpiresAt(file.download_link, file.link_expired_time, receivedAt) };
  };
}

let keyCounter = 0;
const freshKey = (name: string): string => `sp/${++keyCounter}/${name}`;

const commands = (sent: Sent[]): string[] => sent.map((s) => s.command.replace(/Command$/, ''));
const header = (s: Sent | undefined, name: string): string | undefined =>
  s && Object.entries(s.headers).find(([k]) => k.toLowerCase() === name)?.[1];

async function expectNoTrace(key: string): Promise<void> {
  expect(await listInProgressUploads(bucket)).toEqual([]);
  expect(await listKeys(bucket, key)).toEqual([]);
}

async function failure(p: Promise<unknown>): Promise<ArchiverError> {
  try {
    await p;
  } catch (err) {
    return err as ArchiverError;
  }
  throw new Error('expected the copy to fail');
}

describe('single PutObject for files that fit in one part', () => {
  it.each([FILES.small, FILES.mid, FILES.exact])('stores $name ($bytes bytes) with one PutObject carrying Content-MD5, and no multipart upload', async (file) => {
    // Prepare
    const { s3, sent } = recordingS3();
    const key = freshKey(file.name);
    // Act
    const result = await createCopier(deps(s3)).copyFile({ bucket, key, fileName: file.name, getLink: gesLink(file.name), metadata: { 'graph-id': G } });
    // Assess
    const expectedSha = emu.fileSha256(G, B, file.name);
    expect(result).toMatchObject({ status: 'complete', key, bytes: file.bytes, sha256: expectedSha });
    expect(result.stats).toMatchObject({ parts: 1, singlePut: true, resumes: 0, restarts: 0 });
    expect(commands(sent)).toEqual(['PutObject']);
    const stored = await getObjectBytes(bucket, key);
    expect(sha256(stored)).toBe(expectedSha);
    expect(header(sent[0], 'content-md5')).toBe(contentMd5(stored));
    expect(header(sent[0], 'content-length')).toBe(String(file.bytes));
    const head = await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.Metadata).toEqual({ 'graph-id': G }); // the same user metadata as a multipart copy
  });

  it('resumes a small file whose body breaks off mid-way (Range + If-Match into the same buffer)', async () => {
    // Prepare
    const { s3, sent } = recordingS3();
    const key = freshKey(FILES.mid.name);
    emu.faults.truncateDownload(FILES.mid.name, MiB + 333, 2);
    // Act
    const result = await createCopier(deps(s3)).copyFile({ bucket, key, fileName: FILES.mid.name, getLink: gesLink(FILES.mid.name) });
    // Assess
    const expectedSha = emu.fileSha256(G, B, FILES.mid.name);
    expect(result).toMatchObject({ status: 'complete', bytes: FILES.mid.bytes, sha256: expectedSha });
    expect(result.stats).toMatchObject({ resumes: 2, restarts: 0, singlePut: true, bytesDownloaded: FILES.mid.bytes });
    expect(emu.stats.rangeRequests).toBe(2);
    expect(emu.stats.downloadBytes.get(FILES.mid.name)).toBe(FILES.mid.bytes); // nothing fetched twice
    expect(commands(sent)).toEqual(['PutObject']);
    expect(sha256(await getObjectBytes(bucket, key))).toBe(expectedSha);
  });

  it('leaves no object when a small file\'s download keeps failing', async () => {
    const { s3, sent } = recordingS3();
    const key = freshKey(FILES.mid.name);
    emu.faults.truncateDownload(FILES.mid.name, MiB);
    let armed = false;
    const onProgress = (): void => {
      if (!armed) {
        armed = true;
        emu.faults.obsStatus(FILES.mid.name, 500, 1_000);
      }
    };
    const err = await failure(createCopier(deps(s3)).copyFile({ bucket, key, fileName: FILES.mid.name, getLink: gesLink(FILES.mid.name), onProgress }));
    expect(err.code).toBe(ErrorCodes.DownloadFailed);
    expect(commands(sent)).toEqual([]); // nothing was sent to S3 at all
    await expectNoTrace(key);
  });

  it('the store refuses a PutObject whose bytes do not match its Content-MD5 (BadDigest), and no object is left', async () => {
    // Prepare
    const { s3, sent } = recordingS3({ corrupt: (c) => c === 'PutObjectCommand' });
    const key = freshKey(FILES.mid.name);
    // Act
    const err = await failure(createCopier(deps(s3)).copyFile({ bucket, key, fileName: FILES.mid.name, getLink: gesLink(FILES.mid.name) }));
    // Assess
    expect(err.code).toBe(ErrorCodes.S3Failed);
    expect(err.details).toMatchObject({ operation: 'PutObject', remoteCode: 'BadDigest', status: 400 });
    expect(commands(sent)).toEqual(['PutObject']); // a 400 is not retried
    await expectNoTrace(key);
  });

  it('stores an empty file with one PutObject, its sha256 in the metadata, and no HeadObject', async () => {
    const { s3, sent } = recordingS3();
    const key = freshKey(FILES.empty.name);
    const result = await createCopier(deps(s3)).copyFile({ bucket, key, fileName: FILES.empty.name, getLink: gesLink(FILES.empty.name) });
    const emptySha = sha256(Buffer.alloc(0));
    expect(result).toMatchObject({ status: 'complete', bytes: 0, sha256: emptySha });
    expect(result.stats).toMatchObject({ parts: 0, singlePut: true });
    expect(commands(sent)).toEqual(['PutObject']);
    expect(header(sent[0], 'content-md5')).toBe('1B2M2Y8AsgTpgAmY7PhCfg==');
    const head = await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentLength).toBe(0);
    expect(head.Metadata?.['sha256']).toBe(emptySha);
  });

  it('uses a multipart upload for a small file that may be handed over', async () => {
    const { s3, sent } = recordingS3();
    const key = freshKey(FILES.small.name);
    const result = await createCopier(deps(s3)).copyFile({
      bucket, key, fileName: FILES.small.name, getLink: gesLink(FILES.small.name), handoverAt: Date.now() + 600_000,
    });
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, FILES.small.name) });
    expect(result.stats).toMatchObject({ parts: 1, singlePut: false });
    expect(commands(sent)).toEqual(['CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'HeadObject']);
  });
});

describe('multipart upload with Content-MD5 on every part', () => {
  it.each([FILES.over, FILES.big])('copies $name ($bytes bytes) with a multipart upload, every part with its Content-MD5', async (file) => {
    // Prepare
    const { s3, sent } = recordingS3();
    const key = freshKey(file.name);
    // Act
    const result = await createCopier(deps(s3)).copyFile({ bucket, key, fileName: file.name, getLink: gesLink(file.name) });
    // Assess
    const expectedSha = emu.fileSha256(G, B, file.name);
    const nParts = Math.ceil(file.bytes / PART);
    expect(result).toMatchObject({ status: 'complete', bytes: file.bytes, sha256: expectedSha });
    expect(result.stats).toMatchObject({ parts: nParts, singlePut: false });
    expect(commands(sent)).toEqual(['CreateMultipartUpload', ...Array<string>(nParts).fill('UploadPart'), 'CompleteMultipartUpload', 'HeadObject']);
    const stored = await getObjectBytes(bucket, key);
    expect(sha256(stored)).toBe(expectedSha);
    const partMd5s = sent.filter((s) => s.command === 'UploadPartCommand').map((s) => header(s, 'content-md5'));
    const expectedMd5s = Array.from({ length: nParts }, (_, i) => contentMd5(stored.subarray(i * PART, (i + 1) * PART)));
    expect(partMd5s.sort()).toEqual(expectedMd5s.sort()); // parts upload concurrently: any order
  });

  it('the store refuses a part whose bytes do not match its Content-MD5, and the upload is aborted', async () => {
    const { s3, sent } = recordingS3({ corrupt: (c) => c === 'UploadPartCommand' });
    const key = freshKey(FILES.big.name);
    const err = await failure(createCopier(deps(s3)).copyFile({ bucket, key, fileName: FILES.big.name, getLink: gesLink(FILES.big.name) }));
    expect(err.code).toBe(ErrorCodes.S3Failed);
    expect(err.details).toMatchObject({ operation: 'UploadPart', remoteCode: 'BadDigest', status: 400 });
    expect(commands(sent)).toContain('AbortMultipartUpload');
    expect(commands(sent)).not.toContain('CompleteMultipartUpload');
    await expectNoTrace(key);
  });
});

describe('with the SDK default requestChecksumCalculation WHEN_SUPPORTED (as on AWS)', () => {
  it.each([FILES.mid, FILES.big])('sends $name with one Content-MD5 per request, no aws-chunked body and an unsigned payload (no third hash of every byte), and Swift takes it', async (file) => {
    // Prepare
    const { s3, sent } = recordingS3({ checksums: 'WHEN_SUPPORTED' });
    const key = freshKey(file.name);
    // Act
    const result = await createCopier(deps(s3)).copyFile({ bucket, key, fileName: file.name, getLink: gesLink(file.name) });
    // Assess
    expect(result).toMatchObject({ status: 'complete', sha256: emu.fileSha256(G, B, file.name) });
    const bodies = sent.filter((s) => s.command === 'PutObjectCommand' || s.command === 'UploadPartCommand');
    expect(bodies.length).toBe(Math.ceil(file.bytes / PART));
    for (const s of bodies) {
      expect(Object.keys(s.headers).filter((k) => k.toLowerCase() === 'content-md5')).toHaveLength(1);
      expect(header(s, 'content-encoding')).toBeUndefined();
      expect(header(s, 'x-amz-checksum-crc32')).toMatch(/=$/); // the SDK's own checksum, alongside
      expect(header(s, 'x-amz-content-sha256')).toBe('UNSIGNED-PAYLOAD');
      expect(header(s, 'authorization')).toContain('x-amz-content-sha256');
    }
    expect(sha256(await getObjectBytes(bucket, key))).toBe(emu.fileSha256(G, B, file.name));
  });
});
