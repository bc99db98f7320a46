import { publishRunAlert } from '../alerts/index.js';
import { ArchiverError, ErrorCodes, errorSummary, toArchiverError } from '../errors.js';
import { fanOut, type FanOutOptions } from '../fanout/plan-fanout.js';
import { DEFAULT_INLINE_THROUGHPUT_MIBPS, type FanoutDeps } from '../fanout/types.js';
import { planRun, type RunPlan } from './plan.js';
import { checkArchiveBucket } from './preflight.js';
import { loadRunManifest, validateRunManifest } from './run-manifest.js';
import { archiveOne, executePlan, finishRun, newRunId, orderedReports } from './run.js';
import type { BackupTarget, RunReport } from './types.js';

/**
 * The domain entry points of the Lambda functions (functions/ stays a thin shell around them).
 * Both store the run report under `{prefix}_runs/` and publish one alert when anything failed.
 */
const MiB = 1024 * 1024;

export interface ScheduledRunOptions {
  signal?: AbortSignal;
  /** Epoch ms when the invocation ends. Without it the run is never short of time (always inline). */
  deadline?: number | undefined;
  /** Default: MANIFEST_URI. */
  manifestUri?: string;
  /** Time an inline run keeps free before the deadline; default 60 s. */
  marginMs?: number;
  trigger?: string;
  fanOut?: Pick<FanOutOptions, 'sendConcurrency'>;
}

export type ScheduledRunReport = RunReport & {
  /** `inline`: copied in this invocation; `fan-out`: queued for the copy worker. */
  mode: 'inline' | 'fan-out';
  estimatedBytes: number;
};

interface CopyEstimate {
  /** Bytes the plan will copy, by GES's size estimates; Infinity when any size is unknown. */
  totalBytes: number;
  /** The largest single file; Infinity when any size is unknown. */
  largestFileBytes: number;
}

/**
 * What a plan will copy, from the file lists' size estimates. A file whose size GES does not
 * give, or a backup whose file list cannot be read, counts as unbounded: the run must not bet
 * its invocation on it.
 */
async function estimateCopy(deps: FanoutDeps, targets: BackupTarget[], signal?: AbortSignal): Promise<CopyEstimate> {
  const unbounded = { totalBytes: Number.POSITIVE_INFINITY, largestFileBytes: Number.POSITIVE_INFINITY };
  let totalBytes = 0;
  let largestFileBytes = 0;
  for (const t of targets) {
    let sizes: (number | undefined)[];
    try {
      sizes = (await deps.ges.getBackupFiles(t.graphId, t.backupId, { signal })).files.map((f) => f.sizeKb);
    } catch {
      // The archiving itself will report this backup's problem.
      return unbounded;
    }
    for (const kb of sizes) {
      if (kb === undefined) return unbounded;
      totalBytes += kb * 1024;
      largestFileBytes = Math.max(largestFileBytes, kb * 1024);
    }
  }
  return { totalBytes, largestFileBytes };
}

function alertDeps(deps: FanoutDeps): Parameters<typeof publishRunAlert>[0] {
  return { sns: deps.sns, topicArn: deps.config.alertTopicArn, logger: deps.logger, retry: deps.retry };
}

/**
 * `scheduledRun`: reads the manifest (MANIFEST_URI), plans the run, and archives inline when the
 * estimated copy time (GES size estimates ÷ INLINE_THROUGHPUT_MBPS, in MiB/s) fits before the
 * deadline minus a margin and no file needs more than half of that time (a file of unknown size
 * counts as unbounded); otherwise fans the target backups out to the copy queue (status
 * `queued`). Without COPY_QUEUE_URL it always runs inline (and warns). An archive bucket that
 * fails its check (BUCKET_UNAVAILABLE, before GES is asked for anything), or a manifest that
 * cannot be read or is invalid, alerts and throws (the invocation fails).
 */
export async function runScheduled(deps: FanoutDeps, options: ScheduledRunOptions = {}): Promise<ScheduledRunReport> {
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const runId = newRunId(startedAt);
  const trigger = options.trigger ?? 'schedule';
  const log = deps.logger.child({ runId });
  const { signal } = options;

  let plan: RunPlan;
  try {
    // The bucket first: a missing bucket or refused credentials fail fast, with one alert.
    await checkArchiveBucket(deps, { write: true, signal });
    const uri = options.manifestUri ?? deps.config.manifestUri;
    if (uri === undefined) throw new ArchiverError(ErrorCodes.ConfigInvalid, 'No manifest: MANIFEST_URI is not set');
    const manifest = await loadRunManifest(uri, deps, signal ? { signal } : {});
    plan = await planRun(deps, manifest, signal);
  } catch (err) {
    const e = toArchiverError(err);
    log.error({ err: e }, 'scheduled run could not start');
    await publishRunAlert(alertDeps(deps), { runId, failures: [], runError: errorSummary(e) }, { source: 'scheduledRun' });
    throw e;
  }

  const estimate = plan.targets.length === 0 ? { totalBytes: 0, largestFileBytes: 0 } : await estimateCopy(deps, plan.targets, signal);
  const estimatedBytes = estimate.totalBytes;
  const throughput = (deps.config.fanout?.inlineThroughputMiBps ?? DEFAULT_INLINE_THROUGHPUT_MIBPS) * MiB;
  const estimatedMs = (estimatedBytes / throughput) * 1000;
  const budgetMs = options.deadline === undefined ? Number.POSITIVE_INFINITY : options.deadline - now() - (options.marginMs ?? 60_000);
  // Inline only when the whole run fits, and no single file needs more than half the budget: an
  // inline copy cannot hand over, so a file that would not finish must go to the copy workers.
  const fits = estimatedMs <= budgetMs && (estimate.largestFileBytes / throughput) * 1000 <= budgetMs / 2;
  let mode: ScheduledRunReport['mode'] = plan.targets.length === 0 || fits ? 'inline' : 'fan-out';
  if (mode === 'fan-out' && (deps.config.copyQueueUrl === undefined || deps.sqs === undefined)) {
    log.warn({ estimatedBytes, estimatedMs: Math.round(estimatedMs), budgetMs }, 'the run does not fit its time budget but COPY_QUEUE_URL is not set; running inline');
    mode = 'inline';
  }
  log.info({ mode, targets: plan.targets.length, settled: plan.settled.length, estimatedBytes, estimatedMs: Math.round(estimatedMs), budgetMs }, 'scheduled run planned');

  let report: RunReport;
  if (mode === 'inline') {
    report = await executePlan(deps, plan, { runId, trigger, startedAt, ...(signal ? { signal } : {}) });
  } else {
    const fanned = await fanOut(deps, plan.targets, { runId, ...(signal ? { signal } : {}), ...options.fanOut });
    report = await finishRun(deps, { runId, trigger, dryRun: false, startedAt, backups: orderedReports(plan, fanned) });
  }
  await publishRunAlert(alertDeps(deps), report, { source: 'scheduledRun' });
  return { ...report, mode, estimatedBytes: Number.isFinite(estimatedBytes) ? estimatedBytes : -1 };
}

/**
 * `archiveBackup`: one backup by hand, same rules as a manifest entry (ids validated first:
 * MANIFEST_INVALID names the field; then the bucket: BUCKET_UNAVAILABLE alerts and throws).
 * Returns the run report; a failure alerts.
 */
export async function archiveOneBackup(deps: FanoutDeps, ids: { graphId: string; backupId: string }, options: { signal?: AbortSignal } = {}): Promise<RunReport> {
  validateRunManifest({ version: 1, graphs: [{ graphId: ids.graphId, backups: [ids.backupId] }] }, 'from the event');
  try {
    await checkArchiveBucket(deps, { write: true, signal: options.signal });
  } catch (err) {
    const e = toArchiverError(err);
    deps.logger.error({ err: e }, 'manual run could not start');
    await publishRunAlert(alertDeps(deps), { runId: newRunId((deps.now ?? Date.now)()), failures: [], runError: errorSummary(e) }, { source: 'archiveBackup' });
    throw e;
  }
  const report = await archiveOne(deps, ids.graphId, ids.backupId, { trigger: 'manual', ...(options.signal ? { signal: options.signal } : {}) });
  await publishRunAlert(alertDeps(deps), report, { source: 'archiveBackup' });
  return report;
}
