// The Lambda functions' domain entry points (runScheduled, archiveOneBackup) against the local
// stack: Swift (S3), fauxqs (SQS + SNS, alerts received on a subscribed queue), GES emulator.
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { archiveOneBackup, runScheduled } from '../../lib/app/scheduled-run.js';
import { putJson } from '../../lib/store/s3-objects.js';
import { loadConfig } from '../../lib/config.js';
import { ArchiverError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { createRuntime, type Runtime } from '../../lib/app/runtime.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listKeys, s3Client, snsClient, sqsClient, uniqueName } from '../support/aws.js';
import { tokenEnv } from '../support/cli.js';

const MiB = 1024 * 1024;
const G = '9b9a05c2-0000-4000-8000-000000000001';
const B_OK = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
const B_UNSAFE = '22222222-3333-4444-8555-666666666666';
const B_MISSING = '33333333-4444-4555-8666-777777777777';
const TOKEN = 'static-token-1';
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 50, maxElapsedMs: 5_000 });
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let emulator: Emulator;
let s3: S3Client;
let sqs: SQSClient;
let sns: SNSClient;
const runtimes: Runtime[] = [];

beforeAll(async () => {
  s3 = s3Client();
  sqs = sqsClient();
  sns = snsClient();
  emulator = await startEmulator({
    staticTokens: [TOKEN],
    graphs: [{ id: G, backups: [
      { id: B_OK, name: 'ok', files: [{ name: 'graph.bin', bytes: 2 * MiB }, { name: 'schema.xml', bytes: 900 }] },
      { id: B_UNSAFE, name: 'unsafe', files: [{ name: 'evil\u202egnp.exe', bytes: 10 }] },
    ] }],
  });
});

afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()));
  await emulator.close();
  s3.destroy();
  sqs.destroy();
  sns.destroy();
});

async function queue(name: string): Promise<{ url: string; arn: string }> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: uniqueName(name) }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  return { url: QueueUrl!, arn: Attributes!.QueueArn! };
}

async function alertTopic(): Promise<{ topicArn: string; queueUrl: string }> {
  const q = await queue('alerts');
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: uniqueName('alert-topic') }));
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: q.arn }));
  return { topicArn: TopicArn!, queueUrl: q.url };
}

interface Alert {
  subject: string;
  body: Record<string, unknown> & { failures: { graphId: string; backupId: string; code: string; message: string }[] };
}

async function alertsOn(queueUrl: string, waitSeconds = 2): Promise<Alert[]> {
  const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds }));
  return (res.Messages ?? []).map((m) => {
    const envelope = JSON.parse(m.Body!) as { Subject: string; Message: string };
    return { subject: envelope.Subject, body: JSON.parse(envelope.Message) as Alert['body'] };
  });
}

async function messagesOn(queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(Attributes?.ApproximateNumberOfMessages ?? '0');
}

function runtime(bucket: string, env: Record<string, string> = {}): Runtime {
  const rt = createRuntime(loadConfig({ ...tokenEnv(emulator, bucket, TOKEN), ...env }), silentLogger(), { s3, sqs, sns, retry: fastRetry });
  runtimes.push(rt);
  return rt;
}

describe('Lambda entry points', () => {
  it('scheduledRun archives inline when the set fits its time budget, stores the report, and queues nothing', async () => {
    // Prepare
    const bucket = await createTestBucket('lambda-inline');
    const copy = await queue('copy-inline');
    const alerts = await alertTopic();
    const rt = runtime(bucket, { COPY_QUEUE_URL: copy.url, ALERT_TOPIC_ARN: alerts.topicArn, MANIFEST_URI: `s3://${bucket}/manifest.json` });
    await putJson(rt, bucket, 'manifest.json', { version: 1, graphs: [{ graphId: G, backups: [B_OK] }] });

    // Act: 10 minutes left, 2 MiB at 50 MiB/s
    const report = await runScheduled(rt, { deadline: Date.now() + 600_000 });

    // Assess
    expect(report.mode).toBe('inline');
    expect(report.backups.map((b) => [b.backupId, b.status])).toEqual([[B_OK, 'archived']]);
    expect(await listKeys(bucket, `ges-backups/_runs/${report.runId}.json`)).toHaveLength(1);
    expect(sha256(await getObjectBytes(bucket, `ges-backups/${G}/${B_OK}/graph.bin`))).toBe(emulator.fileSha256(G, B_OK, 'graph.bin'));
    expect(await messagesOn(copy.url)).toBe(0);
    expect(await alertsOn(alerts.queueUrl, 1)).toEqual([]);
  });

  it('scheduledRun fans out a backup with a file that needs more than half the time budget, though the whole set fits', async () => {
    // Prepare: 1 MiB/s assumed; 3 s of budget after the margin; graph.bin (2 MiB) needs 2 s, more than half.
    const bucket = await createTestBucket('lambda-bigfile');
    const copy = await queue('copy-bigfile');
    const rt = runtime(bucket, { COPY_QUEUE_URL: copy.url, MANIFEST_URI: `s3://${bucket}/manifest.json`, INLINE_THROUGHPUT_MBPS: '1' });
    await putJson(rt, bucket, 'manifest.json', { version: 1, graphs: [{ graphId: G, backups: [B_OK] }] });

    // Act
    const report = await runScheduled(rt, { deadline: Date.now() + 60_000 + 3_500 });

    // Assess
    expect(report.mode).toBe('fan-out');
    expect(report.backups.map((b) => b.status)).toEqual(['queued']);
    expect(await messagesOn(copy.url)).toBe(2);
  });

  it('scheduledRun counts a file whose size GES does not give as unbounded, and fans it out', async () => {
    // Prepare: a GES whose file lists carry no sizes; ten minutes of budget.
    const quiet = await startEmulator({ staticTokens: [TOKEN], omitFileSizes: true, graphs: [{ id: G, backups: [{ id: B_OK, files: [{ name: 'tiny.bin', bytes: 10 }] }] }] });
    try {
      const bucket = await createTestBucket('lambda-nosize');
      const copy = await queue('copy-nosize');
      const rt = createRuntime(loadConfig({ ...tokenEnv(quiet, bucket, TOKEN), COPY_QUEUE_URL: copy.url, MANIFEST_URI: `s3://${bucket}/manifest.json` }), silentLogger(), { s3, sqs, sns, retry: fastRetry });
      runtimes.push(rt);
      await putJson(rt, bucket, 'manifest.json', { version: 1, graphs: [{ graphId: G, backups: [B_OK] }] });

      // Act
      const report = await runScheduled(rt, { deadline: Date.now() + 600_000 });

      // Assess
      expect(report.mode).toBe('fan-out');
      expect(report.backups.map((b) => b.status)).toEqual(['queued']);
    } finally {
      await quiet.close();
    }
  });

  it('scheduledRun runs inline (and warns) when it would fan out but no queue is configured', async () => {
    // Prepare
    const bucket = await createTestBucket('lambda-noqueue');
    const rt = runtime(bucket, { MANIFEST_URI: `s3://${bucket}/manifest.json` });
    await putJson(rt, bucket, 'manifest.json', { version: 1, graphs: [{ graphId: G, backups: [B_OK] }] });

    // Act
    const report = await runScheduled(rt, { deadline: Date.now() });

    // Assess
    expect(report.mode).toBe('inline');
    expect(report.backups.map((b) => b.status)).toEqual(['archived']);
  });

  it('fan-out refuses a backup with an unsafe file name up front, queues the others, and alerts once for the run', async () => {
    // Prepare
    const bucket = await createTestBucket('lambda-unsafe');
    const copy = await queue('copy-unsafe');
    const alerts = await alertTopic();
    const rt = runtime(bucket, { COPY_QUEUE_URL: copy.url, ALERT_TOPIC_ARN: alerts.topicArn, MANIFEST_URI: `s3://${bucket}/manifest.json` });
    await putJson(rt, bucket, 'manifest.json', { version: 1, graphs: [{ graphId: G, backups: [B_OK, B_UNSAFE] }] });

    // Act
    const report = await runScheduled(rt, { deadline: Date.now() });

    // Assess
    expect(report.mode).toBe('fan-out');
    expect(report.backups.map((b) => [b.backupId, b.status, b.error?.code])).toEqual([[B_OK, 'queued', undefined], [B_UNSAFE, 'failed', 'UNSAFE_FILE_NAME']]);
    expect(await messagesOn(copy.url)).toBe(2);
    expect(await listKeys(bucket, `ges-backups/_state/${G}/${B_UNSAFE}/`)).toEqual([]);
    const received = await alertsOn(alerts.queueUrl);
    expect(received).toHaveLength(1);
    expect(received[0]!.subject).toBe(`ges-archiver: 1 of 2 backups failed (run ${report.runId})`);
    expect(received[0]!.body).toMatchObject({ runId: report.runId, source: 'scheduledRun', reportKey: report.reportKey });
    expect(received[0]!.body.failures).toEqual([expect.objectContaining({ graphId: G, backupId: B_UNSAFE, code: 'UNSAFE_FILE_NAME' })]);
  });

  it('scheduledRun with an invalid manifest alerts and throws MANIFEST_INVALID', async () => {
    // Prepare
    const bucket = await createTestBucket('lambda-badmanifest');
    const alerts = await alertTopic();
    const rt = runtime(bucket, { ALERT_TOPIC_ARN: alerts.topicArn, MANIFEST_URI: `s3://${bucket}/manifest.json` });
    await putJson(rt, bucket, 'manifest.json', { version: 1, graphs: [{ graphId: G, backups: 'newest' }] });

    // Act
    const err = await runScheduled(rt, {}).then(() => undefined, (e: unknown) => e);

    // Assess
    expect(err).toBeInstanceOf(ArchiverError);
    expect((err as ArchiverError).code).toBe('MANIFEST_INVALID');
    const received = await alertsOn(alerts.queueUrl);
    expect(received).toHaveLength(1);
    expect(received[0]!.subject).toMatch(/^ges-archiver: run failed: MANIFEST_INVALID \(run /);
    expect(received[0]!.body['runError']).toEqual(expect.objectContaining({ code: 'MANIFEST_INVALID' }));
  });

  it('scheduledRun and archiveBackup with an archive bucket that does not exist fail fast with BUCKET_UNAVAILABLE and alert, before asking GES', async () => {
    // Prepare
    const alerts = await alertTopic();
    const rt = runtime('no-such-archive-bucket-42', { ALERT_TOPIC_ARN: alerts.topicArn, MANIFEST_URI: 's3://no-such-archive-bucket-42/manifest.json' });
    const gesBefore = emulator.stats.listRequests + emulator.stats.linkRequests;

    // Act
    const scheduled = await runScheduled(rt, {}).then(() => undefined, (e: unknown) => e);
    const manual = await archiveOneBackup(rt, { graphId: G, backupId: B_OK }).then(() => undefined, (e: unknown) => e);

    // Assess
    for (const err of [scheduled, manual]) {
      expect(err).toBeInstanceOf(ArchiverError);
      expect(err).toMatchObject({ code: 'BUCKET_UNAVAILABLE', message: expect.stringContaining('"no-such-archive-bucket-42" does not exist') as unknown });
    }
    expect(emulator.stats.listRequests + emulator.stats.linkRequests).toBe(gesBefore);
    const received = await alertsOn(alerts.queueUrl);
    expect(received.map((a) => [a.body['source'], (a.body['runError'] as { code: string }).code]).sort()).toEqual([
      ['archiveBackup', 'BUCKET_UNAVAILABLE'], ['scheduledRun', 'BUCKET_UNAVAILABLE'],
    ]);
    expect(received[0]!.subject).toMatch(/^ges-archiver: run failed: BUCKET_UNAVAILABLE/);
  });

  it('archiveBackup returns the report; a failure publishes one alert without secrets', async () => {
    // Prepare
    const bucket = await createTestBucket('lambda-manual');
    const alerts = await alertTopic();
    const rt = runtime(bucket, { ALERT_TOPIC_ARN: alerts.topicArn });

    // Act
    const ok = await archiveOneBackup(rt, { graphId: G, backupId: B_OK });
    const missing = await archiveOneBackup(rt, { graphId: G, backupId: B_MISSING });
    const invalid = await archiveOneBackup(rt, { graphId: G, backupId: '../x' }).then(() => undefined, (e: unknown) => e);

    // Assess
    expect(ok.backups.map((b) => b.status)).toEqual(['archived']);
    expect(missing.backups.map((b) => [b.status, b.error?.code])).toEqual([['failed', 'BACKUP_NOT_FOUND']]);
    expect((invalid as ArchiverError).code).toBe('MANIFEST_INVALID');
    const received = await alertsOn(alerts.queueUrl);
    expect(received).toHaveLength(1);
    expect(received[0]!.subject).toBe(`ges-archiver: 1 of 1 backup failed (run ${missing.runId})`);
    expect(received[0]!.body).toMatchObject({ source: 'archiveBackup', failures: [expect.objectContaining({ backupId: B_MISSING, code: 'BACKUP_NOT_FOUND' })] });
    expect(JSON.stringify(received[0])).not.toContain(TOKEN);
  });
});
