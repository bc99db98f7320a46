import pLimit from 'p-limit';
import { validateBackupFiles } from '../archive/archive-backup.js';
import type { BackupReport, BackupTarget } from '../archive/types.js';
import { ArchiverError, ErrorCodes, errorSummary, toArchiverError } from '../errors.js';
import { serializeCopyMessage } from './messages.js';
import { sendMessages } from './sqs.js';
import { writeJob } from './state.js';
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
