import type { SNSClient } from '@aws-sdk/client-sns';
import { publishRunAlert, type AlertFailure } from '../alerts/alert.js';
import { newRunId } from '../archive/run.js';
import type { StorageDeps } from '../catalog/types.js';
import { ErrorCodes, type ErrorCode } from '../errors.js';
import { MetricNames, MetricUnits } from '../metrics/names.js';
import type { MetricsSink } from '../metrics/sink.js';
import type { VerifyProblem, VerifyReport } from './types.js';
import { verifyArchive } from './verify.js';

/**
 * The scheduled restore drill: `verify` over the whole archive with a sample. Every archived
 * backup gets the listing checks (each file present, of the recorded length, nothing extra);
 * `samplePercent` of the files are read back and hashed. Any problem raises one alert on the
 * alert topic, through the same module as the run alerts.
 */
export interface DrillDeps extends StorageDeps {
  metrics: MetricsSink;
  sns?: SNSClient | undefined;
  topicArn?: string | undefined;
}

export interface DrillOptions {
  /** Share of the files to re-read and hash, 0 < p <= 100. */
  samplePercent: number;
  signal?: AbortSignal | undefined;
  /** [0, 1); default Math.random (tests pass a seeded one). */
  random?: (() => number) | undefined;
  /** Objects read at once (verify's default 4). */
  concurrency?: number | undefined;
  /** Default: a new run id (`20261127T023000Z-1a2b3c4d`). */
  drillId?: string | undefined;
}

export interface DrillResult {
  drillId: string;
  report: VerifyReport;
  /** Whether an alert was published (false without problems, or without a topic). */
  alerted: boolean;
}

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
export function drillFailures(report: VerifyReport): AlertFailure[] {
  return report.problems.map((p) => ({
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

/**
 * Runs the drill, records DrillBackupsVerified, DrillFilesChecked and DrillProblems, and
 * publishes one alert when there is any problem. Listing failures and cancellation throw (the
 * invocation fails and its Errors alarm fires); problems found are the result, not an error.
 */
export async function runRestoreDrill(deps: DrillDeps, options: DrillOptions): Promise<DrillResult> {
  const drillId = options.drillId ?? newRunId();
  const log = deps.logger.child({ drillId });
  const report = await verifyArchive({ ...deps, logger: log }, {
    samplePercent: options.samplePercent,
    random: options.random,
    signal: options.signal,
    concurrency: options.concurrency,
  });
  deps.metrics.add(MetricNames.DrillBackupsVerified, MetricUnits.Count, report.backups.length);
  deps.metrics.add(MetricNames.DrillFilesChecked, MetricUnits.Count, report.checked);
  deps.metrics.add(MetricNames.DrillProblems, MetricUnits.Count, report.problems.length);
  log.info({
    backups: report.backups.length, files: report.files, checked: report.checked, matched: report.matched,
    problems: report.problems.length, incomplete: report.incomplete.length, samplePercent: options.samplePercent,
  }, 'restore drill finished');

  let alerted = false;
  if (report.problems.length > 0) {
    for (const p of report.problems) log.warn({ kind: p.kind, key: p.key }, 'restore drill problem');
    alerted = await publishRunAlert(
      { sns: deps.sns, topicArn: deps.topicArn, logger: log, retry: deps.retry },
      {
        runId: drillId,
        failures: drillFailures(report),
        backupsTotal: report.backups.length,
        summary: drillSummary(report.problems.length),
      },
      { source: 'restoreDrill' },
    );
  }
  return { drillId, report, alerted };
}
