// The restore drill against the local stack: archives written into Swift (files + manifest.json,
// exactly as the archiver lays them out), alerts published through fauxqs SNS to a subscribed
// SQS queue, and the EMF the restoreDrill function prints.
import { createHash, randomBytes } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { buildArchiveManifest, type ArchivedFile } from '../../../lib/store/archive-manifest.js';
import { fileKey, manifestKey } from '../../../lib/store/keys.js';
import { silentLogger } from '../../../lib/log.js';
import { MemoryMetrics, MetricNames } from '../../../lib/metrics/index.js';
import { createRetryPolicy } from '../../../lib/retry.js';
import { seededRandom } from '../../../lib/verify/sample.js';
import { runRestoreDrill, type DrillDeps } from '../../../lib/verify/drill.js';
import { resetDrillRuntime } from '../../../functions/lib/drill-runtime.js';
import { alertQueue as subscribedQueue, alertsOn as receiveAlerts } from '../../support/alert-queue.js';
import { createTestBucket, s3Client, snsClient, sqsClient, sqsEndpoint } from '../../support/aws.js';
import { useLocalS3 } from '../../support/cli.js';

const PREFIX = 'ges-backups/';
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B1 = '0f1e2d3c-4b5a-4697-8877-665544332211';
const B2 = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
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
async function archiveBackup(bucket: string, backupId: string, files: Record<string, number>): Promise<void> {
  const archived: ArchivedFile[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    const body = randomBytes(bytes);
    const key = fileKey(PREFIX, G, backupId, name);
    await put(bucket, key, body);
    archived.push({ name, key, bytes, sha256: createHash('sha256').update(body).digest('hex') });
  }
  const manifest = buildArchiveManifest({ graphId: G, backupId, archivedAt: new Date(), files: archived });
  await put(bucket, manifestKey(PREFIX, G, backupId), JSON.stringify(manifest));
}

const alertQueue = (): ReturnType<typeof subscribedQueue> => subscribedQueue(sqs, sns, 'drill');
const alertsOn = (queueUrl: string, waitSeconds: number): ReturnType<typeof receiveAlerts> => receiveAlerts(sqs, queueUrl, waitSeconds);

function drillDeps(bucket: string, metrics: MemoryMetrics, topicArn?: string): DrillDeps {
  return {
    s3, config: { archive: { bucket, prefix: PREFIX } }, logger: silentLogger(), retry: fastRetry, metrics,
    sns, ...(topicArn === undefined ? {} : { topicArn }),
  };
}

describe('runRestoreDrill', () => {
  it('finds nothing in an intact archive: records what it checked, publishes no alert', async () => {
    // Prepare
    const bucket = await createTestBucket('drill-clean');
    await archiveBackup(bucket, B1, { 'a.bin': 3000, 'b.bin': 10 });
    await archiveBackup(bucket, B2, { 'graph.bin': 70_000 });
    const alerts = await alertQueue();
    const metrics = new MemoryMetrics();

    // Act
    const result = await runRestoreDrill(drillDeps(bucket, metrics, alerts.topicArn), { samplePercent: 100 });

    // Assess
    expect(result.report.problems).toEqual([]);
    expect(result.alerted).toBe(false);
    expect(metrics.sum(MetricNames.DrillBackupsVerified)).toBe(2);
    expect(metrics.sum(MetricNames.DrillFilesChecked)).toBe(3);
    expect(metrics.valuesOf(MetricNames.DrillProblems)).toEqual([0]);
    expect(await alertsOn(alerts.queueUrl, 1)).toEqual([]);
  });

  it('hashes only the sample, but the listing checks still find a deleted file outside it', async () => {
    // Prepare: 20 files, one deleted; a 10 % sample re-reads 2 of them.
    const bucket = await createTestBucket('drill-sample');
    const files = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`part-${String(i).padStart(2, '0')}.bin`, 100 + i]));
    await archiveBackup(bucket, B1, files);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: fileKey(PREFIX, G, B1, 'part-07.bin') }));
    const metrics = new MemoryMetrics();

    // Act: no topic configured, so nothing is published
    const result = await runRestoreDrill(drillDeps(bucket, metrics), { samplePercent: 10, random: seededRandom(7) });

    // Assess
    expect(result.report.problems.map((p) => [p.kind, p.key])).toEqual([['missing', fileKey(PREFIX, G, B1, 'part-07.bin')]]);
    expect(metrics.sum(MetricNames.DrillFilesChecked)).toBeLessThanOrEqual(2);
    expect(metrics.sum(MetricNames.DrillProblems)).toBe(1);
    expect(result.alerted).toBe(false);
  });
  it('alerts when nothing is archived under the prefix (a mistyped ARCHIVE_PREFIX never makes a drill pass)', async () => {
    // Prepare: an archive under ges-backups/, a drill looking under another prefix
    const bucket = await createTestBucket('drill-empty');
    await archiveBackup(bucket, B1, { 'a.bin': 10 });
    const alerts = await alertQueue();
    const metrics = new MemoryMetrics();
    const deps = { ...drillDeps(bucket, metrics, alerts.topicArn), config: { archive: { bucket, prefix: 'ges-backup/' } } };

    // Act
    const result = await runRestoreDrill(deps, { samplePercent: 10 });

    // Assess
    expect(result.alerted).toBe(true);
    expect(result.report.problems).toEqual([expect.objectContaining({ kind: 'missing', key: 'ges-backup/' })]);
    expect(metrics.sum(MetricNames.DrillProblems)).toBe(1);
    const [alert] = await alertsOn(alerts.queueUrl, 5);
    expect(alert?.body.failures).toEqual([expect.objectContaining({ code: 'VERIFY_FAILED', message: expect.stringContaining(`nothing is archived under s3://${bucket}/ges-backup/`) as unknown })]);
  });
});

describe('restoreDrill function', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    resetDrillRuntime();
  });

  it('alerts once through the topic on a mismatch (kind and key of each problem) and prints the drill metrics as EMF', async () => {
    // Prepare: one file altered (same length), one truncated.
    const bucket = await createTestBucket('drill-fn');
    await archiveBackup(bucket, B1, { 'altered.bin': 4096, 'truncated.bin': 2048, 'fine.bin': 512 });
    await archiveBackup(bucket, B2, { 'graph.bin': 1000 });
    await put(bucket, fileKey(PREFIX, G, B1, 'altered.bin'), randomBytes(4096));
    await put(bucket, fileKey(PREFIX, G, B1, 'truncated.bin'), randomBytes(100));
    const alerts = await alertQueue();
    Object.assign(process.env, {
      ARCHIVE_BUCKET: bucket, ARCHIVE_PREFIX: PREFIX, S3_FORCE_PATH_STYLE: 'true',
      ALERT_TOPIC_ARN: alerts.topicArn, AWS_ENDPOINT_URL_SNS: sqsEndpoint(),
      DRILL_SAMPLE_PERCENT: '100', ARCHIVER_STAGE: 'dev',
    });
    delete process.env['POWERTOOLS_DEV'];
    delete process.env['POWERTOOLS_METRICS_DISABLED'];
    const { handler } = await import('../../../functions/restore-drill.js');
    const deadline = Date.now() + 120_000;
    const context = { functionName: 'ges-archiver-dev-restoreDrill', awsRequestId: 'drill-1', getRemainingTimeInMillis: () => deadline - Date.now() } as unknown as Context;

    // Act
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
      result = await handler({ source: 'ges-archiver.drill' }, context);
    } finally {
      if (original) Object.defineProperty(stdout, 'write', original);
      else delete (stdout as { write?: unknown }).write;
    }

    // Assess: the result
    expect(result).toMatchObject({ samplePercent: 100, backups: 2, files: 4, checked: 4, problems: 2, alerted: true });
    expect(result.firstProblems).toEqual([
      { kind: 'altered', key: fileKey(PREFIX, G, B1, 'altered.bin') },
      { kind: 'truncated', key: fileKey(PREFIX, G, B1, 'truncated.bin') },
    ]);

    // Assess: one alert on the topic
    const received = await alertsOn(alerts.queueUrl, 5);
    expect(received).toHaveLength(1);
    const alert = received[0]!;
    expect(alert.subject).toBe(`ges-archiver: restore drill found 2 problems (run ${result.drillId})`);
    expect(alert.body.source).toBe('restoreDrill');
    expect(alert.body.failures).toEqual([
      expect.objectContaining({ graphId: G, backupId: B1, file: 'altered.bin', code: 'VERIFY_FAILED', message: expect.stringContaining(`altered: ${fileKey(PREFIX, G, B1, 'altered.bin')}`) as unknown }),
      expect.objectContaining({ graphId: G, backupId: B1, file: 'truncated.bin', code: 'VERIFY_FAILED', message: expect.stringContaining('(manifest: 2048 bytes, bucket: 100 bytes)') as unknown }),
    ]);

    // Assess: the EMF document CloudWatch turns into the drill metrics
    expect(lines).toHaveLength(1);
    const emf = JSON.parse(lines[0]!) as Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: unknown[] }> } };
    expect(emf._aws.CloudWatchMetrics).toEqual([{
      Namespace: 'GesArchiver',
      Dimensions: [['service', 'Stage']],
      Metrics: [
        { Name: MetricNames.DrillBackupsVerified, Unit: 'Count' },
        { Name: MetricNames.DrillFilesChecked, Unit: 'Count' },
        { Name: MetricNames.DrillProblems, Unit: 'Count' },
      ],
    }]);
    expect(emf).toMatchObject({ service: 'ges-archiver', Stage: 'dev', DrillBackupsVerified: 2, DrillFilesChecked: 4, DrillProblems: 2 });
  });

  it('refuses an invalid sample share in the event or the environment, naming it', async () => {
    const { handler } = await import('../../../functions/restore-drill.js');
    const context = { functionName: 'f', awsRequestId: 'r' } as unknown as Context;
    await expect(handler({ samplePercent: 0 }, context)).rejects.toMatchObject({ code: 'ARGS_INVALID', message: expect.stringContaining('samplePercent') as unknown });
    Object.assign(process.env, { ARCHIVE_BUCKET: 'bucket-ok', DRILL_SAMPLE_PERCENT: '150' });
    await expect(handler({}, context)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('DRILL_SAMPLE_PERCENT') as unknown });
  });
});
