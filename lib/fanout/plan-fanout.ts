import pLimit from 'p-limit';
import { validateBackupFiles } from '../links/backup-links.js';
import type { BackupReport, BackupTarget } from '../archive/types.js';
import { ArchiverError, ErrorCodes, errorSummary, toArchiverError } from '../errors.js';
import { serializeCopyMessage } from './messages.js';
import { sendMessages } from './sqs.js';
import { writeJob } from '../store/fanout-state.js';
import { DEFAULT_INLINE_THROUGHPUT_MIBPS } from '../config.js';
import { DEADLINE_MARGINS } from '../deadline.js';
import type { FanoutDeps } from './types.js';

export interface FanOutOptions {
  runId: string;
  signal?: AbortSignal;
  /** SendMessageBatch calls in flight per backup; default 4. */
  sendConcurrency?: number;
}

/**
 * Fans a run's target backups out to the copy queue: one message per file, naming the work
 * (graph, backup, file, expected size), never a link. Per backup: GES's file list (names and
 * size estimates only; its links are not used), the same up-front checks as an inline run
 * (unsafe names or hosts fail that backup, the others go on), then the job object the
 * finalizer reads, then the messages. Returns one report per target: `queued`, or `failed`.
 */
export async function fanOut(deps: FanoutDeps, targets: BackupTarget[], options: FanOutOptions): Promise<BackupReport[]> {
  const queueUrl = deps.config.copyQueueUrl;
  if (queueUrl === undefined || deps.sqs === undefined) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, 'Fan-out needs COPY_QUEUE_URL and an SQS client');
  }
  const sqs = deps.sqs;
  const { bucket, prefix } = deps.config.archive;
  const now = deps.now ?? Date.now;
  const limit = pLimit(deps.config.concurrency.backups);

  return Promise.all(targets.map((target) => limit(async (): Promise<BackupReport> => {
    const { graphId, backupId } = target;
    const started = now();
    const where = `graph ${graphId} backup ${backupId}`;
    const base = { graphId, backupId, ...(target.backup?.name === undefined ? {} : { backupName: target.backup.name }) };
    const log = deps.logger.child({ graphId, backupId, runId: options.runId });
    try {
      if (options.signal?.aborted) throw toArchiverError(options.signal.reason);
      const listing = await deps.ges.getBackupFiles(graphId, backupId, { signal: options.signal });
      validateBackupFiles(listing, deps.config.download.allowedHosts, where);
      const files = listing.files.map((f) => ({ name: f.name, ...(f.sizeKb === undefined ? {} : { expectedBytes: Math.round(f.sizeKb * 1024) }) }));
      const estimatedBytes = files.reduce((sum, f) => sum + (f.expectedBytes ?? 0), 0);
      await writeJob(deps, bucket, prefix, {
        version: 1,
        runId: options.runId,
        graphId,
        backupId,
        ...(target.backup?.name === undefined ? {} : { backupName: target.backup.name }),
        ...(target.backup?.startTimestamp === undefined ? {} : { backupTimestamp: target.backup.startTimestamp }),
        createdAt: new Date(now()).toISOString(),
        files,
      }, options.signal);
      const bodies = files.map((f) => serializeCopyMessage({
        v: 1, type: 'copy-file', runId: options.runId, graphId, backupId, fileName: f.name,
        ...(f.expectedBytes === undefined ? {} : { expectedBytes: f.expectedBytes }),
      }));
      const { failed } = await sendMessages({ sqs, retry: deps.retry }, queueUrl, bodies, {
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.sendConcurrency === undefined ? {} : { concurrency: options.sendConcurrency }),
      });
      if (failed.size > 0) {
        const first = [...failed.values()][0]!;
        // The messages that did go out still copy their files; a later run queues the rest again.
        throw new ArchiverError(first.code, `${failed.size} of ${files.length} copy messages could not be queued for ${where}: ${first.message}`, { cause: first });
      }
      log.info({ files: files.length, estimatedBytes }, 'backup fanned out');
      return { ...base, status: 'queued', files: files.length, bytes: estimatedBytes, durationMs: now() - started };
    } catch (err) {
      log.error({ err: toArchiverError(err) }, 'could not fan the backup out');
      return { ...base, status: 'failed', files: 0, bytes: 0, durationMs: now() - started, error: errorSummary(err) };
    }
  })));
}

const MiB = 1024 * 1024;

interface CopyEstimate {
  /** Bytes the plan will copy, by GES's size estimates; Infinity when any size is unknown. */
  totalBytes: number;
  /** The largest single file; Infinity when any size is unknown. */
  largestFileBytes: number;
}

/**
 * What the targets will copy, from the file lists' size estimates. A file whose size GES does
 * not give, or a backup whose file list cannot be read, counts as unbounded: the run must not
 * bet its invocation on it.
 */
async function estimateCopy(deps: FanoutDeps, targets: readonly BackupTarget[], signal?: AbortSignal): Promise<CopyEstimate> {
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

export interface CopyModeOptions {
  signal?: AbortSignal | undefined;
  /** Epoch ms when the invocation ends. Without it the copy is never short of time (always inline). */
  deadline?: number | undefined;
  /** Time an inline copy keeps free before the deadline; default DEADLINE_MARGINS.inlineKeepFreeMs. */
  marginMs?: number | undefined;
}

export interface CopyModeChoice {
  /** `inline`: copy in this invocation; `fan-out`: queue one copy message per file. */
  mode: 'inline' | 'fan-out';
  /** GES's estimate; Infinity when any size is unknown. */
  estimatedBytes: number;
  estimatedMs: number;
  budgetMs: number;
}

/**
 * Inline or fan-out, for the scheduled run and for each graph's planning message alike: inline
 * when the estimated copy time (GES size estimates ÷ INLINE_THROUGHPUT_MBPS, in MiB/s) fits
 * before the deadline minus the margin and no file needs more than half of that time (an inline
 * copy cannot hand over, so a file that would not finish must go to the copy workers); a file
 * of unknown size counts as unbounded. Without COPY_QUEUE_URL always inline (and a warning).
 */
export async function chooseCopyMode(deps: FanoutDeps, targets: readonly BackupTarget[], options: CopyModeOptions = {}): Promise<CopyModeChoice> {
  const now = deps.now ?? Date.now;
  const estimate = targets.length === 0 ? { totalBytes: 0, largestFileBytes: 0 } : await estimateCopy(deps, targets, options.signal);
  const throughput = (deps.config.fanout?.inlineThroughputMiBps ?? DEFAULT_INLINE_THROUGHPUT_MIBPS) * MiB;
  const estimatedMs = (estimate.totalBytes / throughput) * 1000;
  const budgetMs = options.deadline === undefined ? Number.POSITIVE_INFINITY : options.deadline - now() - (options.marginMs ?? DEADLINE_MARGINS.inlineKeepFreeMs);
  const fits = estimatedMs <= budgetMs && (estimate.largestFileBytes / throughput) * 1000 <= budgetMs / 2;
  let mode: CopyModeChoice['mode'] = targets.length === 0 || fits ? 'inline' : 'fan-out';
  if (mode === 'fan-out' && (deps.config.copyQueueUrl === undefined || deps.sqs === undefined)) {
    deps.logger.warn({ estimatedBytes: estimate.totalBytes, estimatedMs: Math.round(estimatedMs), budgetMs }, 'the copy does not fit its time budget but COPY_QUEUE_URL is not set; copying inline');
    mode = 'inline';
  }
  return { mode, estimatedBytes: estimate.totalBytes, estimatedMs, budgetMs };
}
