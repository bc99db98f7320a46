import type { SNSClient } from '@aws-sdk/client-sns';
import { publishRunAlert, type AlertFailure } from '../alerts/alert.js';
import { ErrorCodes, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../retry.js';
import type { VerifyProblem } from '../verify/types.js';

/**
 * How the restore drill (lib/drill) words what verification found, for its alerts: one line per
 * problem, its kind and key, never object contents or configuration.
 */
function codeOf(problem: VerifyProblem): ErrorCode {
  return problem.kind === 'unreadable' ? ErrorCodes.S3Failed : ErrorCodes.VerifyFailed;
}

function describe(problem: VerifyProblem): string {
  const sizes = problem.expected?.bytes !== undefined || problem.actual?.bytes !== undefined
    ? ` (manifest: ${problem.expected?.bytes ?? '?'} bytes, bucket: ${problem.actual?.bytes ?? '?'} bytes)`
    : '';
  return `${problem.kind}: ${problem.key}${sizes}${problem.message === undefined ? '' : `: ${problem.message}`}`;
}

/** One alert line per problem: its kind and key (never object contents or configuration). */
export function drillFailures(problems: readonly VerifyProblem[]): AlertFailure[] {
  return problems.map((p) => ({
    graphId: p.graphId ?? '-',
    backupId: p.backupId ?? '-',
    file: p.key.slice(p.key.lastIndexOf('/') + 1) || p.key,
    code: codeOf(p),
    message: describe(p),
  }));
}

export function drillSummary(problems: number): string {
  return `restore drill found ${problems} problem${problems === 1 ? '' : 's'}`;
}

export interface DrillAlertDeps {
  logger: Logger;
  retry: RetryPolicy;
  sns?: SNSClient | undefined;
  topicArn?: string | undefined;
}

/**
 * One alert for the problems one drill step found, plus `others` (a check it could not finish);
 * nothing at all: nothing is published.
 */
export async function publishDrillAlert(deps: DrillAlertDeps, drillId: string, problems: readonly VerifyProblem[], backupsTotal: number, others: readonly AlertFailure[] = []): Promise<boolean> {
  const failures = [...drillFailures(problems), ...others];
  if (failures.length === 0) return false;
  for (const p of problems) deps.logger.warn({ kind: p.kind, key: p.key }, 'restore drill problem');
  return publishRunAlert(
    { sns: deps.sns, topicArn: deps.topicArn, logger: deps.logger, retry: deps.retry },
    { runId: drillId, failures, backupsTotal, summary: drillSummary(failures.length) },
    { source: 'restoreDrill' },
  );
}
