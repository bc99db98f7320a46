// What runs leave behind (issue 8, item 6): finalize removes the whole `_state/` folder of the
// backup, checkpoints and their uploads included; `ges-archiver cleanup` aborts old incomplete
// uploads and removes the state of archived or abandoned backups, and keeps the rest. Swift
// has no lifecycle rules, which is exactly the case the sweep is for.
import { createHash } from 'node:crypto';
import { CreateMultipartUploadCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { cleanupArchive } from '../../lib/archive/cleanup.js';
import { receiptKey } from '../../lib/store/receipts.js';
import { putJson } from '../../lib/store/s3-objects.js';
import { finalizeBackup, checkpointKey, jobKey } from '../../lib/fanout/index.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { createTestBucket, listInProgressUploads, listKeys, s3Client } from '../support/aws.js';
import { runCli, useLocalS3 } from '../support/cli.js';

const P = 'ges-backups/';
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B_DONE = '0f1e2d3c-4b5a-4697-8877-665544332211';
const B_BUSY = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
const HOUR = 3_600_000;
const retry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 50, maxElapsedMs: 5_000 });
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

let s3: S3Client;

beforeAll(() => {
  useLocalS3();
  s3 = s3Client();
});

afterAll(() => {
  s3.destroy();
});

function deps(bucket: string) {
  return {
    s3, retry, logger: silentLogger(),
    config: { archive: { bucket, prefix: P }, concurrency: { backups: 1, files: 1, parts: 1, streams: 1 }, download: { allowedHosts: [] }, copyQueueUrl: undefined, alertTopicArn: undefined },
    ges: {} as never, copier: {} as never,
  };
}

/** A multipart upload to one of the backup's files, and a checkpoint naming it (what a handed-over copy leaves). */
async function handedOverCopy(bucket: string, backupId: string, name: string): Promise<{ uploadId: string; ckKey: string }> {
  const key = `${P}${G}/${backupId}/${name}`;
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const ckKey = checkpointKey(P, G, backupId, name);
  await putJson({ s3, retry }, bucket, ckKey, { version: 1, bucket, key, uploadId: UploadId, partSize: 5 << 20, totalBytes: 6 << 20, offset: 0, parts: [], hashState: 'AAAA' });
  return { uploadId: UploadId!, ckKey };
}

async function storedWithReceipt(bucket: string, backupId: string, name: string): Promise<void> {
  const key = `${P}${G}/${backupId}/${name}`;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: name }));
  await putJson({ s3, retry }, bucket, receiptKey(P, G, backupId, name), { name, key, bytes: name.length, sha256: sha256(name), completedAt: new Date().toISOString() });
}

describe('leftovers', () => {
  it('finalize removes everything under the backup\'s _state/, aborting the uploads its checkpoints name', async () => {
    // Prepare: every file stored with its receipt, the job, and a stale checkpoint of a duplicate handover
    const bucket = await createTestBucket('finalize-state');
    await storedWithReceipt(bucket, B_DONE, 'a.bin');
    await putJson({ s3, retry }, bucket, jobKey(P, G, B_DONE), { version: 1, runId: 'r', graphId: G, backupId: B_DONE, createdAt: new Date().toISOString(), files: [{ name: 'a.bin' }] });
    await handedOverCopy(bucket, B_DONE, 'a.bin');

    // Act
    const result = await finalizeBackup(deps(bucket), G, B_DONE, { settleDelayMs: 100 });

    // Assess
    expect(result.outcome).toBe('written');
    expect(await listKeys(bucket, `${P}_state/`)).toEqual([]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });

  it('cleanup removes the state of archived backups at once and of abandoned ones after the age, aborts old uploads, keeps what may be in progress, and touches nothing else', async () => {
    // Prepare: an archived backup with leftover state; a backup in progress with a handed-over copy;
    // an upload of a crashed run outside any state; archived files and a run report
    const bucket = await createTestBucket('sweep');
    await storedWithReceipt(bucket, B_DONE, 'a.bin');
    await putJson({ s3, retry }, bucket, `${P}${G}/${B_DONE}/manifest.json`, { archived: true });
    await putJson({ s3, retry }, bucket, `${P}_runs/run-1.json`, { runId: 'run-1' });
    await storedWithReceipt(bucket, B_BUSY, 'x.bin');
    const busy = await handedOverCopy(bucket, B_BUSY, 'y.bin');
    const { UploadId: crashed } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${P}${G}/${B_DONE}/crashed.bin` }));
    const archivedKeys = [`${P}${G}/${B_DONE}/a.bin`, `${P}${G}/${B_DONE}/manifest.json`, `${P}${G}/${B_BUSY}/x.bin`, `${P}_runs/run-1.json`];

    // Act: a dry run, then a real one, both with the uploads and the busy backup younger than the age
    const dry = await cleanupArchive(deps(bucket), { olderThanMs: HOUR, dryRun: true });
    const afterDry = await listKeys(bucket);
    const now = await cleanupArchive(deps(bucket), { olderThanMs: HOUR });

    // Assess
    expect(dry).toMatchObject({ dryRun: true, uploads: [], state: [{ graphId: G, backupId: B_DONE, reason: 'archived', objects: 1 }], kept: [{ backupId: B_BUSY }], errors: [] });
    expect(afterDry).toEqual(expect.arrayContaining([receiptKey(P, G, B_DONE, 'a.bin')]));
    expect(now).toMatchObject({ uploads: [], state: [{ backupId: B_DONE, reason: 'archived' }], kept: [{ backupId: B_BUSY }], errors: [] });
    expect(await listKeys(bucket, `${P}_state/${G}/${B_DONE}/`)).toEqual([]);
    expect(await listKeys(bucket, `${P}_state/${G}/${B_BUSY}/`)).toHaveLength(2);
    expect((await listInProgressUploads(bucket)).map((u) => u.UploadId).sort()).toEqual([busy.uploadId, crashed].sort());

    // Act: two hours later nothing has changed: the busy backup is abandoned, the uploads are old
    const later = await cleanupArchive(deps(bucket), { olderThanMs: HOUR, now: Date.now() + 2 * HOUR });

    // Assess
    expect(later.errors).toEqual([]);
    expect(later.uploads.map((u) => u.uploadId).sort()).toEqual([busy.uploadId, crashed].sort());
    expect(later.state).toEqual([expect.objectContaining({ backupId: B_BUSY, reason: 'abandoned', objects: 2 })]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
    expect(await listKeys(bucket, `${P}_state/`)).toEqual([]);
    expect((await listKeys(bucket)).sort()).toEqual(archivedKeys.sort());
  });

  it('ges-archiver cleanup: --dry-run --json prints one document and deletes nothing; a too short age or a missing bucket exits 2', async () => {
    // Prepare
    const bucket = await createTestBucket('sweep-cli');
    await storedWithReceipt(bucket, B_DONE, 'a.bin');
    await putJson({ s3, retry }, bucket, `${P}${G}/${B_DONE}/manifest.json`, { archived: true });
    const env = { ARCHIVE_BUCKET: bucket, S3_FORCE_PATH_STYLE: 'true', LOG_LEVEL: 'warn' };
    const keys = await listKeys(bucket);

    // Act
    const dry = await runCli(['cleanup', '--dry-run', '--json'], env);
    const tooShort = await runCli(['cleanup', '--older-than', '30m'], env);
    const missing = await runCli(['cleanup'], { ...env, ARCHIVE_BUCKET: `${bucket}-missing` });

    // Assess
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, state: [{ backupId: B_DONE, reason: 'archived' }], errors: [] });
    expect(await listKeys(bucket)).toEqual(keys);
    expect(tooShort.code).toBe(2);
    expect(tooShort.stderr).toContain('--older-than must be an age of at least 1h');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`"${bucket}-missing" does not exist`);

    // Act
    const real = await runCli(['cleanup', '--older-than', '2d'], env);

    // Assess
    expect(real.code).toBe(0);
    expect(real.stdout).toMatch(/removed\s+_state of .* \(archived\): 1 object/);
    expect(await listKeys(bucket, `${P}_state/`)).toEqual([]);
  });
});
