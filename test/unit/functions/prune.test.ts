// The scheduled prune against the local stack: backups written into Swift as the archiver lays
// them out, alerts published through fauxqs SNS to a subscribed SQS queue.
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { manifestKey } from '../../../lib/store/keys.js';
import { silentLogger } from '../../../lib/log.js';
import { runScheduledPrune } from '../../../lib/prune/scheduled.js';
import { createRetryPolicy } from '../../../lib/retry.js';
import { resetPruneRuntime } from '../../../functions/lib/prune-runtime.js';
import { alertQueue, alertsOn } from '../../support/alert-queue.js';
import { writeArchivedBackup } from '../../support/archive-fixture.js';
import { createTestBucket, listKeys, s3Client, snsClient, sqsClient, sqsEndpoint } from '../../support/aws.js';
import { useLocalS3 } from '../../support/cli.js';

const PREFIX = 'ges-backups/';
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const DAY = 86_400_000;
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

/** Backups b-1 … b-n of graph G, b-i taken i days ago. */
async function archive(bucket: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    await writeArchivedBackup(s3, bucket, PREFIX, {
      graphId: G, backupId: `b-${i}`, files: { 'data.bin': randomBytes(64) },
      backupTimestamp: Date.now() - i * DAY, archivedAt: new Date(Date.now() - i * DAY + 60_000),
    });
  }
}

const archivedIds = async (bucket: string): Promise<string[]> =>
  (await listKeys(bucket, PREFIX)).filter((k) => k.endsWith('/manifest.json')).map((k) => k.split('/').at(-2)!).sort();

describe('scheduledPrune function', () => {
  const saved = { ...process.env };
  const context = (): Context => ({ functionName: 'ges-archiver-dev-scheduledPrune', awsRequestId: 'prune-1', getRemainingTimeInMillis: () => 120_000 }) as unknown as Context;

  afterEach(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    resetPruneRuntime();
  });

  it('prunes by the params (PRUNE_KEEP_LAST, PRUNE_KEEP_WITHIN); an event can ask for a dry run or other rules', async () => {
    // Prepare
    const bucket = await createTestBucket('prune-fn');
    await archive(bucket, 6);
    Object.assign(process.env, { ARCHIVE_BUCKET: bucket, ARCHIVE_PREFIX: PREFIX, S3_FORCE_PATH_STYLE: 'true', PRUNE_KEEP_LAST: '2', PRUNE_KEEP_WITHIN: '3d12h' });
    const { handler } = await import('../../../functions/scheduled-prune.js');

    // Act
    const dry = await handler({ dryRun: true }, context());
    const afterDry = await archivedIds(bucket);
    const scheduled = await handler({ source: 'ges-archiver.prune' }, context());
    const byHand = await handler({ keepLast: 1, keepWithin: '1h' }, context());

    // Assess
    expect(dry).toMatchObject({ dryRun: true, keepLast: 2, keepWithin: '3d12h', kept: 3, deleted: 3, locked: 0, failed: 0 });
    expect(afterDry).toEqual(['b-1', 'b-2', 'b-3', 'b-4', 'b-5', 'b-6']);
    expect(scheduled).toMatchObject({ dryRun: false, kept: 3, deleted: 3, alerted: false });
    expect(scheduled.firstDeleted.map((d) => d.backupId).sort()).toEqual(['b-4', 'b-5', 'b-6']);
    expect(byHand).toMatchObject({ keepLast: 1, keepWithin: '1h', kept: 1, deleted: 2 });
    expect(await archivedIds(bucket)).toEqual(['b-1']);
  });

  it('deletes nothing without a retention (CONFIG_INVALID), and names a bad PRUNE_KEEP_WITHIN or event field', async () => {
    // Prepare
    const bucket = await createTestBucket('prune-fn-refuse');
    await archive(bucket, 2);
    Object.assign(process.env, { ARCHIVE_BUCKET: bucket, S3_FORCE_PATH_STYLE: 'true', PRUNE_KEEP_LAST: '' });
    const { handler } = await import('../../../functions/scheduled-prune.js');

    // Act
    const noRetention = handler({ source: 'ges-archiver.prune' }, context());
    const badEvent = handler({ keepLast: 0 }, context());

    // Assess
    await expect(noRetention).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('pruneKeepLast') as unknown });
    await expect(badEvent).rejects.toMatchObject({ code: 'ARGS_INVALID', message: expect.stringContaining('keepLast') as unknown });
    expect(await archivedIds(bucket)).toEqual(['b-1', 'b-2']);
    resetPruneRuntime();
    Object.assign(process.env, { PRUNE_KEEP_LAST: '1', PRUNE_KEEP_WITHIN: '90 days' });
    await expect(handler({}, context())).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('PRUNE_KEEP_WITHIN') as unknown });
  });

  it('alerts once through the topic when a backup is under Object Lock, naming it with code LOCKED', async () => {
    // Prepare: Object Lock as AWS reports it, in front of Swift (which has none)
    const bucket = await createTestBucket('prune-fn-locked');
    await archive(bucket, 3);
    const lockedManifest = manifestKey(PREFIX, G, 'b-3');
    const client = s3Client();
    client.middlewareStack.add((next, ctx) => async (args) => {
      const result = await next(args);
      if (ctx.commandName === 'HeadObjectCommand' && (args.input as { Key?: string }).Key === lockedManifest) {
        Object.assign(result.output as object, { ObjectLockLegalHoldStatus: 'ON' });
      }
      return result;
    }, { step: 'initialize', name: 'legalHold' });
    const alerts = await alertQueue(sqs, sns, 'prune');
    process.env['AWS_ENDPOINT_URL_SNS'] = sqsEndpoint();

    try {
      // Act
      const result = await runScheduledPrune(
        { s3: client, sns, topicArn: alerts.topicArn, config: { archive: { bucket, prefix: PREFIX } }, logger: silentLogger(), retry: fastRetry },
        { keepLast: 1 },
      );

      // Assess
      expect(result.alerted).toBe(true);
      expect(result.report.deleted.map((d) => d.backupId)).toEqual(['b-2']);
      expect(result.report.locked.map((l) => [l.backupId, l.code])).toEqual([['b-3', 'LOCKED']]);
      expect(await archivedIds(bucket)).toEqual(['b-1', 'b-3']);
      const received = await alertsOn(sqs, alerts.queueUrl, 5);
      expect(received).toHaveLength(1);
      expect(received[0]!.subject).toBe(`ges-archiver: prune could not delete 1 backup (run ${result.pruneId})`);
      expect(received[0]!.body).toMatchObject({ source: 'scheduledPrune', failures: [{ graphId: G, backupId: 'b-3', code: 'LOCKED', message: expect.stringContaining('a legal hold') as unknown }] });
    } finally {
      client.destroy();
    }
  });
});
