// NewestBackupAgeHours from a run report's newestArchived (no listing of the archive), as
// scheduledRun and the copy worker's graph planning record it.
import { MemoryMetrics, MetricNames, recordReportFreshness } from '../../lib/metrics/index.js';

const HOUR = 3_600_000;

describe('recordReportFreshness', () => {
  it('records one NewestBackupAgeHours datapoint per graph of the report (dimension Graph), from the backup time', () => {
    // Prepare
    const now = Date.parse('2026-11-27T12:00:00Z');
    const sink = new MemoryMetrics();
    const report = {
      newestArchived: [
        { graphId: 'graph-a', backupId: 'b-new', backupTime: new Date(now - 2 * HOUR).toISOString() },
        { graphId: 'graph-b', backupId: 'b-only', backupTime: new Date(now - 30.5 * HOUR).toISOString() },
        { graphId: 'graph-c', backupId: 'b-bad', backupTime: 'not a time' },
      ],
    };

    // Act
    const ages = recordReportFreshness(sink, report, now);

    // Assess
    expect(sink.datapoints).toEqual([
      { name: MetricNames.NewestBackupAgeHours, unit: 'None', value: 2, dimensions: { Graph: 'graph-a' } },
      { name: MetricNames.NewestBackupAgeHours, unit: 'None', value: 30.5, dimensions: { Graph: 'graph-b' } },
    ]);
    expect([...ages.keys()]).toEqual(['graph-a', 'graph-b']);
  });

  it('records nothing for a report without newestArchived (a dry run, a run planned per graph)', () => {
    const sink = new MemoryMetrics();
    expect(recordReportFreshness(sink, {}).size).toBe(0);
    expect(sink.datapoints).toEqual([]);
  });
});
