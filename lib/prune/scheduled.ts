import type { SNSClient } from '@aws-sdk/client-sns';
import { publishRunAlert, type AlertFailure } from '../alerts/alert.js';
import { newRunId } from '../archive/run.js';
import { pruneArchive } from './prune.js';
import type { PruneDeps, PruneOptions, PruneReport } from './types.js';

/**
 * The scheduled prune (Lambda `scheduledPrune`): the same `pruneArchive` as the CLI, plus one
 * alert on the alert topic when a backup could not be deleted (LOCKED, or a failure part way).
 */
export interface ScheduledPruneDeps extends PruneDeps {
  sns?: SNSClient | undefined;
  topicArn?: string | undefined;
}

export interface ScheduledPruneResult {
  pruneId: string;
  report: PruneReport;
  alerted: boolean;
}

export function pruneFailures(report: PruneReport): AlertFailure[] {
  return [...report.locked, ...report.failed].map((p) => ({ graphId: p.graphId, backupId: p.backupId, code: p.code, message: p.message }));
}

export async function runScheduledPrune(deps: ScheduledPruneDeps, options: PruneOptions): Promise<ScheduledPruneResult> {
  const pruneId = newRunId((deps.now ?? Date.now)());
  const log = deps.logger.child({ pruneId });
  const report = await pruneArchive({ ...deps, logger: log }, options);
  log.info({
    kept: report.kept.length, deleted: report.deleted.length, locked: report.locked.length, failed: report.failed.length,
    finished: report.finished.length, runReportsDeleted: report.runReports?.deleted, dryRun: report.dryRun,
  }, 'prune finished');
  const failures = pruneFailures(report);
  const alerted = failures.length === 0 ? false : await publishRunAlert(
    { sns: deps.sns, topicArn: deps.topicArn, logger: log, retry: deps.retry },
    { runId: pruneId, failures, summary: `prune could not delete ${failures.length} backup${failures.length === 1 ? '' : 's'}` },
    { source: 'scheduledPrune' },
  );
  return { pruneId, report, alerted };
}
