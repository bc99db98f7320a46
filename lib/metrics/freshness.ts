import { listArchivedBackups } from '../catalog/list.js';
import type { ArchivedBackupSummary, StorageDeps } from '../catalog/types.js';
import { isAbortError, toArchiverError } from '../errors.js';
import { MetricDimensions, MetricNames, MetricUnits } from './names.js';
import type { MetricsSink } from './sink.js';

const HOUR_MS = 3_600_000;

/**
 * Per graph, the hours since its newest archived backup was taken: GES's backup time when the
 * manifest records it, else the time it was archived. Unusable manifests are left out (verify
 * and the drill report them). Graphs with no archived backup have no entry.
 */
export function newestBackupAges(summaries: readonly ArchivedBackupSummary[], now: number): Map<string, number> {
  const newest = new Map<string, number>();
  for (const s of summaries) {
    if (!s.valid) continue;
    const at = Date.parse(s.backupTime ?? s.archivedAt);
    if (Number.isNaN(at)) continue;
    const seen = newest.get(s.graphId);
    if (seen === undefined || at > seen) newest.set(s.graphId, at);
  }
  const ages = new Map<string, number>();
  for (const [graphId, at] of newest) ages.set(graphId, Math.max(0, Math.round(((now - at) / HOUR_MS) * 100) / 100));
  return ages;
}

export interface FreshnessOptions {
  signal?: AbortSignal | undefined;
  now?: (() => number) | undefined;
}

/**
 * Lists the archive once (every manifest.json under the prefix, read at bounded concurrency)
 * and records NewestBackupAgeHours for every graph in it. A failure is logged, not thrown:
 * the metric must not turn a good run into a failed invocation. Returns the ages recorded.
 */
export async function recordArchiveFreshness(deps: StorageDeps, sink: MetricsSink, options: FreshnessOptions = {}): Promise<Map<string, number>> {
  let summaries: ArchivedBackupSummary[];
  try {
    summaries = await listArchivedBackups(deps, { signal: options.signal });
  } catch (err) {
    if (isAbortError(err) || options.signal?.aborted === true) deps.logger.warn('no time left to measure the archive\'s freshness');
    else deps.logger.error({ err: toArchiverError(err) }, 'could not list the archive to measure its freshness');
    return new Map();
  }
  const ages = newestBackupAges(summaries, (options.now ?? Date.now)());
  for (const [graphId, hours] of ages) {
    sink.addWithDimensions(MetricNames.NewestBackupAgeHours, MetricUnits.None, hours, { [MetricDimensions.Graph]: graphId });
  }
  return ages;
}
