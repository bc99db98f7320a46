// NewestBackupAgeHours from a real listing of the archive (Swift), as scheduledRun records it.
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { buildArchiveManifest } from '../../lib/archive/archive-manifest.js';
import { manifestKey } from '../../lib/archive/keys.js';
import { silentLogger } from '../../lib/log.js';
import { MemoryMetrics, MetricNames, recordArchiveFreshness } from '../../lib/metrics/index.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { createTestBucket, s3Client } from '../support/aws.js';

const PREFIX = 'ges-backups/';
const HOUR = 3_600_000;
let s3: S3Client;

beforeAll(() => {
  s3 = s3Client();
});
afterAll(() => s3.destroy());

async function manifest(bucket: string, graphId: string, backupId: string, backupTimestamp: number): Promise<void> {
  const body = buildArchiveManifest({ graphId, backupId, backupTimestamp, archivedAt: new Date(backupTimestamp + HOUR), files: [] });
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey(PREFIX, graphId, backupId), Body: JSON.stringify(body) }));
}

describe('recordArchiveFreshness', () => {
  it('records one NewestBackupAgeHours datapoint per graph (dimension Graph), from the newest backup time', async () => {
    // Prepare
    const bucket = await createTestBucket('freshness');
    const now = Date.parse('2026-11-27T12:00:00Z');
    await manifest(bucket, 'graph-a', 'b-old', now - 50 * HOUR);
    await manifest(bucket, 'graph-a', 'b-new', now - 2 * HOUR);
    await manifest(bucket, 'graph-b', 'b-only', now - 30 * HOUR);
    // A run report is not a backup.
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}_runs/r1.json`, Body: '{}' }));
    const sink = new MemoryMetrics();

    // Act
    await recordArchiveFreshness({ s3, config: { archive: { bucket, prefix: PREFIX } }, logger: silentLogger(), retry: createRetryPolicy() }, sink, { now: () => now });

    // Assess
    expect(sink.datapoints).toEqual([
      { name: MetricNames.NewestBackupAgeHours, unit: 'None', value: 2, dimensions: { Graph: 'graph-a' } },
      { name: MetricNames.NewestBackupAgeHours, unit: 'None', value: 30, dimensions: { Graph: 'graph-b' } },
    ]);
  });

  it('logs and records nothing when the bucket cannot be listed (a metric never fails the run)', async () => {
    const sink = new MemoryMetrics();
    const retry = createRetryPolicy({ maxAttempts: 1 });
    const ages = await recordArchiveFreshness({ s3, config: { archive: { bucket: 'no-such-bucket-for-freshness', prefix: PREFIX } }, logger: silentLogger(), retry }, sink);
    expect(ages.size).toBe(0);
    expect(sink.datapoints).toEqual([]);
  });
});
