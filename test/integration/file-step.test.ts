// The per-file step both ways of archiving take (lib/archive/file-step.ts) and the backup's
// completion (lib/archive/complete-backup.ts), against Swift and the GES emulator: what the step
// does with a file's receipt, its object and its copy checkpoint.
import { createHash } from 'node:crypto';
import { CreateMultipartUploadCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { completeBackup, storedFiles } from '../../lib/archive/complete-backup.js';
import { fileStateKeys, runFileStep, type FileRef, type FileStepOptions } from '../../lib/archive/file-step.js';
import { createRuntime, type Runtime } from '../../lib/app/runtime.js';
import { loadConfig } from '../../lib/config.js';
import { createFileHasher } from '../../lib/copy/hasher.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import { BackupLinks } from '../../lib/links/backup-links.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { writeReceipt } from '../../lib/store/receipts.js';
import { getJson, putJson } from '../../lib/store/s3-objects.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listInProgressUploads, listKeys, s3Client } from '../support/aws.js';
import { tokenEnv, useLocalS3 } from '../support/cli.js';

const MiB = 1024 * 1024;
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B = '0f1e2d3c-4b5a-4697-8877-665544332211';
const TOKEN = 'static-token-1';
const BIG = { name: 'vertices.bin', bytes: 6 * MiB + 17 };
const SMALL = { name: 'metadata.xml', bytes: 1000 };
const PREFIX = 'ges-backups/';
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 50, maxElapsedMs: 5_000 });

let emulator: Emulator;
let s3: S3Client;
const runtimes: Runtime[] = [];

beforeAll(async () => {
  useLocalS3();
  s3 = s3Client();
  emulator = await startEmulator({ staticTokens: [TOKEN], graphs: [{ id: G, backups: [{ id: B, name: 'b', files: [BIG, SMALL] }] }] });
});

afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()));
  await emulator.close();
  s3.destroy();
});

async function setup(name: string): Promise<{ rt: Runtime; bucket: string }> {
  const bucket = await createTestBucket(name);
  const rt = createRuntime(loadConfig(tokenEnv(emulator, bucket, TOKEN)), silentLogger(), { s3, retry: fastRetry });
  runtimes.push(rt);
  return { rt, bucket };
}

const ref = (fileName: string): FileRef => ({ graphId: G, backupId: B, fileName });
const keysOf = (fileName: string) => fileStateKeys(PREFIX, ref(fileName));

type More = Partial<Omit<FileStepOptions, 'request'>> & { request?: Partial<FileStepOptions['request']> };

function options(rt: Runtime, fileName: string, more: More = {}): FileStepOptions {
  const links = new BackupLinks(rt, { graphId: G, backupId: B }, undefined, new AbortController().signal);
  return {
    log: rt.logger, resume: false, ...more,
    request: { getLink: (s) => links.fresh(fileName, s), ...more.request },
  };
}

/** A file as a finished copy leaves it: its object (bytes of the file's length) and its receipt. */
async function storeFile(rt: Runtime, bucket: string, file: { name: string; bytes: number }): Promise<Buffer> {
  const bytes = Buffer.alloc(file.bytes, 7);
  const { key, receiptKey } = keysOf(file.name);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
  await writeReceipt(rt, bucket, receiptKey, {
    name: file.name, key, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), completedAt: new Date().toISOString(),
  });
  return bytes;
}

/** A checkpoint at byte 0 of BIG naming `uploadId` (a real upload, or one that is gone). */
async function saveCheckpoint(rt: Runtime, bucket: string, uploadId?: string): Promise<string> {
  const { key, checkpointKey } = keysOf(BIG.name);
  const id = uploadId ?? (await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId;
  await putJson(rt, bucket, checkpointKey, {
    version: 1, bucket, key, uploadId: id, partSize: 5 * MiB, totalBytes: BIG.bytes, offset: 0, parts: [], hashState: (await createFileHasher(true)).save(),
  });
  return checkpointKey;
}

describe('the per-file step', () => {
  it('reuses a stored file without a download, and aborts the upload its leftover checkpoint names', async () => {
    // Prepare
    const { rt, bucket } = await setup('step-reuse');
    await storeFile(rt, bucket, BIG);
    const ckKey = await saveCheckpoint(rt, bucket);
    const downloads = emulator.stats.downloadRequests;

    // Act
    const step = await runFileStep(rt, ref(BIG.name), options(rt, BIG.name, { resume: true }));

    // Assess
    expect(step).toEqual({ status: 'reused', file: expect.objectContaining({ name: BIG.name, bytes: BIG.bytes }) as unknown });
    expect(emulator.stats.downloadRequests).toBe(downloads);
    expect(await listKeys(bucket, ckKey)).toEqual([]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });

  it('a checkpoint whose upload was completed by another copy: the file is stored, so it is reused, not copied again', async () => {
    // Prepare: the receipt came after this copy looked (mayBeStored: false), its checkpoint's upload is gone
    const { rt, bucket } = await setup('step-gone-stored');
    const bytes = await storeFile(rt, bucket, BIG);
    const ckKey = await saveCheckpoint(rt, bucket, 'no-such-upload-id');

    // Act
    const step = await runFileStep(rt, ref(BIG.name), options(rt, BIG.name, { resume: true, mayBeStored: false }));

    // Assess
    expect(step.status).toBe('reused');
    // (Buffer.equals: toEqual compares 6 MiB byte by byte, slowly.)
    expect((await getObjectBytes(bucket, keysOf(BIG.name).key)).equals(bytes)).toBe(true);
    expect(await listKeys(bucket, ckKey)).toEqual([]);
  });

  it('a checkpoint whose upload is gone and no stored file: the file is copied from the start and gets its receipt', async () => {
    // Prepare
    const { rt, bucket } = await setup('step-gone-copy');
    const ckKey = await saveCheckpoint(rt, bucket, 'no-such-upload-id');

    // Act
    const step = await runFileStep(rt, ref(BIG.name), options(rt, BIG.name, { resume: true }));

    // Assess
    expect(step.status).toBe('copied');
    const sha256 = emulator.fileSha256(G, B, BIG.name);
    expect(createHash('sha256').update(await getObjectBytes(bucket, keysOf(BIG.name).key)).digest('hex')).toBe(sha256);
    expect(await getJson(rt, bucket, keysOf(BIG.name).receiptKey)).toEqual(expect.objectContaining({ bytes: BIG.bytes, sha256 }));
    expect(await listKeys(bucket, ckKey)).toEqual([]);
  });

  it('a failed copy drops its checkpoint, or keeps it for the redelivery (keepCheckpointOnFailure)', async () => {
    // Prepare: a commit check that refuses (not ALREADY_ARCHIVED)
    const { rt, bucket } = await setup('step-fail');
    const refuse = (): Promise<void> => Promise.reject(new ArchiverError(ErrorCodes.VerifyFailed, 'refused by the test'));
    const ckKey = await saveCheckpoint(rt, bucket);

    // Act
    const dropped = runFileStep(rt, ref(BIG.name), options(rt, BIG.name, { resume: true, request: { beforeCommit: refuse } }));
    await expect(dropped).rejects.toMatchObject({ code: ErrorCodes.VerifyFailed });
    const afterDrop = await listKeys(bucket, ckKey);
    await saveCheckpoint(rt, bucket);
    const kept = runFileStep(rt, ref(BIG.name), options(rt, BIG.name, { resume: true, keepCheckpointOnFailure: true, request: { beforeCommit: refuse } }));
    await expect(kept).rejects.toMatchObject({ code: ErrorCodes.VerifyFailed });

    // Assess
    expect(afterDrop).toEqual([]);
    expect(await listKeys(bucket, ckKey)).toEqual([ckKey]);
    expect(await listKeys(bucket, keysOf(BIG.name).receiptKey)).toEqual([]);
  });

  it('a backup archived by another run while copying: archived-elsewhere, the checkpoint dropped even when failures keep theirs', async () => {
    // Prepare
    const { rt, bucket } = await setup('step-elsewhere');
    const ckKey = await saveCheckpoint(rt, bucket);
    const archived = (): Promise<void> => Promise.reject(new ArchiverError(ErrorCodes.AlreadyArchived, 'archived by the test'));

    // Act
    const step = await runFileStep(rt, ref(BIG.name), options(rt, BIG.name, { resume: true, keepCheckpointOnFailure: true, request: { beforeCommit: archived } }));

    // Assess
    expect(step).toEqual({ status: 'archived-elsewhere', error: expect.objectContaining({ code: ErrorCodes.AlreadyArchived }) as unknown });
    expect(await listKeys(bucket, ckKey)).toEqual([]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });

  it('a file stored with one PutObject gets a receipt unless skipSinglePutReceipt', async () => {
    // Prepare
    const { rt: inline, bucket: a } = await setup('step-single-inline');
    const { rt: worker, bucket: b } = await setup('step-single-worker');

    // Act
    const skipped = await runFileStep(inline, ref(SMALL.name), options(inline, SMALL.name, { skipSinglePutReceipt: true }));
    const written = await runFileStep(worker, ref(SMALL.name), options(worker, SMALL.name));

    // Assess
    expect([skipped.status, written.status]).toEqual(['copied', 'copied']);
    expect(await listKeys(a, keysOf(SMALL.name).receiptKey)).toEqual([]);
    expect(await listKeys(b, keysOf(SMALL.name).receiptKey)).toEqual([keysOf(SMALL.name).receiptKey]);
  });

  it('a handover time already reached starts no copy (DEADLINE_EXCEEDED, retryable)', async () => {
    // Prepare
    const { rt, bucket } = await setup('step-late');
    const downloads = emulator.stats.downloadRequests;

    // Act
    const late = runFileStep(rt, ref(BIG.name), options(rt, BIG.name, { request: { handoverAt: Date.now() - 1 } }));

    // Assess
    await expect(late).rejects.toMatchObject({ code: ErrorCodes.DeadlineExceeded, retryable: true });
    expect(emulator.stats.downloadRequests).toBe(downloads);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });
});

describe('the backup completion', () => {
  it('storedFiles: every file stored with its receipt\'s length, or undefined', async () => {
    // Prepare: BIG stored; SMALL stored and then its object replaced by other bytes
    const { rt, bucket } = await setup('complete-stored');
    await storeFile(rt, bucket, BIG);

    // Act
    const missing = await storedFiles(rt, { graphId: G, backupId: B }, [BIG.name, SMALL.name]);
    await storeFile(rt, bucket, SMALL);
    const complete = await storedFiles(rt, { graphId: G, backupId: B }, [BIG.name, SMALL.name]);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keysOf(SMALL.name).key, Body: 'shorter' }));
    const changed = await storedFiles(rt, { graphId: G, backupId: B }, [BIG.name, SMALL.name]);

    // Assess
    expect(missing).toBeUndefined();
    expect(complete?.map((f) => [f.name, f.bytes])).toEqual([[BIG.name, BIG.bytes], [SMALL.name, SMALL.bytes]]);
    expect(changed).toBeUndefined();
  });

  it('writes SHA256SUMS, then manifest.json, and clears the state only when the manifest was written', async () => {
    // Prepare
    const { rt, bucket } = await setup('complete-write');
    await storeFile(rt, bucket, BIG);
    await storeFile(rt, bucket, SMALL);
    const files = await storedFiles(rt, { graphId: G, backupId: B }, [BIG.name, SMALL.name]);
    const source = { graphId: G, backupId: B, backupName: 'b', runId: 'run-1' };

    // Act: a writer that lost the race, then the default writer
    const lost = await completeBackup(rt, source, files ?? [], { log: rt.logger, write: () => Promise.resolve('exists' as const) });
    const stateAfterLost = await listKeys(bucket, `${PREFIX}_state/`);
    const written = await completeBackup(rt, source, files ?? [], { log: rt.logger });

    // Assess
    expect(lost.outcome).toBe('exists');
    expect(stateAfterLost).toHaveLength(2);
    expect(written.outcome).toBe('written');
    expect(written.manifest.files.map((f) => f.name)).toEqual([SMALL.name, BIG.name]);
    expect(await getJson(rt, bucket, written.manifestKey)).toEqual(written.manifest);
    expect((await getObjectBytes(bucket, `${PREFIX}${G}/${B}/SHA256SUMS`)).toString()).toContain(BIG.name);
    expect(await listKeys(bucket, `${PREFIX}_state/`)).toEqual([]);
  });
});
