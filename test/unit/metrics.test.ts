import type { RunReport } from '../../lib/archive/types.js';
import type { Copier, CopyFileRequest, CopyFileResult, CopyRangeResult, CopyStats } from '../../lib/copy/copier.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import {
  MemoryMetrics, MetricNames, instrumentCopier, newestBackupAges, recordFileArchived, recordRunMetrics, recordScheduledRunOutcome, runSucceeded,
} from '../../lib/metrics/index.js';
import type { ArchivedBackupSummary } from '../../lib/catalog/types.js';

const MiB = 1024 * 1024;

function stats(over: Partial<CopyStats> = {}): CopyStats {
  return { linkRefreshes: 0, resumes: 0, restarts: 0, bytesDownloaded: 0, parts: 1, singlePut: false, streams: 1, durationMs: 1000, ...over };
}

function report(statuses: RunReport['backups'][number]['status'][], over: Partial<RunReport> = {}): RunReport {
  const backups = statuses.map((status, i) => ({ graphId: 'g', backupId: `b${i}`, status, files: 1, bytes: 10 }));
  return {
    runId: 'r', trigger: 'schedule', dryRun: false, startedAt: '', finishedAt: '', durationMs: 4321, backups,
    totals: { archived: 0, skipped: 0, failed: 0, planned: 0, queued: 0, cancelled: 0, files: 0, bytes: 0 }, ...over,
  };
}

/** A copier that answers each call with the next scripted outcome. */
function scriptedCopier(outcomes: Array<CopyFileResult | Error>): Copier {
  let i = 0;
  return {
    copyFile: () => {
      const next = outcomes[i++];
      if (next === undefined) throw new Error('no more scripted outcomes');
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    copyRange: () => Promise.reject(new Error('unused')),
    abortCheckpoint: () => Promise.resolve(),
  };
}

const request = (signal?: AbortSignal): CopyFileRequest => ({
  bucket: 'b', key: 'k', fileName: 'f', getLink: () => Promise.reject(new Error('unused')), ...(signal ? { signal } : {}),
});

describe('instrumentCopier', () => {
  it('counts completed files and their bytes, link refreshes, resumes, restarts and per-call throughput', async () => {
    // Prepare
    const sink = new MemoryMetrics();
    const copier = instrumentCopier(scriptedCopier([
      { status: 'complete', key: 'k1', bytes: 8 * MiB, sha256: 'x', stats: stats({ linkRefreshes: 2, resumes: 3, bytesDownloaded: 8 * MiB, durationMs: 2000 }) },
      { status: 'complete', key: 'k2', bytes: 100, sha256: 'y', stats: stats({ restarts: 1, bytesDownloaded: 100, durationMs: 5 }) },
    ]), sink);

    // Act
    await copier.copyFile(request());
    await copier.copyFile(request());

    // Assess
    expect(sink.sum(MetricNames.FilesArchived)).toBe(2);
    expect(sink.sum(MetricNames.BytesArchived)).toBe(8 * MiB + 100);
    expect(sink.sum(MetricNames.LinkRefreshes)).toBe(2);
    expect(sink.sum(MetricNames.Resumes)).toBe(3);
    expect(sink.sum(MetricNames.CopyRestarts)).toBe(1);
    // Only the call that moved at least 1 MiB: 8 MiB in 2 s.
    expect(sink.valuesOf(MetricNames.CopyThroughput)).toEqual([4 * MiB]);
    expect(sink.datapoints.find((d) => d.name === MetricNames.CopyThroughput)?.unit).toBe('Bytes/Second');
  });

  it('counts a shard\'s download datapoints and handovers, never an archived file (the hash pass archives it)', async () => {
    // Prepare
    const sink = new MemoryMetrics();
    const outcomes: CopyRangeResult[] = [
      { status: 'complete', parts: [], stats: stats({ linkRefreshes: 1, bytesDownloaded: 8 * MiB, durationMs: 2000 }) },
      { status: 'handover', offset: 5, parts: [], stats: stats({ resumes: 2 }) },
    ];
    const copier = instrumentCopier({
      copyFile: () => Promise.reject(new Error('unused')),
      copyRange: () => Promise.resolve(outcomes.shift()!),
      abortCheckpoint: () => Promise.resolve(),
    }, sink);
    const range = { ...request(), uploadId: 'u', partSize: 1, totalBytes: 2, sourceEtag: '"e"', start: 0, end: 2 };

    // Act
    await copier.copyRange(range);
    await copier.copyRange(range);

    // Assess
    expect(sink.sum(MetricNames.FilesArchived)).toBe(0);
    expect(sink.sum(MetricNames.BytesArchived)).toBe(0);
    expect(sink.sum(MetricNames.CopyHandovers)).toBe(1);
    expect(sink.sum(MetricNames.LinkRefreshes)).toBe(1);
    expect(sink.sum(MetricNames.Resumes)).toBe(2);
    expect(sink.valuesOf(MetricNames.CopyThroughput)).toEqual([4 * MiB]);
  });

  it('recordFileArchived (a sharded file\'s hash pass) counts one file and its bytes, as a completed copy does', () => {
    const sink = new MemoryMetrics();
    recordFileArchived(sink, 16 * MiB + 777);
    expect(sink.sum(MetricNames.FilesArchived)).toBe(1);
    expect(sink.sum(MetricNames.BytesArchived)).toBe(16 * MiB + 777);
  });

  it('counts a handover as a handover, not an archived file', async () => {
    const sink = new MemoryMetrics();
    const checkpoint = { version: 1 as const, bucket: 'b', key: 'k', uploadId: 'u', partSize: 1, totalBytes: 2, offset: 1, parts: [], hashState: '' };
    await instrumentCopier(scriptedCopier([{ status: 'handover', checkpoint, stats: stats({ bytesDownloaded: 2 * MiB }) }]), sink).copyFile(request());
    expect(sink.sum(MetricNames.CopyHandovers)).toBe(1);
    expect(sink.sum(MetricNames.FilesArchived)).toBe(0);
    expect(sink.valuesOf(MetricNames.CopyThroughput)).toEqual([2 * MiB]);
  });

  it('counts a failed copy and rethrows the same error; a cancelled copy is not a failure', async () => {
    // Prepare
    const sink = new MemoryMetrics();
    const failure = new ArchiverError(ErrorCodes.DownloadFailed, 'boom');
    const controller = new AbortController();
    controller.abort(new ArchiverError(ErrorCodes.DeadlineExceeded, 'deadline'));
    const copier = instrumentCopier(scriptedCopier([failure, new ArchiverError(ErrorCodes.DeadlineExceeded, 'deadline')]), sink);

    // Act + Assess
    await expect(copier.copyFile(request())).rejects.toBe(failure);
    await expect(copier.copyFile(request(controller.signal))).rejects.toMatchObject({ code: ErrorCodes.DeadlineExceeded });
    expect(sink.sum(MetricNames.FilesFailed)).toBe(1);
    expect(sink.datapoints.map((d) => d.name)).toEqual([MetricNames.FilesFailed]);
  });
});

describe('recordRunMetrics', () => {
  it('records backups by outcome and the run duration in milliseconds', () => {
    const sink = new MemoryMetrics();
    recordRunMetrics(sink, report(['archived', 'archived', 'skipped', 'queued', 'failed']));
    expect(Object.fromEntries(sink.datapoints.map((d) => [d.name, [d.value, d.unit]]))).toEqual({
      BackupsArchived: [2, 'Count'], BackupsSkipped: [1, 'Count'], BackupsQueued: [1, 'Count'], BackupsFailed: [1, 'Count'],
      RunDuration: [4321, 'Milliseconds'],
    });
  });

  it('records nothing for a dry run (nothing was stored)', () => {
    const sink = new MemoryMetrics();
    recordRunMetrics(sink, report(['planned'], { dryRun: true }));
    expect(sink.datapoints).toEqual([]);
  });
});

describe('recordScheduledRunOutcome', () => {
  it('puts 1 when no backup failed (queued and skipped are not failures), 0 on a failed backup or a run that threw', () => {
    const sink = new MemoryMetrics();
    recordScheduledRunOutcome(sink, report(['archived', 'skipped', 'queued']));
    recordScheduledRunOutcome(sink, report(['archived', 'failed']));
    recordScheduledRunOutcome(sink, undefined);
    expect(sink.valuesOf(MetricNames.ScheduledRunSucceeded)).toEqual([1, 0, 0]);
    expect(runSucceeded(report([]))).toBe(true);
  });
});

describe('newestBackupAges', () => {
  const now = Date.parse('2026-11-27T12:00:00Z');
  const summary = (graphId: string, backupId: string, times: { backupTime?: string; archivedAt: string }): ArchivedBackupSummary => ({
    valid: true, graphId, backupId, manifestKey: `p/${graphId}/${backupId}/manifest.json`, fileCount: 1, totalBytes: 1, ...times,
  });

  it('takes per graph the newest backup time (else archive time), in hours, ignoring unusable manifests', () => {
    const ages = newestBackupAges([
      summary('g1', 'old', { backupTime: '2026-11-20T12:00:00Z', archivedAt: '2026-11-20T13:00:00Z' }),
      summary('g1', 'new', { backupTime: '2026-11-27T00:00:00Z', archivedAt: '2026-11-27T11:00:00Z' }),
      summary('g2', 'only', { archivedAt: '2026-11-27T10:30:00Z' }),
      { valid: false, graphId: 'g3', backupId: 'x', manifestKey: 'k', problem: 'not JSON' },
    ], now);
    expect(Object.fromEntries(ages)).toEqual({ g1: 12, g2: 1.5 });
  });
});
