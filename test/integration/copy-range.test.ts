// The copier's range mode (copyRange: one shard of a range-sharded file) against Swift and the
// GES emulator: byte ranges of whole parts into a multipart upload the test creates and completes.
import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, ListPartsCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { Agent } from 'undici';
import { createCopier, type CopierDeps, type CopyRangeRequest } from '../../lib/copy/copier.js';
import { openDownload, discardBody } from '../../lib/copy/download.js';
import { MiB } from '../../lib/copy/part-size.js';
import { ErrorCodes } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { getObjectBytes, listInProgressUploads } from '../support/aws.js';
import { failure, gesLinkSource, useCopyStack } from '../support/copy.js';
import { type Emulator } from '../emulator/index.js';

const PART = 5 * MiB;
const G = 'graph-r';
const B = 'backup-r';
const FILE = { name: 'data.bin', bytes: 23 * MiB + 12_345 }; // 5 parts, the last one short
const retry = createRetryPolicy({ maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 200, maxElapsedMs: 10_000 });

let s3: S3Client;
let emu: Emulator;
let token: string;
let bucket: string;
let dispatcher: Agent;
let keyCounter = 0;

useCopyStack('copy-range', { graphs: [{ id: G, backups: [{ id: B, files: [FILE] }] }] }, (stack) => ({ s3, emu, token, bucket, dispatcher } = stack));

function deps(overrides: Partial<CopierDeps> = {}): CopierDeps {
  return { s3, logger: silentLogger(), retry, allowedHosts: ['127.0.0.1'], dispatcher, partSizeBytes: PART, partConcurrency: 2, streams: 2, ...overrides };
}

/** A multipart upload at a fresh key, and the request fields every range of it shares. */
async function upload(): Promise<Omit<CopyRangeRequest, 'start' | 'end'>> {
  const key = `ges-backups/${G}/${B}/${++keyCounter}/${FILE.name}`;
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const { getLink } = gesLinkSource(emu, token, G, B, FILE.name);
  const link = await getLink(AbortSignal.timeout(5_000));
  const probe = await openDownload(link.url, { dispatcher, offset: 0, end: 1, signal: AbortSignal.timeout(5_000) });
  if (probe.kind !== 'body' || probe.etag === undefined) throw new Error('the emulator gave no ETag');
  discardBody(probe.body);
  return { bucket, key, fileName: FILE.name, getLink, uploadId: UploadId!, partSize: PART, totalBytes: FILE.bytes, sourceEtag: probe.etag };
}

async function abortUpload(u: { key: string; uploadId: string }): Promise<void> {
  await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
}

describe('copier range mode (shards)', () => {
  it('copies ranges of whole parts at their numbers in the file; completed together they are the file', async () => {
    // Prepare
    const u = await upload();
    const copier = createCopier(deps());

    // Act: three shards at once: parts 1-2, 3-4 and 5 (the short one)
    const results = await Promise.all([[0, 2 * PART], [2 * PART, 4 * PART], [4 * PART, FILE.bytes]].map(([start, end]) => copier.copyRange({ ...u, start: start!, end: end! })));
    const parts = results.flatMap((r) => (r.status === 'complete' ? r.parts : []));
    await s3.send(new CompleteMultipartUploadCommand({
      Bucket: bucket, Key: u.key, UploadId: u.uploadId, MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
    }));

    // Assess
    expect(results.map((r) => [r.status, r.status === 'complete' ? r.parts.map((p) => p.partNumber) : []])).toEqual([
      ['complete', [1, 2]], ['complete', [3, 4]], ['complete', [5]],
    ]);
    const body = await getObjectBytes(bucket, u.key);
    expect(body.length).toBe(FILE.bytes);
    expect(createHash('sha256').update(body).digest('hex')).toBe(emu.fileSha256(G, B, FILE.name));
  });

  it('a changed source is SOURCE_CHANGED, not a restart, and the shared upload stays with the parts already stored', async () => {
    // Prepare: part 1 stored from the first version, then the source changes
    const u = await upload();
    const copier = createCopier(deps());
    const first = await copier.copyRange({ ...u, start: 0, end: PART });
    emu.faults.changeFile(G, B, FILE.name, 'changed');

    // Act
    const err = await failure(copier.copyRange({ ...u, start: PART, end: 3 * PART }));

    // Assess
    expect(first.status).toBe('complete');
    expect(err.code).toBe(ErrorCodes.SourceChanged);
    const listed = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
    expect(listed.Parts?.map((p) => p.PartNumber)).toContain(1);
    await abortUpload(u);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });

  it('hands over at handoverAt with the stored prefix of the range, and continues from it', async () => {
    // Prepare: ~6 MiB/s, one stream, a handover after about one part
    const u = await upload();
    const copier = createCopier(deps({ streams: 1 }));
    emu.faults.throttleDownloads(6 * MiB);

    // Act
    const first = await copier.copyRange({ ...u, start: 0, end: 4 * PART, handoverAt: Date.now() + 1_000 });
    emu.faults.throttleDownloads(null);
    if (first.status !== 'handover') throw new Error(`expected a handover, got ${first.status}`);
    const rest = await copier.copyRange({ ...u, start: first.offset, end: 4 * PART, parts: first.parts });

    // Assess
    expect(first.offset % PART).toBe(0);
    expect(first.offset).toBeGreaterThan(0);
    expect(first.offset).toBeLessThan(4 * PART);
    expect(first.parts.map((p) => p.partNumber)).toEqual(Array.from({ length: first.offset / PART }, (_, i) => i + 1));
    expect(rest.status).toBe('complete');
    expect(rest.parts.map((p) => p.partNumber)).toEqual([1, 2, 3, 4]);
    await abortUpload(u);
  });
});
