import { randomBytes } from 'node:crypto';
import pLimit from 'p-limit';
import { errorSummary, toArchiverError } from '../errors.js';
import { redactValue } from '../log.js';
import { archiveBackup } from './archive-backup.js';
import { runReportKey } from '../store/keys.js';
import { planRun, type NewestArchived, type RunPlan } from './plan.js';
import type { RunManifest } from './run-manifest.js';
import { putJson } from '../store/s3-objects.js';
import type { ArchiveDeps, BackupReport, RunOptions, RunReport } from './types.js';

/** Sortable, unique run id: `20261127T133000Z-1a2b3c4d`. */
export function newRunId(now: number = Date.now()): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

export function runTotals(backups: BackupReport[]): RunReport['totals'] {
  const t = { archived: 0, skipped: 0, failed: 0, planned: 0, queued: 0, cancelled: 0, files: 0, bytes: 0 };
  for (const b of backups) {
    t[b.status] += 1;
    t.files += b.files;
    t.bytes += b.bytes;
  }
  return t;
}

/**
 * Stable order for reports: graphs in manifest order (as planned), planning outcomes first
 * within a graph, then the archived targets.
 */
export function orderedReports(plan: RunPlan, reports: BackupReport[]): BackupReport[] {
  const rank = new Map<string, number>();
  [...plan.settled, ...plan.targets].forEach((b, i) => {
    if (!rank.has(b.graphId)) rank.set(b.graphId, i);
  });
  return [...plan.settled, ...reports].sort((a, b) => (rank.get(a.graphId) ?? 0) - (rank.get(b.graphId) ?? 0));
}

/**
 * Executes a plan: copies every target backup with bounded concurrency (backups, and files
 * across the whole run), then stores the run report under `{prefix}_runs/` (not in a dry
 * run). One backup's failure never stops the others.
 */
export async function executePlan(deps: ArchiveDeps, plan: RunPlan, options: RunOptions & { startedAt?: number } = {}): Promise<RunReport> {
  const startedAt = options.startedAt ?? (deps.now ?? Date.now)();
  const runId = options.runId ?? newRunId(startedAt);
  const dryRun = options.dryRun ?? false;
  const reports = await archiveTargets(deps, plan, { ...options, runId });
  const backups = orderedReports(plan, reports);
  return finishRun(deps, { runId, trigger: options.trigger ?? 'cli', dryRun, startedAt, backups, newestArchived: newestArchived(plan, reports) });
}

/** Copies every target of a plan (see executePlan); one report per target, in the targets' order. */
export async function archiveTargets(deps: ArchiveDeps, plan: RunPlan, options: RunOptions & { runId: string }): Promise<BackupReport[]> {
  const { runId } = options;
  const dryRun = options.dryRun ?? false;
  const signal = options.signal ?? new AbortController().signal;
  options.onEvent?.({
    type: 'plan',
    targets: plan.targets.length,
    skipped: plan.settled.filter((b) => b.status === 'skipped').length,
    failed: plan.settled.filter((b) => b.status === 'failed').length,
  });

  const backupLimit = pLimit(deps.config.concurrency.backups);
  const fileLimit = pLimit(deps.config.concurrency.files);
  // Promise.all keeps the targets' order, whatever order the backups finish in.
  return Promise.all(plan.targets.map((target) => backupLimit(async () => {
    const report: BackupReport = signal.aborted
      ? { graphId: target.graphId, backupId: target.backupId, status: 'failed', files: 0, bytes: 0, error: errorSummary(toArchiverError(signal.reason)) }
      : await archiveBackup(deps, target, { signal, dryRun, runId, fileLimit, force: options.force === true, ...(options.onEvent ? { onEvent: options.onEvent } : {}) });
    options.onEvent?.({ type: 'backup-done', report });
    return report;
  })));
}

/**
 * Per graph, the newest archived backup after the run: what planning found archived, or a
 * backup this run archived that GES took later. `reports` are the targets' reports, in order.
 */
export function newestArchived(plan: RunPlan, reports: readonly BackupReport[]): NewestArchived[] {
  const newest = new Map<string, NewestArchived>((plan.newestArchived ?? []).map((n) => [n.graphId, n]));
  plan.targets.forEach((target, i) => {
    const at = target.backup?.startTimestamp ?? target.backup?.endTimestamp;
    if (reports[i]?.status !== 'archived' || at === undefined) return;
    const seen = newest.get(target.graphId);
    if (seen === undefined || Date.parse(seen.backupTime) < at) {
      newest.set(target.graphId, { graphId: target.graphId, backupId: target.backupId, backupTime: new Date(at).toISOString() });
    }
  });
  return [...newest.values()];
}

/**
 * Builds a run's report and, unless it is a dry run, stores it under `{prefix}_runs/` (even
 * when the run was cancelled: it says what happened). A report that cannot be stored is
 * logged; the run's outcome stands.
 */
export async function finishRun(
  deps: Pick<ArchiveDeps, 's3' | 'retry' | 'logger' | 'config' | 'now'>,
  run: {
    runId: string; trigger: string; dryRun: boolean; startedAt: number; backups: BackupReport[];
    newestArchived?: NewestArchived[] | undefined;
    /** Where to store it; default `{prefix}_runs/{runId}.json`. */
    key?: string | undefined;
    /** Set on a graph's report of a run planned per graph. */
    graphId?: string | undefined;
    /** Set on the report of a run planned per graph: how many graphs went out to be planned. */
    graphsPlanned?: number | undefined;
  },
): Promise<RunReport> {
  const finishedAt = (deps.now ?? Date.now)();
  const report: RunReport = {
    runId: run.runId,
    trigger: run.trigger,
    dryRun: run.dryRun,
    startedAt: new Date(run.startedAt).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    durationMs: finishedAt - run.startedAt,
    ...(run.graphId === undefined ? {} : { graphId: run.graphId }),
    ...(run.graphsPlanned === undefined ? {} : { graphsPlanned: run.graphsPlanned }),
    backups: run.backups,
    totals: runTotals(run.backups),
    ...(run.newestArchived === undefined ? {} : { newestArchived: run.newestArchived }),
  };
  if (!run.dryRun) {
    const key = run.key ?? runReportKey(deps.config.archive.prefix, run.runId);
    try {
      // The same redaction as the logs: error messages may quote what GES or S3 answered.
      await putJson(deps, deps.config.archive.bucket, key, redactValue(report));
      report.reportKey = key;
    } catch (err) {
      deps.logger.error({ err: toArchiverError(err), key }, 'could not store the run report');
    }
  }
  return report;
}

/** One scheduled run: plan the manifest, then archive. */
export async function runManifest(deps: ArchiveDeps, manifest: RunManifest, options: RunOptions = {}): Promise<RunReport> {
  const startedAt = (deps.now ?? Date.now)();
  const plan = await planRun(deps, manifest, options.signal, { force: options.force });
  return executePlan(deps, plan, { ...options, startedAt });
}

/** `archive --graph G --backup B`: one explicit backup, same rules as a manifest entry. */
export async function archiveOne(deps: ArchiveDeps, graphId: string, backupId: string, options: RunOptions = {}): Promise<RunReport> {
  return runManifest(deps, { version: 1, graphs: [{ graphId, backups: [backupId] }] }, options);
}

/**
 * Exit status of the CLI (docs/contract.md): 0 all archived/skipped/planned/queued, 1 any failure,
 * 130 (128 + SIGINT, what a shell reports for Ctrl-C) when the run was interrupted, whatever
 * else happened: the run did not finish.
 */
export function exitCodeOf(report: RunReport): 0 | 1 | 130 {
  if (report.backups.some((b) => b.status === 'cancelled')) return 130;
  return report.backups.some((b) => b.status === 'failed') ? 1 : 0;
}
