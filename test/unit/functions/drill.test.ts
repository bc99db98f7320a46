// The restore drill against the local stack: archives written into Swift (files + manifest.json,
// exactly as the archiver lays them out), drill messages on a fauxqs queue, alerts published
// through fauxqs SNS to a subscribed SQS queue, and the EMF the drillWorker function prints.
import { createHash, randomBytes } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { buildArchiveManifest, type ArchivedFile } from '../../../lib/store/archive-manifest.js';
import { fileKey, manifestKey } from '../../../lib/store/keys.js';
import {
  chooseDrillBackups, handleDrillMessages, parseDrillMessage, planRestoreDrill, serializeDrillMessage,
  type DrillCandidate, type DrillCheckDeps, type DrillMessage, type DrillRecord,
} from '../../../lib/drill/index.js';
import { silentLogger } from '../../../lib/log.js';
import { MemoryMetrics, MetricNames } from '../../../lib/metrics/index.js';
import { createRetryPolicy } from '../../../lib/retry.js';
import { resetDrillRuntime } from '../../../functions/lib/drill-runtime.js';
import { alertQueue as subscribedQueue, alertsOn as receiveAlerts, createQueue } from '../../support/alert-queue.js';
import { createTestBucket, s3Client, snsClient, sqsClient, sqsEndpoint } from '../../support/aws.js';
import { useLocalS3 } from '../../support/cli.js';
import { thrown } from '../../support/thrown.js';

const PREFIX = 'ges-backups/';
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const G2 = '9b9a05c2-0000-4000-8000-000000000001';
const B1 = '0f1e2d3c-4b5a-4697-8877-665544332211';
const B2 = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
const B3 = '11111111-2222-4333-8444-555555555555';
const B4 = '22222222-3333-4444-8555-666666666666';
const fastRetry = createRetryPolicy({ maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 2_000 });

let s3: S3Client;
let sqs: SQSClient;
let sns: SNSClient;

beforeAll(() => {
  useLocalS3();
  s3 = s3Client();
  sqs = sqsClient();
  sns = snsClient();
});

afterAll(() => {
  s3.destroy();
  sqs.destroy();
  sns.destroy();
});

async function put(bucket: string, key: string, body: Buffer | string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/** Writes one archived backup: its files, then manifest.json. */
async function archiveBackup(bucket: string, backupId: string, files: Record<string, number>, graphId = G): Promise<void> {
  const archived: ArchivedFile[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    const body = randomBytes(bytes);
    const key = fileKey(PREFIX, graphId, backupId, name);
    await put(bucket, key, body);
    archived.push({ name, key, bytes, sha256: createHash('sha256').update(body).digest('hex') });
  }
  const manifest = buildArchiveManifest({ graphId, backupId, archivedAt: new Date(), files: archived });
  await put(bucket, manifestKey(PREFIX, graphId, backupId), JSON.stringify(manifest));
}

const alertQueue = (): ReturnType<typeof subscribedQueue> => subscribedQueue(sqs, sns, 'drill');
const alertsOn = (queueUrl: string, waitSeconds: number): ReturnType<typeof receiveAlerts> => receiveAlerts(sqs, queueUrl, waitSeconds);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function drillDeps(bucket: string, queueUrl: string, metrics: MemoryMetrics, topicArn?: string): DrillCheckDeps {
  return {
    s3, sqs, queueUrl, config: { archive: { bucket, prefix: PREFIX } }, logger: silentLogger(), retry: fastRetry, metrics,
    sns, ...(topicArn === undefined ? {} : { topicArn }),
  };
}

/** Takes every message off the queue (waiting up to `waitSeconds` for the first) as Lambda records. */
async function drain(queueUrl: string, waitSeconds = 1): Promise<DrillRecord[]> {
  const records: DrillRecord[] = [];
  for (;;) {
    const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: records.length === 0 ? waitSeconds : 0 }));
    const messages = res.Messages ?? [];
    if (messages.length === 0) return records;
    for (const m of messages) {
      records.push({ messageId: m.MessageId!, body: m.Body! });
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
    }
  }
}

const message = (over: Partial<DrillMessage> = {}): DrillMessage => ({
  v: 1, type: 'drill-backup', drillId: '20261130T050000Z-1a2b3c4d', graphId: G, backupId: B1, samplePercent: 100, seed: 7, ...over,
});
const record = (m: DrillMessage, id = 'm-1'): DrillRecord => ({ messageId: id, body: serializeDrillMessage(m) });

describe('choosing the backups to drill (byte budget, newest first)', () => {
  const c = (backupId: string, completedAt: string, bytes: number): DrillCandidate => ({ graphId: G, backupId, completedAt, bytes });
  const candidates = [
    c(B1, '2026-11-20T02:00:00.000Z', 400), c(B2, '2026-11-23T02:00:00.000Z', 300),
    c(B3, '2026-11-22T02:00:00.000Z', 500), c(B4, '2026-11-21T02:00:00.000Z', 100),
  ];

  it('takes the newest backups while they fit, and stops at the first that does not (an older small one never displaces it)', () => {
    const s = chooseDrillBackups(candidates, { byteBudget: 900, samplePercent: 100 });
    // B2 (300, the 23rd) + B3 (500, the 22nd) + B4 (100, the 21st) = 900; B1 (400) does not fit.
    expect(s.chosen.map((x) => x.backupId)).toEqual([B2, B3, B4]);
    expect(s).toMatchObject({ archived: 4, chargedBytes: 900, overBudget: false });
    const tight = chooseDrillBackups(candidates, { byteBudget: 700, samplePercent: 100 });
    expect(tight.chosen.map((x) => x.backupId)).toEqual([B2]);
  });

  it('charges a backup the sampled share of its bytes, and takes the newest even when it alone exceeds the budget', () => {
    expect(chooseDrillBackups(candidates, { byteBudget: 130, samplePercent: 10 }).chosen.map((x) => x.backupId)).toEqual([B2, B3, B4, B1]);
    const over = chooseDrillBackups(candidates, { byteBudget: 10, samplePercent: 100 });
    expect(over.chosen.map((x) => x.backupId)).toEqual([B2]);
    expect(over.overBudget).toBe(true);
  });
});

describe('planRestoreDrill', () => {
  it('lists the archive once, queues one message per chosen backup, newest first within the budget', async () => {
    // Prepare: four backups of known sizes, completed a second apart (S3 dates have 1 s resolution); one folder without manifest.json.
    const bucket = await createTestBucket('drill-plan');
    await archiveBackup(bucket, B1, { 'a.bin': 4000 });
    await sleep(1100);
    await archiveBackup(bucket, B2, { 'a.bin': 1000, 'b.bin': 1000 }, G2);
    await sleep(1100);
    await archiveBackup(bucket, B3, { 'a.bin': 2500 });
    await sleep(1100);
    await archiveBackup(bucket, B4, { 'a.bin': 1500 });
    await put(bucket, fileKey(PREFIX, G, 'unfinished', 'a.bin'), randomBytes(10));
    const queue = await createQueue(sqs, 'drill-plan');
    const metrics = new MemoryMetrics();

    // Act: 6000 bytes: B4 (1500) + B3 (2500) + B2 (2000); B1 (4000) does not fit
    const plan = await planRestoreDrill(drillDeps(bucket, queue.url, metrics), { byteBudget: 6000, samplePercent: 100 });

    // Assess
    expect(plan.queued.map((b) => [b.backupId, b.bytes])).toEqual([[B4, 1500], [B3, 2500], [B2, 2000]]);
    expect(plan).toMatchObject({ archived: 4, chargedBytes: 6000, overBudget: false, alerted: false });
    const sent = (await drain(queue.url)).map((r) => parseDrillMessage(r.body));
    expect(sent.map((m) => [m.graphId, m.backupId]).sort()).toEqual([[G, B3], [G, B4], [G2, B2]].sort());
    for (const m of sent) expect(m).toMatchObject({ v: 1, type: 'drill-backup', drillId: plan.drillId, samplePercent: 100 });
  });

  it('alerts when nothing is archived under the prefix (a mistyped ARCHIVE_PREFIX never makes a drill pass)', async () => {
    // Prepare: an archive under ges-backups/, a drill looking under another prefix
    const bucket = await createTestBucket('drill-empty');
    await archiveBackup(bucket, B1, { 'a.bin': 10 });
    const alerts = await alertQueue();
    const queue = await createQueue(sqs, 'drill-empty');
    const deps = { ...drillDeps(bucket, queue.url, new MemoryMetrics(), alerts.topicArn), config: { archive: { bucket, prefix: 'ges-backup/' } } };

    // Act
    const plan = await planRestoreDrill(deps, { byteBudget: 1e9, samplePercent: 100 });

    // Assess
    expect(plan).toMatchObject({ archived: 0, queued: [], alerted: true });
    const [alert] = await alertsOn(alerts.queueUrl, 5);
    expect(alert?.body.failures).toEqual([expect.objectContaining({ code: 'VERIFY_FAILED', message: expect.stringContaining(`nothing is archived under s3://${bucket}/ges-backup/`) as unknown })]);
    expect(await drain(queue.url, 0)).toEqual([]);
  });
});

describe('the drill worker', () => {
  it('checks each queued backup: an intact one passes silently, a tampered one alerts with the kind and key of each problem', async () => {
    // Prepare: B1 altered (same length) and truncated, B2 intact; both queued by the planner
    const bucket = await createTestBucket('drill-worker');
    await archiveBackup(bucket, B1, { 'altered.bin': 4096, 'truncated.bin': 2048, 'fine.bin': 512 });
    await archiveBackup(bucket, B2, { 'graph.bin': 70_000 });
    await put(bucket, fileKey(PREFIX, G, B1, 'altered.bin'), randomBytes(4096));
    await put(bucket, fileKey(PREFIX, G, B1, 'truncated.bin'), randomBytes(100));
    const alerts = await alertQueue();
    const queue = await createQueue(sqs, 'drill-worker');
    const metrics = new MemoryMetrics();
    const deps = drillDeps(bucket, queue.url, metrics, alerts.topicArn);
    await planRestoreDrill(deps, { byteBudget: 1e9, samplePercent: 100 });
    const records = await drain(queue.url);
    expect(records).toHaveLength(2);

    // Act: one record per invocation, as the event source (batchSize 1) delivers them
    const outcomes = new Map<string, string>();
    for (const r of records) {
      const result = await handleDrillMessages(deps, [r], { onOutcome: (id, o) => outcomes.set(id, o) });
      expect(result.batchItemFailures).toEqual([]);
    }

    // Assess
    expect([...outcomes.values()]).toEqual(['verified', 'verified']);
    expect(metrics.sum(MetricNames.DrillBackupsVerified)).toBe(2);
    // The truncated file is condemned by the listing and not read.
    expect(metrics.sum(MetricNames.DrillFilesChecked)).toBe(3);
    expect(metrics.sum(MetricNames.DrillProblems)).toBe(2);
    const received = await alertsOn(alerts.queueUrl, 5);
    expect(received).toHaveLength(1);
    expect(received[0]!.subject).toContain('restore drill found 2 problems');
    expect(received[0]!.body.source).toBe('restoreDrill');
    expect(received[0]!.body.failures).toEqual([
      expect.objectContaining({ graphId: G, backupId: B1, file: 'altered.bin', code: 'VERIFY_FAILED', message: expect.stringContaining(`altered: ${fileKey(PREFIX, G, B1, 'altered.bin')}`) as unknown }),
      expect.objectContaining({ graphId: G, backupId: B1, file: 'truncated.bin', code: 'VERIFY_FAILED', message: expect.stringContaining('(manifest: 2048 bytes, bucket: 100 bytes)') as unknown }),
    ]);
    expect(await drain(queue.url, 0)).toEqual([]);
  });

  it('hands a backup with more files than fit over to continuation messages, which finish it', async () => {
    // Prepare: 6 files; the clock passes the handover point after every second file started
    const bucket = await createTestBucket('drill-handover');
    await archiveBackup(bucket, B1, Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`part-${i}.bin`, 1000 + i])));
    const queue = await createQueue(sqs, 'drill-handover');
    const metrics = new MemoryMetrics();
    const deps = drillDeps(bucket, queue.url, metrics);
    const invocation = (): { deadline: number; now: () => number; handoverMarginMs: number; concurrency: number } => {
      let started = 0;
      const deadline = Date.now() + 600_000;
      // Each file start reads the clock once: the third one finds the handover point passed.
      return { deadline, handoverMarginMs: 1_000, concurrency: 1, now: () => (started++ < 2 ? Date.now() : deadline) };
    };

    // Act: the first delivery, then whatever continuation each invocation queues
    const statuses: string[] = [];
    const hops: Array<number | undefined> = [];
    let next: DrillRecord[] = [record(message())];
    while (next.length > 0) {
      expect(next).toHaveLength(1);
      hops.push(parseDrillMessage(next[0]!.body).from);
      const result = await handleDrillMessages(deps, next, { ...invocation(), onOutcome: (_id, o) => statuses.push(o) });
      expect(result.batchItemFailures).toEqual([]);
      next = await drain(queue.url);
    }

    // Assess
    expect(statuses).toEqual(['handed-over', 'handed-over', 'verified']);
    expect(hops).toEqual([undefined, 2, 4]);
    expect(metrics.valuesOf(MetricNames.DrillFilesChecked)).toEqual([2, 2, 2]);
    expect(metrics.sum(MetricNames.DrillBackupsVerified)).toBe(1);
    expect(metrics.sum(MetricNames.DrillProblems)).toBe(0);
  });

  it('reports a file deleted between two invocations of a chain (the listing of the continuation finds it)', async () => {
    // Prepare: 4 files; the first invocation checks 2 and hands over; then part-3 is deleted
    const bucket = await createTestBucket('drill-hop-missing');
    await archiveBackup(bucket, B1, Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`part-${i}.bin`, 500 + i])));
    const queue = await createQueue(sqs, 'drill-hop-missing');
    const metrics = new MemoryMetrics();
    const deps = drillDeps(bucket, queue.url, metrics);
    const deadline = Date.now() + 600_000;
    let started = 0;
    await handleDrillMessages(deps, [record(message())], { deadline, handoverMarginMs: 1_000, concurrency: 1, now: () => (started++ < 2 ? Date.now() : deadline) });
    const [continuation] = await drain(queue.url);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: fileKey(PREFIX, G, B1, 'part-3.bin') }));

    // Act
    const statuses: string[] = [];
    await handleDrillMessages(deps, [continuation!], { onOutcome: (_id, o) => statuses.push(o) });

    // Assess
    expect(statuses).toEqual(['verified']);
    expect(metrics.valuesOf(MetricNames.DrillProblems)).toEqual([0, 1]);
    expect(metrics.valuesOf(MetricNames.DrillFilesChecked)).toEqual([2, 1]);
  });

  it('gives up with a HANDOVER_LIMIT alert when a file cannot be hashed within an invocation twice in a row', async () => {
    // Prepare: a clock that is always past the handover point: no file ever starts
    const bucket = await createTestBucket('drill-stalled');
    await archiveBackup(bucket, B1, { 'huge.bin': 2000 });
    const alerts = await alertQueue();
    const queue = await createQueue(sqs, 'drill-stalled');
    const deps = drillDeps(bucket, queue.url, new MemoryMetrics(), alerts.topicArn);
    const deadline = Date.now() + 600_000;
    const options = { deadline, now: () => deadline };

    // Act
    const statuses: string[] = [];
    await handleDrillMessages(deps, [record(message())], { ...options, onOutcome: (_id, o) => statuses.push(o) });
    const [continuation] = await drain(queue.url);
    await handleDrillMessages(deps, [continuation!], { ...options, onOutcome: (_id, o) => statuses.push(o) });

    // Assess
    expect(statuses).toEqual(['handed-over', 'gave-up']);
    expect(parseDrillMessage(continuation!.body)).toMatchObject({ from: 0, hop: 1, stalledHops: 1 });
    expect(await drain(queue.url, 0)).toEqual([]);
    const [alert] = await alertsOn(alerts.queueUrl, 5);
    expect(alert?.body.failures).toEqual([expect.objectContaining({ file: 'huge.bin', code: 'HANDOVER_LIMIT', message: expect.stringContaining(`ges-archiver verify --graph ${G} --backup ${B1}`) as unknown })]);
  });

  it('refuses an invalid drill message, naming the field, and reports it failed (it ends in the dead-letter queue)', async () => {
    const bucket = await createTestBucket('drill-invalid');
    const queue = await createQueue(sqs, 'drill-invalid');
    const valid = JSON.parse(serializeDrillMessage(message())) as Record<string, unknown>;
    const bodies = {
      noBackup: JSON.stringify({ ...valid, backupId: undefined }),
      unknownField: JSON.stringify({ ...valid, url: 'https://example.com' }),
      badSample: JSON.stringify({ ...valid, samplePercent: 0 }),
      notJson: 'drill me',
    };
    expect(thrown(() => parseDrillMessage(bodies.noBackup))).toMatchObject({ code: 'MESSAGE_INVALID', message: expect.stringContaining('backupId') as unknown });
    expect(thrown(() => parseDrillMessage(bodies.unknownField))).toMatchObject({ code: 'MESSAGE_INVALID', message: expect.stringContaining('url') as unknown });
    expect(thrown(() => parseDrillMessage(bodies.badSample))).toMatchObject({ code: 'MESSAGE_INVALID', message: expect.stringContaining('samplePercent') as unknown });

    const result = await handleDrillMessages(drillDeps(bucket, queue.url, new MemoryMetrics()), Object.entries(bodies).map(([id, body]) => ({ messageId: id, body })));
    expect(result.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['noBackup', 'unknownField', 'badSample', 'notJson']);
  });

  it('skips a backup pruned since the drill chose it (no manifest.json any more), without an alert', async () => {
    const bucket = await createTestBucket('drill-pruned');
    await archiveBackup(bucket, B1, { 'a.bin': 10 });
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: manifestKey(PREFIX, G, B1) }));
    const queue = await createQueue(sqs, 'drill-pruned');
    const statuses: string[] = [];
    const result = await handleDrillMessages(drillDeps(bucket, queue.url, new MemoryMetrics()), [record(message())], { onOutcome: (_id, o) => statuses.push(o) });
    expect(result.batchItemFailures).toEqual([]);
    expect(statuses).toEqual(['not-archived']);
  });
});

describe('restoreDrill and drillWorker functions', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    resetDrillRuntime();
  });

  it('restoreDrill queues the backups DRILL_BYTE_BUDGET allows; drillWorker checks one and prints the drill metrics as EMF', async () => {
    // Prepare
    const bucket = await createTestBucket('drill-fn');
    await archiveBackup(bucket, B1, { 'a.bin': 3000, 'b.bin': 10 });
    const queue = await createQueue(sqs, 'drill-fn');
    Object.assign(process.env, {
      ARCHIVE_BUCKET: bucket, ARCHIVE_PREFIX: PREFIX, S3_FORCE_PATH_STYLE: 'true',
      // fauxqs names its queues on `sqs.<region>.localhost`, which does not resolve here, and the
      // SDK sends to the queue URL's host: the function gets the same queue on the endpoint's host.
      AWS_ENDPOINT_URL_SQS: sqsEndpoint(), DRILL_QUEUE_URL: `${sqsEndpoint()}${new URL(queue.url).pathname}`, DRILL_BYTE_BUDGET: '1M', ARCHIVER_STAGE: 'dev',
    });
    delete process.env['ALERT_TOPIC_ARN'];
    delete process.env['POWERTOOLS_DEV'];
    delete process.env['POWERTOOLS_METRICS_DISABLED'];
    const planner = (await import('../../../functions/restore-drill.js')).handler;
    const worker = (await import('../../../functions/drill-worker.js')).handler;
    const deadline = Date.now() + 120_000;
    const context = (name: string) => ({ functionName: `ges-archiver-dev-${name}`, awsRequestId: name, getRemainingTimeInMillis: () => deadline - Date.now() }) as unknown as Context;

    // Act
    const plan = await planner({ source: 'ges-archiver.drill' }, context('restoreDrill'));
    const records = await drain(queue.url);
    const lines: string[] = [];
    const stdout = process.stdout;
    const original = Object.getOwnPropertyDescriptor(stdout, 'write');
    Object.defineProperty(stdout, 'write', {
      configurable: true, writable: true,
      value: (chunk: string | Uint8Array): boolean => {
        lines.push(...String(chunk).split('\n').filter((l) => l.includes('"_aws"')));
        return true;
      },
    });
    let result;
    try {
      result = await worker({ Records: records }, context('drillWorker'));
    } finally {
      if (original) Object.defineProperty(stdout, 'write', original);
      else delete (stdout as { write?: unknown }).write;
    }

    // Assess
    expect(plan).toMatchObject({ byteBudget: 1024 ** 2, samplePercent: 100, archived: 1, queuedCount: 1, queued: [{ graphId: G, backupId: B1, bytes: 3010 }] });
    expect(result).toEqual({ batchItemFailures: [] });
    expect(lines).toHaveLength(1);
    const emf = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(emf).toMatchObject({ service: 'ges-archiver', Stage: 'dev', DrillBackupsVerified: 1, DrillFilesChecked: 2, DrillProblems: 0 });
  });

  it('refuses an invalid share or budget in the event or the environment, naming it', async () => {
    const { handler } = await import('../../../functions/restore-drill.js');
    const context = { functionName: 'f', awsRequestId: 'r' } as unknown as Context;
    await expect(handler({ samplePercent: 0 }, context)).rejects.toMatchObject({ code: 'ARGS_INVALID', message: expect.stringContaining('samplePercent') as unknown });
    await expect(handler({ byteBudget: 'lots' }, context)).rejects.toMatchObject({ code: 'ARGS_INVALID', message: expect.stringContaining('byteBudget') as unknown });
    Object.assign(process.env, { ARCHIVE_BUCKET: 'bucket-ok', DRILL_QUEUE_URL: 'http://127.0.0.1:1/q', DRILL_SAMPLE_PERCENT: '150' });
    await expect(handler({}, context)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('DRILL_SAMPLE_PERCENT') as unknown });
    resetDrillRuntime();
    Object.assign(process.env, { DRILL_SAMPLE_PERCENT: '', DRILL_BYTE_BUDGET: '10k' });
    await expect(handler({}, context)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('DRILL_BYTE_BUDGET') as unknown });
    resetDrillRuntime();
    Object.assign(process.env, { DRILL_BYTE_BUDGET: '', DRILL_QUEUE_URL: '' });
    await expect(handler({}, context)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('DRILL_QUEUE_URL') as unknown });
  });
});
