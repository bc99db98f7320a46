import { publishRunAlert } from '../alerts/alert.js';
import { ArchiverError, ErrorCodes, errorSummary, toArchiverError } from '../errors.js';
import { chooseCopyMode, fanOut, type FanOutOptions } from '../fanout/plan-fanout.js';
import { DEFAULT_PLAN_PER_GRAPH_MIN_GRAPHS } from '../config.js';
import { queueGraphPlans } from '../fanout/plan-graph.js';
import type { FanoutDeps } from '../fanout/types.js';
import { planRun, type RunPlan } from '../archive/plan.js';
import { checkArchiveBucket } from '../archive/preflight.js';
import { loadRunManifest, validateRunManifest, type RunManifest } from '../archive/run-manifest.js';
import { archiveOne, executePlan, finishRun, newestArchived, newRunId, orderedReports } from '../archive/run.js';
import type { RunReport } from '../archive/types.js';

/**
 * The domain entry points of the Lambda functions (functions/ stays a thin shell around them).
 * Both store the run report under `{prefix}_runs/` and publish one alert when anything failed.
 */
export interface ScheduledRunOptions {
  signal?: AbortSignal;
  /** Epoch ms when the invocation ends. Without it the run is never short of time (always inline). */
  deadline?: number | undefined;
  /** Default: MANIFEST_URI. */
  manifestUri?: string;
  /** Time an inline run keeps free before the deadline; default DEADLINE_MARGINS.inlineKeepFreeMs (lib/deadline.ts). */
  marginMs?: number;
  trigger?: string;
  fanOut?: Pick<FanOutOptions, 'sendConcurrency'>;
}

export type ScheduledRunReport = RunReport & {
  /**
   * `inline`: copied in this invocation; `fan-out`: queued for the copy worker; `per-graph`: one
   * planning message per graph queued, each graph planned (and reported) by a copy worker.
   */
  mode: 'inline' | 'fan-out' | 'per-graph';
  /** GES's estimate of the bytes to copy; -1 when unknown (a size GES does not give, or planned per graph). */
  estimatedBytes: number;
};

function alertDeps(deps: FanoutDeps): Parameters<typeof publishRunAlert>[0] {
  return { sns: deps.sns, topicArn: deps.config.alertTopicArn, logger: deps.logger, retry: deps.retry };
}

/** Plans per graph when a copy queue exists and the manifest names at least PLAN_PER_GRAPH_MIN_GRAPHS graphs. */
function plansPerGraph(deps: FanoutDeps, manifest: RunManifest): boolean {
  if (deps.config.copyQueueUrl === undefined || deps.sqs === undefined) return false;
  return manifest.graphs.length >= (deps.config.fanout?.planPerGraphMinGraphs ?? DEFAULT_PLAN_PER_GRAPH_MIN_GRAPHS);
}

/**
 * `scheduledRun`: reads the manifest (MANIFEST_URI) and checks the bucket first (either failing:
 * one alert, and it throws: BUCKET_UNAVAILABLE before GES is asked for anything, MANIFEST_INVALID...).
 * - A manifest with at least PLAN_PER_GRAPH_MIN_GRAPHS graphs, and a copy queue: one `plan-graph`
 *   message per graph (mode `per-graph`); copy workers plan the graphs in parallel, each storing
 *   `{prefix}_runs/{runId}.graph.{graphId}.json` and alerting its failures. The run's own report
 *   says how many graphs went out, and lists the graphs that could not be queued (failed).
 * - Otherwise it plans every graph here, then archives inline or fans the target backups out to
 *   the copy queue (status `queued`), as `chooseCopyMode` decides.
 */
export async function runScheduled(deps: FanoutDeps, options: ScheduledRunOptions = {}): Promise<ScheduledRunReport> {
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const runId = newRunId(startedAt);
  const trigger = options.trigger ?? 'schedule';
  const log = deps.logger.child({ runId });
  const { signal } = options;

  let manifest: RunManifest;
  let plan: RunPlan | undefined;
  try {
    // The bucket first: a missing bucket or refused credentials fail fast, with one alert.
    await checkArchiveBucket(deps, { write: true, signal });
    const uri = options.manifestUri ?? deps.config.manifestUri;
    if (uri === undefined) throw new ArchiverError(ErrorCodes.ConfigInvalid, 'No manifest: MANIFEST_URI is not set');
    manifest = await loadRunManifest(uri, deps, signal ? { signal } : {});
    if (!plansPerGraph(deps, manifest)) plan = await planRun(deps, manifest, signal);
  } catch (err) {
    const e = toArchiverError(err);
    log.error({ err: e }, 'scheduled run could not start');
    await publishRunAlert(alertDeps(deps), { runId, failures: [], runError: errorSummary(e) }, { source: 'scheduledRun' });
    throw e;
  }

  let report: RunReport;
  let mode: ScheduledRunReport['mode'];
  let estimatedBytes = -1;
  if (plan === undefined) {
    mode = 'per-graph';
    const failed = await queueGraphPlans(deps, manifest, { runId, trigger, ...(signal ? { signal } : {}), ...options.fanOut });
    log.info({ mode, graphs: manifest.graphs.length, notQueued: failed.length }, 'scheduled run queued one planning message per graph');
    report = await finishRun(deps, { runId, trigger, dryRun: false, startedAt, backups: failed, graphsPlanned: manifest.graphs.length - new Set(failed.map((f) => f.graphId)).size });
  } else {
    const choice = await chooseCopyMode(deps, plan.targets, { signal, deadline: options.deadline, marginMs: options.marginMs });
    mode = choice.mode;
    estimatedBytes = Number.isFinite(choice.estimatedBytes) ? choice.estimatedBytes : -1;
    log.info({ mode, targets: plan.targets.length, settled: plan.settled.length, estimatedBytes: choice.estimatedBytes, estimatedMs: Math.round(choice.estimatedMs), budgetMs: choice.budgetMs }, 'scheduled run planned');
    if (mode === 'inline') {
      report = await executePlan(deps, plan, { runId, trigger, startedAt, ...(signal ? { signal } : {}) });
    } else {
      const fanned = await fanOut(deps, plan.targets, { runId, ...(signal ? { signal } : {}), ...options.fanOut });
      report = await finishRun(deps, { runId, trigger, dryRun: false, startedAt, backups: orderedReports(plan, fanned), newestArchived: newestArchived(plan, fanned) });
    }
  }
  await publishRunAlert(alertDeps(deps), report, { source: 'scheduledRun' });
  return { ...report, mode, estimatedBytes };
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
