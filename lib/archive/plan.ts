import { isSafeId } from '../ids.js';
import { ArchiverError, ErrorCodes, errorSummary, toArchiverError, type ErrorCode } from '../errors.js';
import { ListingIncompleteError } from '../ges/client.js';
import type { GesBackup } from '../ges/types.js';
import { DEFAULT_FANOUT_MARKER_TTL_MS, fanoutInProgress } from '../store/fanout-job.js';
import { manifestKey } from '../store/keys.js';
import type { RunManifest } from './run-manifest.js';
import { headObject } from '../store/s3-objects.js';
import type { ArchiveDeps, BackupReport, BackupTarget } from './types.js';

/**
 * Turns a run manifest into concrete backups: `latest` and `all` are resolved from GES's
 * backup list (only `success` backups), explicit ids are checked against it. A backup whose
 * archive manifest already exists, or whose fan-out by another run is in progress (its
 * job.json is younger than FANOUT_MARKER_HOURS), is reported `skipped` with the reason, without
 * asking GES for links; such an explicit id is skipped without even listing the graph.
 */
export interface RunPlan {
  targets: BackupTarget[];
  /** Backups (or graphs) that are already decided: skipped, or failed while planning. */
  settled: BackupReport[];
  /** Per graph whose GES list was read, its newest backup that is already archived (for NewestBackupAgeHours). */
  newestArchived?: NewestArchived[];
}

/** A graph's newest archived backup and when GES took it. */
export interface NewestArchived {
  graphId: string;
  backupId: string;
  /** GES's backup time (ISO 8601). */
  backupTime: string;
}

/**
 * With `latest`, how many older successful backups planning checks (one HeadObject each) for
 * the newest archived one when the newest is not archived yet: the age metric then still
 * counts a backup archived by an earlier (or a manual) run, at a cost bounded per graph.
 */
const FRESHNESS_LOOKBACK = 3;

function byNewest(a: GesBackup, b: GesBackup): number {
  return (b.startTimestamp ?? b.endTimestamp ?? 0) - (a.startTimestamp ?? a.endTimestamp ?? 0);
}

function failed(graphId: string, backupId: string, err: unknown): BackupReport {
  return { graphId, backupId, status: 'failed', files: 0, bytes: 0, error: errorSummary(err) };
}

async function isArchived(deps: ArchiveDeps, graphId: string, backupId: string, signal?: AbortSignal): Promise<boolean> {
  const { bucket, prefix } = deps.config.archive;
  return (await headObject(deps, bucket, manifestKey(prefix, graphId, backupId), signal)) !== undefined;
}

function skipped(graphId: string, backup: { id: string; name?: string }, reason: { code: ErrorCode; message: string }): BackupReport {
  return {
    graphId,
    backupId: backup.id,
    status: 'skipped',
    files: 0,
    bytes: 0,
    ...(backup.name === undefined ? {} : { backupName: backup.name }),
    reason,
  };
}

/** A skip report when the backup needs nothing from this run: archived (unless forced), or being fanned out by another run. */
async function alreadyHandled(deps: ArchiveDeps, graphId: string, backup: { id: string; name?: string }, signal: AbortSignal | undefined, options: PlanOptions): Promise<BackupReport | undefined> {
  const force = options.force === true;
  const { bucket, prefix } = deps.config.archive;
  // Both reads at once (one round trip instead of two before every copy); both end before this returns.
  const [archived, inProgress] = await Promise.allSettled([
    force ? Promise.resolve(false) : isArchived(deps, graphId, backup.id, signal),
    fanoutInProgress(deps, bucket, prefix, { graphId, backupId: backup.id }, {
      ttlMs: deps.config.fanout?.markerTtlMs ?? DEFAULT_FANOUT_MARKER_TTL_MS, now: (deps.now ?? Date.now)(), signal,
    }),
  ]);
  if (archived.status === 'rejected') throw archived.reason;
  if (archived.value) {
    return skipped(graphId, backup, { code: ErrorCodes.AlreadyArchived, message: 'already archived (manifest.json exists)' });
  }
  if (inProgress.status === 'rejected') throw inProgress.reason;
  const marker = inProgress.value;
  // A marker of this very run: its planning message came again after fanning the backup out
  // (maybe only partly). Fanning out again is safe: copy messages are idempotent.
  if (marker === undefined || (options.runId !== undefined && marker.runId === options.runId)) return undefined;
  return skipped(graphId, backup, {
    code: ErrorCodes.FanoutInProgress,
    message: `being archived by the fan-out of run ${marker.runId} (since ${marker.createdAt}); left to its copy workers until ${marker.expiresAt}`,
  });
}

export interface PlanOptions {
  /** Archive again even when manifest.json exists (`archive --force`, the repair path); a fan-out in progress is still left alone. */
  force?: boolean | undefined;
  /** The planning run: a fan-out in progress by this same run (a redelivered planning message) is not skipped. */
  runId?: string | undefined;
}

async function planGraph(
  deps: ArchiveDeps,
  graphId: string,
  selector: RunManifest['graphs'][number]['backups'],
  signal?: AbortSignal,
  options: PlanOptions = {},
): Promise<RunPlan> {
  const plan: RunPlan = { targets: [], settled: [] };
  let wanted: readonly string[] | undefined;
  if (Array.isArray(selector)) {
    // Explicit ids: an archived one needs nothing from GES.
    const pending: string[] = [];
    for (const id of new Set(selector as readonly string[])) {
      const handled = await alreadyHandled(deps, graphId, { id }, signal, options);
      if (handled) plan.settled.push(handled);
      else pending.push(id);
    }
    if (pending.length === 0) return plan;
    wanted = pending;
  }

  let backups: GesBackup[];
  // Set when GES's list fell short of its backup_count: explicit ids it did list can still be
  // archived, anything else fails with LISTING_INCOMPLETE (never `latest`/`all` from a subset).
  let incomplete: ListingIncompleteError | undefined;
  try {
    backups = await deps.ges.listBackups(graphId, { signal });
  } catch (err) {
    if (err instanceof ListingIncompleteError && wanted !== undefined) {
      incomplete = err;
      backups = [...err.partial];
    } else {
      const ids = wanted ?? [selector as string];
      plan.settled.push(...ids.map((id) => failed(graphId, id, err)));
      return plan;
    }
  }

  let chosen: GesBackup[] = [];
  if (wanted !== undefined) {
    for (const id of wanted) {
      const backup = backups.find((b) => b.id === id);
      if (!backup) {
        plan.settled.push(failed(graphId, id, incomplete ?? new ArchiverError(ErrorCodes.BackupNotFound,
          `Backup ${id} is not among the backups of graph ${graphId}`)));
      } else if (backup.status !== 'success') {
        plan.settled.push(failed(graphId, id, new ArchiverError(ErrorCodes.BackupNotReady,
          `Backup ${id} of graph ${graphId} has status "${backup.status}"; only "success" backups are archived`)));
      } else {
        chosen.push(backup);
      }
    }
  } else {
    const successful = backups.filter((b) => b.status === 'success').sort(byNewest);
    if (selector === 'latest') {
      const newest = successful[0];
      if (!newest) {
        plan.settled.push(failed(graphId, 'latest', new ArchiverError(ErrorCodes.NoBackup,
          `Graph ${graphId} has no successful backup to archive`)));
        return plan;
      }
      chosen = [newest];
    } else {
      chosen = successful;
    }
  }

  for (const backup of chosen) {
    if (!isSafeId(backup.id)) {
      plan.settled.push(failed(graphId, backup.id, new ArchiverError(ErrorCodes.GesBadResponse,
        `GES returned a backup id that is not a safe key segment: ${JSON.stringify(backup.id.slice(0, 80))}`)));
      continue;
    }
    const handled = wanted === undefined ? await alreadyHandled(deps, graphId, backup, signal, options) : undefined;
    if (handled) plan.settled.push(handled);
    else plan.targets.push({ graphId, backupId: backup.id, backup });
  }
  // Only the age metric depends on it: a store failure here must not fail the graph's plan.
  const newest = await newestArchivedOf(deps, graphId, backups, plan, signal).catch((err: unknown) => {
    deps.logger.warn({ err: toArchiverError(err), graphId }, 'could not find the graph\'s newest archived backup; no age metric for it this run');
    return undefined;
  });
  if (newest) plan.newestArchived = [newest];
  return plan;
}

function backupTimeOf(b: GesBackup): number | undefined {
  return b.startTimestamp ?? b.endTimestamp;
}

/**
 * The graph's newest successful backup whose manifest.json exists: known from the plan's
 * ALREADY_ARCHIVED skips, else (a new backup is being archived) one HeadObject per older
 * backup, at most FRESHNESS_LOOKBACK. Never a listing of the archive.
 */
async function newestArchivedOf(deps: ArchiveDeps, graphId: string, backups: GesBackup[], plan: RunPlan, signal?: AbortSignal): Promise<NewestArchived | undefined> {
  const archived = new Set(plan.settled.filter((r) => r.reason?.code === ErrorCodes.AlreadyArchived).map((r) => r.backupId));
  const decided = new Set([...plan.settled.map((r) => r.backupId), ...plan.targets.map((t) => t.backupId)]);
  let lookups = 0;
  for (const b of backups.filter((x) => x.status === 'success' && isSafeId(x.id)).sort(byNewest)) {
    const at = backupTimeOf(b);
    if (at === undefined) continue;
    let isIn = archived.has(b.id);
    if (!isIn && !decided.has(b.id)) {
      if (lookups >= FRESHNESS_LOOKBACK) break;
      lookups += 1;
      isIn = await isArchived(deps, graphId, b.id, signal);
    }
    if (isIn) return { graphId, backupId: b.id, backupTime: new Date(at).toISOString() };
  }
  return undefined;
}

/**
 * Plans one manifest entry. A failure of the archive store itself (HeadObject) fails the
 * graph's entries, not the caller: every graph is reported, whatever the others do.
 */
export async function planManifestGraph(
  deps: ArchiveDeps,
  graph: RunManifest['graphs'][number],
  signal?: AbortSignal,
  options: PlanOptions = {},
): Promise<RunPlan> {
  try {
    return await planGraph(deps, graph.graphId, graph.backups, signal, options);
  } catch (err) {
    return { targets: [], settled: failedEntry(graph, err) };
  }
}

/** A manifest entry that failed as a whole: one failed line per explicit id, else one for its selector. */
export function failedEntry(graph: RunManifest['graphs'][number], err: unknown): BackupReport[] {
  const ids = Array.isArray(graph.backups) ? graph.backups as readonly string[] : [graph.backups as string];
  return ids.map((id) => failed(graph.graphId, id, err));
}

export async function planRun(deps: ArchiveDeps, manifest: RunManifest, signal?: AbortSignal, options: PlanOptions = {}): Promise<RunPlan> {
  const newestArchived: NewestArchived[] = [];
  const plan: RunPlan = { targets: [], settled: [], newestArchived };
  // Graphs are planned one after another: listing is cheap next to copying, and this keeps
  // the GES request rate gentle. (A scheduled run with many graphs plans them in parallel,
  // one planning message per graph: lib/fanout/plan-graph.ts.)
  for (const graph of manifest.graphs) {
    const part = await planManifestGraph(deps, graph, signal, options);
    plan.targets.push(...part.targets);
    plan.settled.push(...part.settled);
    newestArchived.push(...(part.newestArchived ?? []));
  }
  return plan;
}
