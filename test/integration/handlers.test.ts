// The deployed handlers themselves (functions/*.ts: the shared middy stack, the runtime built
// from the environment, the domain entry points), driven end to end against the local stack:
// Swift for S3, fauxqs for SQS and SNS, the GES emulator. The test plays Lambda's part: it
// builds the events and contexts, and feeds the copy queue's messages to copyWorker.
import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { resetRuntime } from '../../functions/lib/runtime.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listInProgressUploads, listKeys, s3Client, s3Endpoint, snsClient, sqsClient, sqsEndpoint, uniqueName } from '../support/aws.js';

const MiB = 1024 * 1024;
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B1 = '0f1e2d3c-4b5a-4697-8877-665544332211';
const B2 = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
// Outside the scheduled run's manifest (graph G only): archived by hand in the deadline test.
const G_BIG = '9b9a05c2-0000-4000-8000-000000000001';
const B_BIG = '11111111-2222-4333-8444-555555555555';
const BIG_FILE = { name: 'big.bin', bytes: 40 * MiB + 1 };
const TOKEN = 'handler-token';

interface Report { backups: { graphId: string; backupId: string; status: string; files: number; error?: { code: string } }[] }

function context(remainingMs: number): Context {
  const end = Date.now() + remainingMs;
  return {
    functionName: 'test-fn',
    awsRequestId: `req-${Math.random().toString(36).slice(2)}`,
    getRemainingTimeInMillis: () => end - Date.now(),
  } as unknown as Context;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('Lambda handlers against the local stack', () => {
  const s3 = s3Client();
  const sqs = sqsClient();
  const sns = snsClient();
  let emulator: Emulator;
  let bucket: string;
  let queueUrl: string;
  let alertsUrl: string;
  const saved = { ...process.env };

  beforeAll(async () => {
    emulator = await startEmulator({
      staticTokens: [TOKEN],
      graphs: [{ id: G, backups: [
        { id: B1, name: 'b1', files: [{ name: 'metadata.xml', bytes: 4096 }, { name: 'vertices.bin', bytes: 9 * MiB + 3 }] },
        { id: B2, name: 'b2', files: [{ name: 'graph.bin', bytes: 2 * MiB }] },
      ] }, { id: G_BIG, backups: [{ id: B_BIG, name: 'big', files: [BIG_FILE] }] }],
    });
    bucket = await createTestBucket('handlers');
    const created = (await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('copy'), Attributes: { VisibilityTimeout: '30' } }))).QueueUrl!;
    // fauxqs names its queues on `sqs.<region>.localhost`, which does not resolve here, and the
    // SDK sends to the queue URL's host: give the functions the same queue on the endpoint's host.
    queueUrl = `${sqsEndpoint()}${new URL(created).pathname}`;
    alertsUrl = (await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('alerts') }))).QueueUrl!;
    const alertsArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: alertsUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    const topicArn = (await sns.send(new CreateTopicCommand({ Name: uniqueName('alerts') }))).TopicArn!;
    await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: alertsArn }));
    await s3.send(new PutObjectCommand({
      Bucket: bucket,
      Key: 'config/manifest.json',
      Body: JSON.stringify({ version: 1, graphs: [{ graphId: G, backups: 'all' }] }),
    }));
    // What serverless.yml gives the functions, pointed at the local stack.
    Object.assign(process.env, {
      GES_ENDPOINT: emulator.gesEndpoint,
      GES_PROJECT_ID: emulator.projectId,
      GES_AUTH_TOKEN: TOKEN,
      ARCHIVE_BUCKET: bucket,
      ARCHIVE_PART_SIZE_MB: '5',
      // One connection per file and resumable copies from 10 s on: a throttled source then sets
      // the pace the deadline test needs.
      ARCHIVE_STREAMS: '1',
      ARCHIVE_RESUMABLE_AFTER_S: '10',
      DOWNLOAD_ALLOWED_HOSTS: '127.0.0.1',
      S3_FORCE_PATH_STYLE: 'true',
      COPY_QUEUE_URL: queueUrl,
      ALERT_TOPIC_ARN: topicArn,
      MANIFEST_URI: `s3://${bucket}/config/manifest.json`,
      AWS_ENDPOINT_URL_S3: s3Endpoint(),
      AWS_ENDPOINT_URL_SQS: sqsEndpoint(),
      AWS_ENDPOINT_URL_SNS: sqsEndpoint(),
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
      INLINE_THROUGHPUT_MBPS: '1',
      LOG_LEVEL: 'warn',
    });
    delete process.env['HWC_SECRET_ID'];
    resetRuntime();
  });

  afterAll(async () => {
    resetRuntime();
    process.env = saved;
    await emulator.close();
    s3.destroy();
    sqs.destroy();
    sns.destroy();
  });

  it('archiveBackup returns the run report for a manual invocation, and refuses a bad event naming the field', async () => {
    const { handler } = await import('../../functions/archive-backup.js');

    const report = await handler({ graphId: G, backupId: B2 }, context(60_000)) as unknown as Report;
    await expect(handler({ graphId: G }, context(60_000))).rejects.toMatchObject({ code: 'ARGS_INVALID', message: expect.stringContaining('backupId') as unknown });

    expect(report.backups).toEqual([expect.objectContaining({ graphId: G, backupId: B2, status: 'archived', files: 1 })]);
    expect(sha256(await getObjectBytes(bucket, `ges-backups/${G}/${B2}/graph.bin`))).toBe(emulator.fileSha256(G, B2, 'graph.bin'));
  });

  it('archiveBackup cut short by the Lambda deadline reports DEADLINE_EXCEEDED (not a cancellation) and keeps its upload under a checkpoint the next invocation continues', async () => {
    const { handler } = await import('../../functions/archive-backup.js');
    // 40 MiB at 1 MiB/s: ~40 s, so the copy keeps a resumable hash; the stack's signal fires
    // after 7 s (10 s before the deadline), when its first 5 MiB part is stored.
    emulator.faults.throttleDownloads(MiB);
    try {
      const report = await handler({ graphId: G_BIG, backupId: B_BIG }, context(17_000)) as unknown as Report;
      // The failure alerts with the same code (drained first, so later tests see only their own).
      const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: alertsUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }));
      for (const m of Messages) await sqs.send(new DeleteMessageCommand({ QueueUrl: alertsUrl, ReceiptHandle: m.ReceiptHandle! }));

      expect(report.backups).toEqual([expect.objectContaining({ backupId: B_BIG, status: 'failed', error: expect.objectContaining({ code: 'DEADLINE_EXCEEDED' }) as unknown })]);
      expect(Messages.map((m) => JSON.parse((JSON.parse(m.Body!) as { Message: string }).Message) as { failures: { code: string }[] })
        .flatMap((a) => a.failures.map((f) => f.code))).toEqual(['DEADLINE_EXCEEDED']);
      const checkpoints = await listKeys(bucket, `ges-backups/_state/${G_BIG}/${B_BIG}/checkpoints/`);
      expect(checkpoints).toHaveLength(1);
      const checkpoint = JSON.parse((await getObjectBytes(bucket, checkpoints[0]!)).toString()) as { uploadId: string; offset: number };
      expect(checkpoint.offset).toBeGreaterThanOrEqual(5 * MiB);
      expect((await listInProgressUploads(bucket)).map((u) => u.UploadId)).toEqual([checkpoint.uploadId]);
      expect(await listKeys(bucket, `ges-backups/${G_BIG}/${B_BIG}/`)).toEqual([]);

      emulator.faults.throttleDownloads(null);
      emulator.resetStats();
      const again = await handler({ graphId: G_BIG, backupId: B_BIG }, context(60_000)) as unknown as Report;

      expect(again.backups).toEqual([expect.objectContaining({ backupId: B_BIG, status: 'archived' })]);
      expect(emulator.stats.downloadBytes.get(BIG_FILE.name)).toBe(BIG_FILE.bytes - checkpoint.offset);
      expect(sha256(await getObjectBytes(bucket, `ges-backups/${G_BIG}/${B_BIG}/${BIG_FILE.name}`))).toBe(emulator.fileSha256(G_BIG, B_BIG, BIG_FILE.name));
      expect(await listInProgressUploads(bucket)).toEqual([]);
      expect(await listKeys(bucket, `ges-backups/_state/${G_BIG}/${B_BIG}/`)).toEqual([]);
    } finally {
      emulator.faults.reset();
    }
  });

  it('scheduledRun fans out when short of time, copyWorker drains the queue, and every file and manifest.json lands', async () => {
    const { handler: scheduledRun } = await import('../../functions/scheduled-run.js');
    const { handler: copyWorker } = await import('../../functions/copy-worker.js');

    // 65 s left, 60 s of it kept free, at an assumed 1 MiB/s: ~9 MiB does not fit, so it fans out.
    const report = await scheduledRun({}, context(65_000)) as unknown as Report & { mode: string };
    expect(report.mode).toBe('fan-out');
    expect(report.backups.map((b) => [b.backupId, b.status]).sort()).toEqual([[B1, 'queued'], [B2, 'skipped']].sort());

    let handled = 0;
    for (let round = 0; round < 20; round++) {
      const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, AttributeNames: ['All'] }));
      if (Messages.length === 0) break;
      const event = {
        Records: Messages.map((m) => ({
          messageId: m.MessageId!, receiptHandle: m.ReceiptHandle!, body: m.Body!,
          attributes: { ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1' },
          eventSource: 'aws:sqs',
        })),
      };
      const result = await copyWorker(event, context(600_000));
      expect(result.batchItemFailures).toEqual([]);
      for (const m of Messages) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
      handled += Messages.length;
    }

    expect(handled).toBe(2);
    const manifest = JSON.parse((await getObjectBytes(bucket, `ges-backups/${G}/${B1}/manifest.json`)).toString()) as { files: { name: string; sha256: string }[] };
    expect(manifest.files.map((f) => f.name).sort()).toEqual(['metadata.xml', 'vertices.bin']);
    for (const f of manifest.files) {
      expect(sha256(await getObjectBytes(bucket, `ges-backups/${G}/${B1}/${f.name}`))).toBe(emulator.fileSha256(G, B1, f.name));
      expect(f.sha256).toBe(emulator.fileSha256(G, B1, f.name));
    }
    expect(await listKeys(bucket, 'ges-backups/_state/')).toEqual([]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });

  it('copyWorker reports only the failed message of a batch, and a failed manual run raises one alert', async () => {
    const { handler: copyWorker } = await import('../../functions/copy-worker.js');
    const { handler: archiveBackup } = await import('../../functions/archive-backup.js');

    const result = await copyWorker({
      Records: [
        { messageId: 'bad-1', body: '{"v":1,"type":"copy-file"}', attributes: { ApproximateReceiveCount: '1' } },
        { messageId: 'dup-2', body: JSON.stringify({ v: 1, type: 'copy-file', runId: 'r1', graphId: G, backupId: B2, fileName: 'graph.bin' }), attributes: { ApproximateReceiveCount: '1' } },
      ],
    }, context(60_000));
    const failed = await archiveBackup({ graphId: G, backupId: 'deadbeef-0000-4000-8000-000000000000' }, context(60_000)) as unknown as Report;

    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'bad-1' }]);
    expect(failed.backups[0]).toMatchObject({ status: 'failed', error: { code: 'BACKUP_NOT_FOUND' } });
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: alertsUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }));
    expect(Messages).toHaveLength(1);
    const envelope = JSON.parse(Messages[0]!.Body!) as { Subject: string; Message: string };
    expect(envelope.Subject).toMatch(/ges-archiver: .*failed/);
    expect(JSON.parse(envelope.Message)).toMatchObject({ failures: [{ graphId: G, code: 'BACKUP_NOT_FOUND' }] });
    expect(envelope.Message).not.toContain(TOKEN);
  });
});
