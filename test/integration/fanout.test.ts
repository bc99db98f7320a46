// Fan-out end to end against the local stack: fauxqs (SQS + SNS), Swift (S3) and the GES
// emulator. The tests drive the domain functions the Lambda handlers call (runScheduled,
// handleCopyMessages, finalizeBackup), and play the part of Lambda's SQS event source
// themselves: receive, hand the records over, delete what did not fail.
import { createHash } from 'node:crypto';
import { CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient,
} from '@aws-sdk/client-sqs';
import { runScheduled } from '../../lib/app/scheduled-run.js';
import { putJson } from '../../lib/store/s3-objects.js';
import { receiptKey } from '../../lib/store/receipts.js';
import { loadConfig } from '../../lib/config.js';
import { finalizeBackup, handleCopyMessages, jobKey, type CopyRecord, type WorkerOptions } from '../../lib/fanout/index.js';
import { checkpointKey } from '../../lib/store/fanout-state.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { createRuntime, type Runtime } from '../../lib/app/runtime.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listInProgressUploads, listKeys, s3Client, snsClient, sqsClient, uniqueName } from '../support/aws.js';
import { tokenEnv } from '../support/cli.js';
import { awsConditionalWrites } from '../support/conditional-writes.js';

const MiB = 1024 * 1024;
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B1 = '0f1e2d3c-4b5a-4697-8877-665544332211';
const B2 = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
const BIG = '11111111-2222-4333-8444-555555555555';
const B1_FILES = [
  { name: 'metadata.xml', bytes: 3 * 1024 },
  { name: 'vertices.bin', bytes: 7 * MiB + 123 },
  { name: 'edges.tar', bytes: 6 * MiB + 5 },
  { name: 'labels.bin', bytes: 2 * MiB },
  { name: 'empty.txt', bytes: 0 },
];
const B2_FILES = [{ name: 'graph.bin', bytes: 3 * MiB }];
const BIG_FILE = { name: 'huge.bin', bytes: 18 * MiB + 777 };
const TOKEN = 'static-token-1';
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 50, maxElapsedMs: 5_000 });
const FINALIZE = { settleDelayMs: 150 };

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
      { id: B1, name: 'b1', files: B1_FILES },
      { id: B2, name: 'b2', files: B2_FILES },
      { id: BIG, name: 'big', files: [BIG_FILE] },
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

beforeEach(() => {
  emulator.faults.reset();
});

async function createQueue(name: string, attributes: Record<string, string> = {}): Promise<{ url: string; arn: string }> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: uniqueName(name), Attributes: attributes }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  return { url: QueueUrl!, arn: Attributes!.QueueArn! };
}

/** An SNS topic with an SQS queue subscribed to it: alerts arrive there in the SNS envelope. */
async function alertTopic(): Promise<{ topicArn: string; queueUrl: string }> {
  const queue = await createQueue('alerts');
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: uniqueName('alert-topic') }));
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: queue.arn }));
  return { topicArn: TopicArn!, queueUrl: queue.url };
}

interface Alert {
  subject: string;
  body: { runId: string; source: string; failures: { graphId: string; backupId: string; file?: string; code: string; message: string }[] };
}

async function receiveAlerts(queueUrl: string, waitSeconds = 2): Promise<Alert[]> {
  const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds }));
  return (res.Messages ?? []).map((m) => {
    const envelope = JSON.parse(m.Body!) as { Subject: string; Message: string };
    return { subject: envelope.Subject, body: JSON.parse(envelope.Message) as Alert['body'] };
  });
}

function runtime(bucket: string, env: Record<string, string> = {}): Runtime {
  const config = loadConfig({ ...tokenEnv(emulator, bucket, TOKEN), ...env });
  const rt = createRuntime(config, silentLogger(), { s3, sqs, sns, retry: fastRetry });
  runtimes.push(rt);
  return rt;
}

async function receive(queueUrl: string, visibilityTimeout = 30): Promise<{ record: CopyRecord; receiptHandle: string }[]> {
  const res = await sqs.send(new ReceiveMessageCommand({
    QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: visibilityTimeout,
    MessageSystemAttributeNames: ['ApproximateReceiveCount'],
  }));
  return (res.Messages ?? []).map((m) => ({
    record: { messageId: m.MessageId!, body: m.Body!, attributes: m.Attributes },
    receiptHandle: m.ReceiptHandle!,
  }));
}

/**
 * Lambda's SQS event source, played by the test: receive a batch, hand it to the worker with
 * a fresh deadline, delete the records that did not fail. Until the queue stays empty.
 */
async function drain(rt: Runtime, queueUrl: string, options: { worker?: () => WorkerOptions; maxRounds?: number } = {}): Promise<{ rounds: number; bodies: string[]; failures: number }> {
  const bodies: string[] = [];
  let failures = 0;
  let rounds = 0;
  for (; rounds < (options.maxRounds ?? 50); rounds++) {
    const batch = await receive(queueUrl);
    if (batch.length === 0) break;
    bodies.push(...batch.map((m) => m.record.body));
    const result = await handleCopyMessages(rt, batch.map((m) => m.record), { finalize: FINALIZE, ...options.worker?.() });
    const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
    failures += failed.size;
    for (const m of batch) {
      if (!failed.has(m.record.messageId)) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.receiptHandle }));
    }
  }
  return { rounds, bodies, failures };
}

/** Counts PutObject requests for `key` that the store accepted. */
function countPuts(client: S3Client, key: string): { count: number } {
  const counter = { count: 0 };
  client.middlewareStack.add((next, context) => async (args) => {
    const result = await next(args);
    if (context.commandName === 'PutObjectCommand' && (args.input as { Key?: string }).Key === key) counter.count += 1;
    return result;
  }, { step: 'initialize', name: `countPuts-${Math.random()}` });
  return counter;
}

async function expectArchived(bucket: string, backupId: string, files: { name: string }[]): Promise<void> {
  const manifest = JSON.parse((await getObjectBytes(bucket, `ges-backups/${G}/${backupId}/manifest.json`)).toString()) as {
    graphId: string; backupId: string; runId?: string; files: { name: string; key: string; bytes: number; sha256: string }[];
  };
  expect(manifest).toMatchObject({ graphId: G, backupId });
  expect(manifest.files.map((f) => f.name).sort()).toEqual(files.map((f) => f.name).sort());
  for (const f of manifest.files) {
    const body = await getObjectBytes(bucket, f.key);
    expect(body.length).toBe(emulator.fileBytes(G, backupId, f.name));
    expect(sha256(body)).toBe(emulator.fileSha256(G, backupId, f.name));
    expect(f.sha256).toBe(emulator.fileSha256(G, backupId, f.name));
  }
}

describe('fan-out over SQS', () => {
  it('a scheduled run that does not fit its time budget fans out; the worker archives every file and writes manifest.json once', async () => {
    // Prepare
    const bucket = await createTestBucket('fanout-e2e');
    const queue = await createQueue('copy');
    const rt = runtime(bucket, { COPY_QUEUE_URL: queue.url, MANIFEST_URI: `s3://${bucket}/config/manifest.json` });
    await putJson(rt, bucket, 'config/manifest.json', { version: 1, graphs: [{ graphId: G, backups: [B1, B2] }] });
    const manifestPuts = countPuts(s3, `ges-backups/${G}/${B1}/manifest.json`);
    const downloadsBefore = emulator.stats.downloadRequests;

    // Act: a deadline that leaves no time to copy inline
    const report = await runScheduled(rt, { deadline: Date.now() + 1_000 });

    // Assess: queued, with one message per file naming the work and no link
    expect(report.mode).toBe('fan-out');
    expect(report.backups.map((b) => [b.backupId, b.status, b.files])).toEqual([[B1, 'queued', 5], [B2, 'queued', 1]]);
    expect(report.totals).toMatchObject({ queued: 2, failed: 0 });
    expect(report.reportKey).toBeDefined();
    expect(emulator.stats.downloadRequests).toBe(downloadsBefore);
    expect(await listKeys(bucket, `ges-backups/_state/${G}/${B1}/job.json`)).toHaveLength(1);

    // Act: the worker consumes the queue (all of B1's files in one batch: they finish together)
    const drained = await drain(rt, queue.url);

    // Assess
    expect(drained.failures).toBe(0);
    expect(drained.bodies).toHaveLength(6);
    for (const body of drained.bodies) {
      expect(body).not.toMatch(/https?:|Signature|AccessKeyId|token/i);
      expect(Object.keys(JSON.parse(body) as object).sort()).toEqual(['backupId', 'expectedBytes', 'fileName', 'graphId', 'runId', 'type', 'v']);
    }
    await expectArchived(bucket, B1, B1_FILES);
    await expectArchived(bucket, B2, B2_FILES);
    expect(manifestPuts.count).toBe(1);
    expect(await listKeys(bucket, 'ges-backups/_state/')).toEqual([]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
    expect(emulator.stats.authHeadersSentToObs).toBe(0);

    // Act: a duplicate delivery of a message that was already handled
    const manifestBefore = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `ges-backups/${G}/${B1}/manifest.json` }));
    const keysBefore = await listKeys(bucket);
    const downloads = emulator.stats.downloadRequests;
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: drained.bodies.find((b) => b.includes('vertices.bin'))! }));
    const again = await drain(rt, queue.url);

    // Assess: nothing changes
    expect(again.failures).toBe(0);
    expect(again.bodies).toHaveLength(1);
    expect(emulator.stats.downloadRequests).toBe(downloads);
    expect(await listKeys(bucket)).toEqual(keysBefore);
    const manifestAfter = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `ges-backups/${G}/${B1}/manifest.json` }));
    expect(manifestAfter.ETag).toBe(manifestBefore.ETag);
    expect(manifestAfter.LastModified).toEqual(manifestBefore.LastModified);
    expect(manifestPuts.count).toBe(1);
  });

  it('five finalizers at once write manifest.json exactly once (lock fallback on Swift, which has no conditional PUT)', async () => {
    // Prepare: every file stored with its receipt, as the workers leave them
    const bucket = await createTestBucket('fanout-finalize');
    const rt = runtime(bucket);
    const prefix = 'ges-backups/';
    const files = ['a.bin', 'b.bin', 'c.bin'];
    for (const name of files) {
      const body = Buffer.from(`bytes of ${name}`);
      const key = `${prefix}${G}/${B1}/${name}`;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      await putJson(rt, bucket, receiptKey(prefix, G, B1, name), { name, key, bytes: body.length, sha256: sha256(body), completedAt: new Date().toISOString() });
    }
    await putJson(rt, bucket, jobKey(prefix, G, B1), {
      version: 1, runId: 'run-1', graphId: G, backupId: B1, createdAt: new Date().toISOString(), files: files.map((name) => ({ name })),
    });
    const manifestKey = `${prefix}${G}/${B1}/manifest.json`;
    const puts = countPuts(s3, manifestKey);

    // Act
    const results = await Promise.all(Array.from({ length: 5 }, () => finalizeBackup(rt, G, B1, FINALIZE)));

    // Assess
    expect(puts.count).toBe(1);
    expect(results.filter((r) => r.outcome === 'written')).toHaveLength(1);
    expect(results.filter((r) => r.outcome !== 'written').every((r) => r.outcome === 'busy' || r.outcome === 'exists')).toBe(true);
    expect(await listKeys(bucket, `${prefix}_state/${G}/${B1}/finalize.lock`)).toEqual([]);
    const manifest = JSON.parse((await getObjectBytes(bucket, manifestKey)).toString()) as { runId: string; files: { name: string; sha256: string }[] };
    expect(manifest.runId).toBe('run-1');
    expect(manifest.files.map((f) => [f.name, f.sha256])).toEqual(files.map((name) => [name, sha256(Buffer.from(`bytes of ${name}`))]));
    // SHA256SUMS, for sha256sum -c, comes with the manifest (written just before it).
    expect((await getObjectBytes(bucket, `${prefix}${G}/${B1}/SHA256SUMS`)).toString()).toBe(files.map((name) => `${sha256(Buffer.from(`bytes of ${name}`))}  ${name}\n`).join(''));
    expect(await listKeys(bucket, `${prefix}_state/`)).toEqual([]);

    // Act: a late finalizer
    const late = await finalizeBackup(rt, G, B1, FINALIZE);

    // Assess
    expect(late.outcome).toBe('exists');
    expect(puts.count).toBe(1);
  });

  it('on a store with conditional writes (AWS S3 semantics), concurrent finalizers rely on If-None-Match and take no lock', async () => {
    // Prepare: Swift answers 501 to If-None-Match on PutObject, so this client gives it AWS's
    // semantics in front of Swift: conditional PUTs are serialised, and one to an existing key fails with 412.
    const client = s3Client();
    const conditional = awsConditionalWrites(client, s3);
    const bucket = await createTestBucket('fanout-conditional');
    const rt = createRuntime(loadConfig(tokenEnv(emulator, bucket, TOKEN)), silentLogger(), { s3: client, retry: fastRetry });
    runtimes.push(rt);
    const prefix = 'ges-backups/';
    const key = `${prefix}${G}/${B1}/a.bin`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'a' }));
    await putJson(rt, bucket, receiptKey(prefix, G, B1, 'a.bin'), { name: 'a.bin', key, bytes: 1, sha256: sha256(Buffer.from('a')), completedAt: new Date().toISOString() });
    await putJson(rt, bucket, jobKey(prefix, G, B1), { version: 1, runId: 'run-c', graphId: G, backupId: B1, createdAt: new Date().toISOString(), files: [{ name: 'a.bin' }] });
    const puts = countPuts(client, `${prefix}${G}/${B1}/manifest.json`);
    const lockPuts = countPuts(client, `${prefix}_state/${G}/${B1}/finalize.lock`);

    // Act
    const results = await Promise.all(Array.from({ length: 5 }, () => finalizeBackup(rt, G, B1, FINALIZE)));

    // Assess
    expect(puts.count).toBe(1);
    expect(lockPuts.count).toBe(0);
    expect(results.map((r) => r.outcome).sort()).toEqual(['exists', 'exists', 'exists', 'exists', 'written']);
    expect(await listKeys(bucket, `${prefix}_state/`)).toEqual([]);
    const manifestWrites = conditional.calls.filter((c) => c.key === `${prefix}${G}/${B1}/manifest.json`);
    expect(manifestWrites.every((c) => c.ifNoneMatch === '*')).toBe(true);
    expect(manifestWrites.filter((c) => c.outcome === 'stored')).toHaveLength(1);
    expect(manifestWrites.filter((c) => c.outcome !== 'stored').every((c) => c.outcome === 412)).toBe(true);
  });

  it('does not finalize a backup while one of its files is missing', async () => {
    // Prepare: two of three receipts
    const bucket = await createTestBucket('fanout-incomplete');
    const rt = runtime(bucket);
    const prefix = 'ges-backups/';
    for (const name of ['a.bin', 'b.bin']) {
      const key = `${prefix}${G}/${B1}/${name}`;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x' }));
      await putJson(rt, bucket, receiptKey(prefix, G, B1, name), { name, key, bytes: 1, sha256: sha256(Buffer.from('x')), completedAt: new Date().toISOString() });
    }
    await putJson(rt, bucket, jobKey(prefix, G, B1), {
      version: 1, runId: 'run-1', graphId: G, backupId: B1, createdAt: new Date().toISOString(), files: [{ name: 'a.bin' }, { name: 'b.bin' }, { name: 'c.bin' }],
    });

    // Act
    const result = await finalizeBackup(rt, G, B1, FINALIZE);

    // Assess
    expect(result.outcome).toBe('incomplete');
    expect(await listKeys(bucket, `${prefix}${G}/${B1}/manifest.json`)).toEqual([]);
  });

  it('a worker short of time hands the file over (checkpoint + continuation message) and the file still completes', async () => {
    // Prepare: ~6 MiB/s per connection, one stream, 5 MiB parts, about 1.2 s per invocation
    const bucket = await createTestBucket('fanout-handover');
    const queue = await createQueue('copy-handover');
    const rt = runtime(bucket, { COPY_QUEUE_URL: queue.url, MANIFEST_URI: `s3://${bucket}/m.json`, ARCHIVE_STREAMS: '1' });
    await putJson(rt, bucket, 'm.json', { version: 1, graphs: [{ graphId: G, backups: [BIG] }] });
    const scheduled = await runScheduled(rt, { deadline: Date.now() });
    expect(scheduled.backups.map((b) => b.status)).toEqual(['queued']);
    emulator.faults.throttleDownloads(6 * MiB);

    // Act
    const drained = await drain(rt, queue.url, { worker: () => ({ deadline: Date.now() + 1_700, handoverMarginMs: 500 }) });

    // Assess: several invocations, continuations carried the checkpoint key, the file is whole
    expect(drained.failures).toBe(0);
    const continuations = drained.bodies.filter((b) => b.includes('checkpointKey'));
    expect(continuations.length).toBeGreaterThanOrEqual(1);
    expect(drained.bodies.length).toBe(continuations.length + 1);
    const body = await getObjectBytes(bucket, `ges-backups/${G}/${BIG}/${BIG_FILE.name}`);
    expect(body.length).toBe(BIG_FILE.bytes);
    expect(sha256(body)).toBe(emulator.fileSha256(G, BIG, BIG_FILE.name));
    await expectArchived(bucket, BIG, [BIG_FILE]);
    expect(await listKeys(bucket, 'ges-backups/_state/')).toEqual([]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });

  it('a poison message ends in the dead-letter queue and an alert arrives on the topic', async () => {
    // Prepare: maxReceiveCount 2, 1 s visibility
    const bucket = await createTestBucket('fanout-poison');
    const dlq = await createQueue('copy-dlq');
    const queue = await createQueue('copy-poison', {
      VisibilityTimeout: '1',
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 2 }),
    });
    const alerts = await alertTopic();
    const rt = runtime(bucket, { COPY_QUEUE_URL: queue.url, ALERT_TOPIC_ARN: alerts.topicArn, MAX_RECEIVE_COUNT: '2' });
    const poison = JSON.stringify({ v: 1, type: 'copy-file', runId: 'run-poison', graphId: G, backupId: B1, fileName: '../escape.bin' });
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: poison }));

    // Act: deliveries until SQS moves it (the worker reports it failed each time)
    const results: string[][] = [];
    for (let i = 0; i < 6; i++) {
      const batch = await receive(queue.url, 1);
      if (batch.length === 0) {
        const inDlq = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.url, AttributeNames: ['ApproximateNumberOfMessages'] }));
        if (inDlq.Attributes?.ApproximateNumberOfMessages === '1') break;
        await new Promise((r) => setTimeout(r, 1_100));
        continue;
      }
      const result = await handleCopyMessages(rt, batch.map((m) => m.record));
      results.push(result.batchItemFailures.map((f) => f.itemIdentifier));
      await new Promise((r) => setTimeout(r, 1_100));
    }

    // Assess
    expect(results).toHaveLength(2);
    for (const failed of results) expect(failed).toHaveLength(1);
    const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq.url, WaitTimeSeconds: 1 }));
    expect(dead.Messages?.map((m) => m.Body)).toEqual([poison]);
    const received = await receiveAlerts(alerts.queueUrl);
    expect(received).toHaveLength(1); // on the last delivery only
    const [alert] = received;
    expect(alert!.subject).toMatch(/^ges-archiver: 1 file of 1 backup failed \(run run-poison\)$/);
    expect(alert!.body).toMatchObject({ runId: 'run-poison', source: 'copyWorker' });
    expect(alert!.body.failures).toEqual([expect.objectContaining({ graphId: G, backupId: B1, code: 'MESSAGE_INVALID' })]);
    expect(alert!.body.failures[0]!.message).toContain('fileName');
    expect(await listKeys(bucket)).toEqual([]);
  });

  it('a failed copy comes back after a backoff, not after the queue\'s whole visibility timeout', async () => {
    // Prepare: a queue hiding received messages for 90 minutes (as deployed), and a message naming
    // a file GES does not list (it fails on every delivery). Backoff: 2 s, then 4 s.
    const bucket = await createTestBucket('fanout-backoff');
    const queue = await createQueue('copy-backoff', { VisibilityTimeout: '5400' });
    const rt = runtime(bucket, { COPY_QUEUE_URL: queue.url });
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JSON.stringify({ v: 1, type: 'copy-file', runId: 'r', graphId: G, backupId: B2, fileName: 'nope.bin' }) }));
    const receiveOne = async (waitSeconds: number) => {
      const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 1, WaitTimeSeconds: waitSeconds, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
      const m = res.Messages?.[0];
      return m === undefined ? undefined : { messageId: m.MessageId!, body: m.Body!, attributes: m.Attributes, receiptHandle: m.ReceiptHandle! };
    };
    const options = { finalize: FINALIZE, retryVisibility: { baseSeconds: 2, maxSeconds: 60 } };

    // Act: the first delivery fails
    const first = await receiveOne(1);
    expect(first).toBeDefined();
    const result = await handleCopyMessages(rt, [first!], options);
    const failedAt = Date.now();

    // Assess: it is back within seconds (1 to 2 s with the jitter), delivered a second time
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: first!.messageId }]);
    const second = await receiveOne(10);
    expect(second?.messageId).toBe(first!.messageId);
    expect(second?.attributes?.['ApproximateReceiveCount']).toBe('2');
    expect(Date.now() - failedAt).toBeLessThan(8_000);

    // Act: the second delivery fails too; the backoff doubles (2 to 4 s)
    await handleCopyMessages(rt, [second!], options);
    const again = Date.now();
    expect(await receiveOne(0)).toBeUndefined();
    const third = await receiveOne(15);
    expect(third?.attributes?.['ApproximateReceiveCount']).toBe('3');
    expect(Date.now() - again).toBeGreaterThanOrEqual(1_500);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: third!.receiptHandle }));
  });

  it('a partial batch reports only the failed message ids', async () => {
    // Prepare: one good message, one poison, one naming a file GES does not list
    const bucket = await createTestBucket('fanout-partial');
    const queue = await createQueue('copy-partial');
    const rt = runtime(bucket, { COPY_QUEUE_URL: queue.url });
    const good = { messageId: 'm-good', body: JSON.stringify({ v: 1, type: 'copy-file', runId: 'r', graphId: G, backupId: B2, fileName: 'graph.bin' }) };
    const poison = { messageId: 'm-poison', body: '{"v":1,"type":"copy-file"' };
    const unknown = { messageId: 'm-unknown', body: JSON.stringify({ v: 1, type: 'copy-file', runId: 'r', graphId: G, backupId: B2, fileName: 'nope.bin' }) };

    // Act
    const result = await handleCopyMessages(rt, [good, poison, unknown], { finalize: FINALIZE });

    // Assess
    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['m-poison', 'm-unknown']);
    const stored = await getObjectBytes(bucket, `ges-backups/${G}/${B2}/graph.bin`);
    expect(sha256(stored)).toBe(emulator.fileSha256(G, B2, 'graph.bin'));
    expect(await listKeys(bucket, `ges-backups/${G}/${B2}/nope.bin`)).toEqual([]);
  });

  it('a deadline that fires mid-part hands the copy over with its upload kept, and the chain still completes', async () => {
    // Prepare: a slow source (2 MiB/s per connection, two streams); the invocation's abort fires
    // after about a second, long before its handover time.
    const bucket = await createTestBucket('fanout-deadline');
    const queue = await createQueue('copy-deadline');
    const rt = runtime(bucket, { COPY_QUEUE_URL: queue.url, MANIFEST_URI: `s3://${bucket}/m.json`, ARCHIVE_STREAMS: '2' });
    await putJson(rt, bucket, 'm.json', { version: 1, graphs: [{ graphId: G, backups: [BIG] }] });
    await runScheduled(rt, { deadline: Date.now() });
    emulator.faults.throttleDownloads(2 * MiB);
    const [first] = await receive(queue.url);
    if (!first) throw new Error('no copy message');
    const aborted = new AbortController();
    setTimeout(() => aborted.abort(new ArchiverError(ErrorCodes.DeadlineExceeded, 'The Lambda deadline is near')), 3_000);

    // Act
    const result = await handleCopyMessages(rt, [first.record], { finalize: FINALIZE, deadline: Date.now() + 600_000, signal: aborted.signal });
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: first.receiptHandle }));

    // Assess: not a failure; the continuation names the checkpoint and counts the hop; the upload is there.
    expect(result.batchItemFailures).toEqual([]);
    const [next] = await receive(queue.url);
    if (!next) throw new Error('no continuation message');
    expect(JSON.parse(next.record.body)).toMatchObject({ checkpointKey: expect.any(String) as string, hop: 1 });
    expect((await listInProgressUploads(bucket)).length).toBe(1);
    emulator.faults.throttleDownloads(null);
    await handleCopyMessages(rt, [next.record], { finalize: FINALIZE });
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: next.receiptHandle }));
    await expectArchived(bucket, BIG, [BIG_FILE]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });

  it('a continuation chain that stored nothing for three hops ends with HANDOVER_LIMIT: upload aborted, alert sent', async () => {
    // Prepare: a checkpoint with a real upload, and a continuation on its last delivery whose chain stalled.
    const bucket = await createTestBucket('fanout-chain');
    const alerts = await alertTopic();
    const rt = runtime(bucket, { ALERT_TOPIC_ARN: alerts.topicArn, MAX_RECEIVE_COUNT: '3' });
    const key = `ges-backups/${G}/${BIG}/${BIG_FILE.name}`;
    const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const ckKey = checkpointKey('ges-backups/', G, BIG, BIG_FILE.name);
    await putJson(rt, bucket, ckKey, {
      version: 1, bucket, key, uploadId: upload.UploadId, partSize: 5 * MiB, totalBytes: BIG_FILE.bytes, offset: 0, parts: [], hashState: 'AAAA',
    });
    const body = JSON.stringify({ v: 1, type: 'copy-file', runId: 'run-chain', graphId: G, backupId: BIG, fileName: BIG_FILE.name, checkpointKey: ckKey, hop: 7, stalledHops: 3 });
    const record: CopyRecord = { messageId: 'm-chain', body, attributes: { ApproximateReceiveCount: '3' } };
    emulator.resetStats();

    // Act
    const result = await handleCopyMessages(rt, [record], { finalize: FINALIZE });

    // Assess: failed (SQS moves it to the DLQ), nothing downloaded, the upload aborted, one alert with the code.
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm-chain' }]);
    expect(emulator.stats.downloadRequests).toBe(0);
    expect(await listInProgressUploads(bucket)).toEqual([]);
    const received = await receiveAlerts(alerts.queueUrl);
    expect(received).toHaveLength(1);
    expect(JSON.stringify(received[0])).toContain('HANDOVER_LIMIT');
  });
});
