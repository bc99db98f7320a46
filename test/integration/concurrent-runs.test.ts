// Runs that overlap (issue 8, item 1): a late duplicate never replaces a file under a finished
// manifest.json, a continuation that finds its work done leaves no upload behind, and a backup
// whose fan-out is in progress is skipped by other runs. Against Swift, fauxqs and the GES
// emulator; "another run" is played by the test, writing what that run would write.
import { CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { archiveOne } from '../../lib/archive/run.js';
import { putJson } from '../../lib/store/s3-objects.js';
import { loadConfig } from '../../lib/config.js';
import { checkpointKey, handleCopyMessages, jobKey } from '../../lib/fanout/index.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { createRuntime, type Runtime } from '../../lib/app/runtime.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listInProgressUploads, listKeys, s3Client, sqsClient, uniqueName } from '../support/aws.js';
import { runCli, tokenEnv, useLocalS3 } from '../support/cli.js';

const MiB = 1024 * 1024;
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B_BIG = '0f1e2d3c-4b5a-4697-8877-665544332211';
const B_SMALL = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
const TOKEN = 'static-token-1';
const BIG = { name: 'vertices.bin', bytes: 6 * MiB + 17 };
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 50, maxElapsedMs: 5_000 });
const OTHER_RUNS_BYTES = Buffer.from('bytes another run stored and recorded in its manifest.json');

let emulator: Emulator;
let s3: S3Client;
let sqs: SQSClient;
const runtimes: Runtime[] = [];

beforeAll(async () => {
  useLocalS3();
  s3 = s3Client();
  sqs = sqsClient();
  emulator = await startEmulator({
    staticTokens: [TOKEN],
    graphs: [{ id: G, backups: [
      { id: B_BIG, name: 'big', files: [BIG] },
      { id: B_SMALL, name: 'small', files: [{ name: 'graph.bin', bytes: 1000 }] },
    ] }],
  });
});

afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()));
  await emulator.close();
  s3.destroy();
  sqs.destroy();
});

function runtime(bucket: string, client: S3Client = s3, env: Record<string, string> = {}): Runtime {
  const rt = createRuntime(loadConfig({ ...tokenEnv(emulator, bucket, TOKEN), ...env }), silentLogger(), { s3: client, sqs, retry: fastRetry });
  runtimes.push(rt);
  return rt;
}

/**
 * A client whose CreateMultipartUpload for `key` first lets "another run" finish the backup:
 * that run stores its own bytes at the key and writes manifest.json, while this copy is still
 * downloading.
 */
function clientWhereAnotherRunFinishesDuring(bucket: string, key: string, manifest: string): S3Client {
  const client = s3Client();
  let fired = false;
  client.middlewareStack.add((next, context) => async (args) => {
    const input = args.input as { Key?: string };
    if (!fired && context.commandName === 'CreateMultipartUploadCommand' && input.Key === key) {
      fired = true;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: OTHER_RUNS_BYTES }));
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: manifest, Body: '{"written":"by another run"}' }));
    }
    return next(args);
  }, { step: 'initialize', name: 'anotherRunFinishes' });
  return client;
}

describe('overlapping runs', () => {
  it('an inline run that finds the backup archived by another run before it commits replaces nothing and reports it skipped (ALREADY_ARCHIVED)', async () => {
    // Prepare
    const bucket = await createTestBucket('late-inline');
    const key = `ges-backups/${G}/${B_BIG}/${BIG.name}`;
    const manifest = `ges-backups/${G}/${B_BIG}/manifest.json`;
    const rt = runtime(bucket, clientWhereAnotherRunFinishesDuring(bucket, key, manifest));

    // Act
    const report = await archiveOne(rt, G, B_BIG);

    // Assess: not a failure of this run; the other run's object and manifest stand
    expect(report.backups).toEqual([expect.objectContaining({ backupId: B_BIG, status: 'skipped', reason: expect.objectContaining({ code: 'ALREADY_ARCHIVED' }) as unknown })]);
    expect(report.totals.failed).toBe(0);
    expect(await getObjectBytes(bucket, key)).toEqual(OTHER_RUNS_BYTES);
    expect((await getObjectBytes(bucket, manifest)).toString()).toContain('by another run');
    expect(await listInProgressUploads(bucket)).toEqual([]);
    expect(await listKeys(bucket, 'ges-backups/_state/')).toEqual([]);
  });

  it('a late duplicate copy message finds the backup archived before it commits: the file under manifest.json is not replaced', async () => {
    // Prepare
    const bucket = await createTestBucket('late-worker');
    const key = `ges-backups/${G}/${B_BIG}/${BIG.name}`;
    const manifest = `ges-backups/${G}/${B_BIG}/manifest.json`;
    const rt = runtime(bucket, clientWhereAnotherRunFinishesDuring(bucket, key, manifest));
    const body = JSON.stringify({ v: 1, type: 'copy-file', runId: 'run-late', graphId: G, backupId: B_BIG, fileName: BIG.name });

    // Act
    const result = await handleCopyMessages(rt, [{ messageId: 'm-late', body }]);

    // Assess: acknowledged (nothing to retry), nothing replaced, no upload left
    expect(result.batchItemFailures).toEqual([]);
    expect(await getObjectBytes(bucket, key)).toEqual(OTHER_RUNS_BYTES);
    expect(await listInProgressUploads(bucket)).toEqual([]);
    expect(await listKeys(bucket, `ges-backups/_state/${G}/${B_BIG}/files/`)).toEqual([]);
  });

  it('a continuation that finds its file already archived aborts the upload its checkpoint names and removes the checkpoint', async () => {
    // Prepare: a handed-over copy's upload and checkpoint, and the backup archived meanwhile
    const bucket = await createTestBucket('done-continuation');
    const rt = runtime(bucket);
    const key = `ges-backups/${G}/${B_BIG}/${BIG.name}`;
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const ckKey = checkpointKey('ges-backups/', G, B_BIG, BIG.name);
    await putJson(rt, bucket, ckKey, {
      version: 1, bucket, key, uploadId: UploadId, partSize: 5 * MiB, totalBytes: BIG.bytes, offset: 0, parts: [], hashState: 'AAAA',
    });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `ges-backups/${G}/${B_BIG}/manifest.json`, Body: '{}' }));
    const body = JSON.stringify({ v: 1, type: 'copy-file', runId: 'run-1', graphId: G, backupId: B_BIG, fileName: BIG.name, checkpointKey: ckKey });
    const downloads = emulator.stats.downloadRequests;

    // Act
    const result = await handleCopyMessages(rt, [{ messageId: 'm-cont', body }]);

    // Assess
    expect(result.batchItemFailures).toEqual([]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
    expect(await listKeys(bucket, ckKey)).toEqual([]);
    expect(emulator.stats.downloadRequests).toBe(downloads);
  });

  it('a manual archive of a backup whose fan-out is in progress skips it with FANOUT_IN_PROGRESS and asks GES for nothing; a stale marker does not hold it back', async () => {
    // Prepare: another run's job.json, written a minute ago
    const bucket = await createTestBucket('fanout-marker');
    const env = { ...tokenEnv(emulator, bucket, TOKEN), FANOUT_MARKER_HOURS: '1' };
    const rt = runtime(bucket);
    const job = { version: 1, runId: 'run-fanning-out', graphId: G, backupId: B_SMALL, files: [{ name: 'graph.bin' }] };
    await putJson(rt, bucket, jobKey('ges-backups/', G, B_SMALL), { ...job, createdAt: new Date(Date.now() - 60_000).toISOString() });
    const gesRequests = (): number => emulator.stats.linkRequests + emulator.stats.listRequests;
    const before = gesRequests();

    // Act
    const busy = await runCli(['archive', '--graph', G, '--backup', B_SMALL, '--json'], env);
    const text = await runCli(['archive', '--graph', G, '--backup', B_SMALL], env);

    // Assess
    expect(busy.code).toBe(0);
    const [backup] = (JSON.parse(busy.stdout) as { backups: Record<string, unknown>[] }).backups;
    expect(backup).toMatchObject({ backupId: B_SMALL, status: 'skipped', reason: { code: 'FANOUT_IN_PROGRESS' } });
    expect((backup!['reason'] as { message: string }).message).toContain('run-fanning-out');
    expect(text.stdout).toMatch(/skipped .*being archived by the fan-out of run run-fanning-out/);
    expect(gesRequests()).toBe(before);
    expect(await listKeys(bucket, `ges-backups/${G}/`)).toEqual([]);

    // Act: the marker is older than FANOUT_MARKER_HOURS: its fan-out is taken for dead
    await putJson(rt, bucket, jobKey('ges-backups/', G, B_SMALL), { ...job, createdAt: new Date(Date.now() - 2 * 3_600_000).toISOString() });
    const stale = await runCli(['archive', '--graph', G, '--backup', B_SMALL, '--json'], env);

    // Assess: archived, and the dead fan-out's state is gone with the rest
    expect(stale.code).toBe(0);
    expect((JSON.parse(stale.stdout) as { backups: { status: string }[] }).backups[0]!.status).toBe('archived');
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `ges-backups/${G}/${B_SMALL}/manifest.json` }));
    expect(await listKeys(bucket, 'ges-backups/_state/')).toEqual([]);
  });

  it('a scheduled run does not fan out again a backup whose fan-out is in progress', async () => {
    // Prepare
    const bucket = await createTestBucket('fanout-twice');
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('copy-twice') }));
    const rt = runtime(bucket, s3, { COPY_QUEUE_URL: QueueUrl!, MANIFEST_URI: `s3://${bucket}/m.json` });
    await putJson(rt, bucket, 'm.json', { version: 1, graphs: [{ graphId: G, backups: [B_SMALL] }] });
    const { runScheduled } = await import('../../lib/app/scheduled-run.js');
    const first = await runScheduled(rt, { deadline: Date.now() });

    // Act: the next run, while the first one's message is still unprocessed
    const second = await runScheduled(rt, { deadline: Date.now() });

    // Assess
    expect(first.backups.map((b) => b.status)).toEqual(['queued']);
    expect(second.backups).toEqual([expect.objectContaining({ status: 'skipped', reason: expect.objectContaining({ code: 'FANOUT_IN_PROGRESS' }) as unknown })]);
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    expect(Messages).toHaveLength(1);
  });
});
