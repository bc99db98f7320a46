import type { Copier, CopyFileResult, CopyStats } from '../copy/copier.js';
import { isAbortError } from '../errors.js';
import { MetricNames, MetricUnits } from './names.js';
import type { MetricsSink } from './sink.js';

/** Copy calls that moved less than this say more about latency than throughput: no CopyThroughput datapoint. */
export const THROUGHPUT_MIN_BYTES = 1024 * 1024;

/** One file archived: a whole-file copy that completed, or a range-sharded file whose hash pass wrote its receipt. */
export function recordFileArchived(sink: MetricsSink, bytes: number): void {
  sink.add(MetricNames.FilesArchived, MetricUnits.Count, 1);
  sink.add(MetricNames.BytesArchived, MetricUnits.Bytes, bytes);
}

/** The datapoints of one finished copy call (complete or handed over). */
export function recordCopyResult(sink: MetricsSink, result: CopyFileResult): void {
  const stats: CopyStats = result.stats;
  if (result.status === 'complete') {
    recordFileArchived(sink, result.bytes);
  } else {
    sink.add(MetricNames.CopyHandovers, MetricUnits.Count, 1);
  }
  recordCopyStats(sink, stats);
}

/**
 * The download datapoints of one copy call. A shard (copyRange) records only these, and its
 * handovers: the file it belongs to is counted once, when the hash pass after the last shard
 * writes its receipt (WorkerOptions.onFileArchived).
 */
function recordCopyStats(sink: MetricsSink, stats: CopyStats): void {
  if (stats.linkRefreshes > 0) sink.add(MetricNames.LinkRefreshes, MetricUnits.Count, stats.linkRefreshes);
  if (stats.resumes > 0) sink.add(MetricNames.Resumes, MetricUnits.Count, stats.resumes);
  if (stats.restarts > 0) sink.add(MetricNames.CopyRestarts, MetricUnits.Count, stats.restarts);
  if (stats.bytesDownloaded >= THROUGHPUT_MIN_BYTES && stats.durationMs > 0) {
    sink.add(MetricNames.CopyThroughput, MetricUnits.BytesPerSecond, Math.round((stats.bytesDownloaded * 1000) / stats.durationMs));
  }
}

/**
 * The copier, with every call's outcome recorded in `sink`. The archive code is unchanged:
 * the composition root hands this in place of the plain copier, so the counts are exactly
 * what the copier did in this invocation (files reused from receipts were counted when they
 * were copied). A cancelled copy (deadline, a sibling's failure) is not a failed file.
 */
export function instrumentCopier(copier: Copier, sink: MetricsSink): Copier {
  return {
    async copyFile(req) {
      let result: CopyFileResult;
      try {
        result = await copier.copyFile(req);
      } catch (err) {
        if (!(isAbortError(err) || req.signal?.aborted === true)) sink.add(MetricNames.FilesFailed, MetricUnits.Count, 1);
        throw err;
      }
      recordCopyResult(sink, result);
      return result;
    },
    async copyRange(req) {
      const result = await copier.copyRange(req);
      if (result.status === 'handover') sink.add(MetricNames.CopyHandovers, MetricUnits.Count, 1);
      recordCopyStats(sink, result.stats);
      return result;
    },
    abortCheckpoint: (cp) => copier.abortCheckpoint(cp),
  };
}
