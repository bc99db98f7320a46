import { graphReportKey } from '../store/keys.js';
import { failedEntry, planManifestGraph } from '../archive/plan.js';
import type { RunManifest } from '../archive/run-manifest.js';
import { archiveTargets, finishRun, newestArchived, orderedReports } from '../archive/run.js';
import { headObject } from '../store/s3-objects.js';
import type { BackupReport, RunReport } from '../archive/types.js';
import { ArchiverError, ErrorCodes } from '../errors.js';
import { MAX_PLAN_BACKUP_IDS, serializePlanGraphMessage, type PlanGraphMessage } from './messages.js';
import { chooseCopyMode, fanOut, type CopyModeOptions } from './plan-fanout.js';
import { sendMessages } from './sqs.js';
import type { FanoutDeps } from './types.js';

/**
 * Planning per graph. A scheduled run whose manifest names many graphs does not plan them one
 * after another in its own 15 minutes: it sends one `plan-graph` message per graph to the copy
 * queue (`queueGraphPlans`), and the copy workers plan the graphs in parallel, as many at once
 * as the queue's event source allows (`maximumConcurrency`, the bound on GES requests).
 *
 * Each message runs the very step an inline run takes for one graph (`planGraphStep`): list its
 * backups, pick `latest`/`all`/the ids, skip archived ones and fan-outs in progress, then copy
 * inline when it fits the worker's time, else fan the files out (copy messages on the same
 * queue). The graph's report goes to `{prefix}_runs/{runId}.graph.{graphId}.json`, written
 * last: it marks the message done, so a redelivery after it changes nothing. A redelivery before
 * it plans again: archived backups are skipped, and a backup this same run already fanned out is
 * fanned out again (its job.json is rewritten, copy messages are idempotent), so nothing is
 * copied twice and nothing is lost when the first attempt died half way.
 */

export interface QueueGraphPlansOptions {
  runId: string;
  trigger: string;
  signal?: AbortSignal;
  /** SendMessageBatch calls in flight; default 4. */
  sendConcurrency?: number;
}

/**
 * Sends one `plan-graph` message per manifest graph (SendMessageBatch, 10 a call). Returns the
 * failed report lines of the graphs that could not be queued (QUEUE_FAILED, or an explicit list
 * longer than a message carries); every other graph reports through its own planning message.
 */
export async function queueGraphPlans(deps: FanoutDeps, manifest: RunManifest, options: QueueGraphPlansOptions): Promise<BackupReport[]> {
  const queueUrl = deps.config.copyQueueUrl;
  if (queueUrl === undefined || deps.sqs === undefined) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, 'Planning per graph needs COPY_QUEUE_URL and an SQS client');
  }
  const failed: BackupReport[] = [];
  const sendable: RunManifest['graphs'][number][] = [];
  for (const graph of manifest.graphs) {
    if (Array.isArray(graph.backups) && graph.backups.length > MAX_PLAN_BACKUP_IDS) {
      failed.push(...failedEntry(graph, new ArchiverError(ErrorCodes.ManifestInvalid,
        `Graph ${graph.graphId} lists ${graph.backups.length} backup ids; a run planned per graph takes at most ${MAX_PLAN_BACKUP_IDS} per graph: use "all", or split the list over several runs`)));
    } else {
      sendable.push(graph);
    }
  }
  const bodies = sendable.map((graph) => serializePlanGraphMessage({
    v: 1, type: 'plan-graph', runId: options.runId, graphId: graph.graphId, trigger: options.trigger,
    backups: Array.isArray(graph.backups) ? [...graph.backups as readonly string[]] : graph.backups as 'latest' | 'all',
  }));
  const sent = await sendMessages({ sqs: deps.sqs, retry: deps.retry }, queueUrl, bodies, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.sendConcurrency === undefined ? {} : { concurrency: options.sendConcurrency }),
  });
  for (const [i, err] of sent.failed) {
    const graph = sendable[i]!;
    deps.logger.error({ err, runId: options.runId, graphId: graph.graphId }, 'could not queue the graph\'s planning message');
    failed.push(...failedEntry(graph, new ArchiverError(err.code, `The planning message of graph ${graph.graphId} could not be queued: ${err.message}; the next run plans it`, { cause: err })));
  }
  return failed;
}

export interface PlanGraphResult {
  /** `duplicate`: the graph's report exists, this message was handled before; nothing was done. */
  outcome: 'planned' | 'duplicate';
  /** The graph's report (stored at `report.reportKey` unless storing it failed). */
  report?: RunReport;
}

/** See the module comment. Throws only when the graph's report cannot be checked (the message comes back). */
export async function planGraphStep(deps: FanoutDeps, message: PlanGraphMessage, options: CopyModeOptions = {}): Promise<PlanGraphResult> {
  const { bucket, prefix } = deps.config.archive;
  const { runId, graphId, trigger, signal } = { ...message, signal: options.signal };
  const key = graphReportKey(prefix, runId, graphId);
  const log = deps.logger.child({ runId, graphId });
  if (await headObject(deps, bucket, key, signal)) {
    log.info({ key }, 'the graph was planned by an earlier delivery of this message; nothing to do');
    return { outcome: 'duplicate' };
  }
  const startedAt = (deps.now ?? Date.now)();
  const plan = await planManifestGraph(deps, { graphId, backups: message.backups }, signal, { runId });
  const choice = await chooseCopyMode(deps, plan.targets, options);
  const reports = choice.mode === 'inline'
    ? await archiveTargets(deps, plan, { runId, trigger, ...(signal ? { signal } : {}) })
    : await fanOut(deps, plan.targets, { runId, ...(signal ? { signal } : {}) });
  log.info({ mode: choice.mode, targets: plan.targets.length, settled: plan.settled.length }, 'graph planned');
  const report = await finishRun(deps, {
    runId, trigger, dryRun: false, startedAt, graphId, key,
    backups: orderedReports(plan, reports), newestArchived: newestArchived(plan, reports),
  });
  return { outcome: 'planned', report };
}
