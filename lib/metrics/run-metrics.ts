import type { RunReport } from '../archive/types.js';
import { MetricNames, MetricUnits } from './names.js';
import type { MetricsSink } from './sink.js';

/** True when no backup of the run failed (queued, skipped and archived backups all count as success). */
export function runSucceeded(report: Pick<RunReport, 'backups'>): boolean {
  return !report.backups.some((b) => b.status === 'failed');
}

/**
 * The run-level datapoints of a run report: backups by outcome and the run's duration.
 * (File, byte and copy counts come from the instrumented copier, which sees every copy,
 * including the copy worker's.) A dry run records nothing: it stored nothing.
 */
export function recordRunMetrics(sink: MetricsSink, report: RunReport): void {
  if (report.dryRun) return;
  recordBackupOutcomes(sink, report);
  sink.add(MetricNames.RunDuration, MetricUnits.Milliseconds, report.durationMs);
}

/** Backups by outcome only: a graph's report of a run planned per graph (its run's duration is not this). */
export function recordBackupOutcomes(sink: MetricsSink, report: Pick<RunReport, 'backups'>): void {
  const count = (status: string) => report.backups.filter((b) => b.status === status).length;
  sink.add(MetricNames.BackupsArchived, MetricUnits.Count, count('archived'));
  sink.add(MetricNames.BackupsSkipped, MetricUnits.Count, count('skipped'));
  sink.add(MetricNames.BackupsQueued, MetricUnits.Count, count('queued'));
  sink.add(MetricNames.BackupsFailed, MetricUnits.Count, count('failed'));
}

/**
 * ScheduledRunSucceeded: 1 when the scheduled run finished with no failed backup, else 0
 * (`undefined`: the run itself failed before producing a report). The freshness alarm sums it
 * per hour; missing data counts as breaching, so a run that never finishes is noticed too.
 */
export function recordScheduledRunOutcome(sink: MetricsSink, report: Pick<RunReport, 'backups'> | undefined): void {
  sink.add(MetricNames.ScheduledRunSucceeded, MetricUnits.Count, report !== undefined && runSucceeded(report) ? 1 : 0);
}
