import type { RunReport } from '../archive/types.js';
import type { ArchivedBackupSummary } from '../catalog/types.js';
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

/**
 * Records NewestBackupAgeHours for every graph of a run report (its `newestArchived`: what
 * planning found archived, by one HeadObject per planned backup, plus what the run archived).
 * No listing of the archive: the cost follows the manifest, not the archive's size. A graph
 * with no archived backup known to the run (none yet, or only explicit ids all archived
 * before, which planning does not ask GES about) records nothing. Returns the ages recorded.
 */
export function recordReportFreshness(sink: MetricsSink, report: Pick<RunReport, 'newestArchived'>, now: number = Date.now()): Map<string, number> {
  const ages = new Map<string, number>();
  for (const n of report.newestArchived ?? []) {
    const at = Date.parse(n.backupTime);
    if (Number.isNaN(at)) continue;
    const hours = Math.max(0, Math.round(((now - at) / HOUR_MS) * 100) / 100);
    ages.set(n.graphId, hours);
    sink.addWithDimensions(MetricNames.NewestBackupAgeHours, MetricUnits.None, hours, { [MetricDimensions.Graph]: n.graphId });
  }
  return ages;
}
