import pLimit from 'p-limit';
import * as z from 'zod';
import { abandonCheckpoint, fileStateKeys, refuseIfArchived, runFileStep } from '../archive/file-step.js';
import { BackupLinks } from '../links/backup-links.js';
import { manifestKey } from '../store/keys.js';
import { headObject } from '../store/s3-objects.js';
import { ArchiverError, ErrorCodes, failureOf, isAbortError, toArchiverError } from '../errors.js';
import { publishRunAlert, type AlertFailure } from '../alerts/alert.js';
import { finalizeBackup, type FinalizeOptions } from './finalize.js';
import { parseQueueMessage, serializeCopyMessage, type CopyMessage, type HashMessage, type PlanGraphMessage, type QueueMessage, type ShardMessage } from './messages.js';
import { planGraphStep } from './plan-graph.js';
import { planShardedCopy } from './shard-plan.js';
import { runShardStep } from './shard-worker.js';
import { sendMessage } from './sqs.js';
import { DEFAULT_MAX_RECEIVE_COUNT } from '../config.js';
import { DEADLINE_MARGINS } from '../deadline.js';
import { isSafeId } from '../ids.js';
import type { FanoutDeps } from './types.js';
import { changeVisibility, DEFAULT_RETRY_VISIBILITY, retryVisibilitySeconds, type RetryVisibility } from './visibility.js';
import type { RunReport } from '../archive/types.js';
import type { ArchivedFile } from '../store/archive-manifest.js';

/** One SQS record as Lambda delivers it (only what the worker reads). */
export interface CopyRecord {
  messageId: string;
  body: string;
  /** Lambda's `attributes`; `ApproximateReceiveCount` (a numeric string) is read from it. */
  attributes?: unknown;
  /** Lambda's `receiptHandle`: with it, a failed message comes back after a backoff (visibility.ts). */
  receiptHandle?: string;
}

export interface CopyBatchResult {
  batchItemFailures: { itemIdentifier: string }[];
}

export interface WorkerOptions {
  signal?: AbortSignal;
  /** Epoch ms when the invocation ends (Lambda: now + getRemainingTimeInMillis()). Without it copies never hand over. */
  deadline?: number | undefined;
  /** A copy hands over this long before `deadline`; default DEADLINE_MARGINS.handoverMs (uploads in flight, the checkpoint and the continuation must fit). */
  handoverMarginMs?: number;
  /** Records processed at once; default ARCHIVE_FILE_CONCURRENCY. */
  concurrency?: number;
  finalize?: FinalizeOptions;
  /** Delay of a message re-queued because the finalize lock was busy; default 30 s (SQS allows up to 900). */
  finalizeRetryDelaySeconds?: number;
  /** When a failed message is delivered again; default DEFAULT_RETRY_VISIBILITY (60 s doubling to 15 min). */
  retryVisibility?: RetryVisibility;
  /** Called with each graph's report after a `plan-graph` message planned it (metrics). */
  onGraphReport?: (report: RunReport) => void;
  /**
   * Called once per range-sharded file, when its hash pass writes the file's receipt (metrics;
   * a whole-file copy is counted by the instrumented copier, lib/metrics/copy-metrics.ts).
   */
  onFileArchived?: (file: ArchivedFile) => void;
}

/**
 * `requeued`: stored, but the finalize lock was busy: the message was sent again with a delay to finalize later.
 * `planned`: a `plan-graph` message planned its graph (archived inline, or fanned out).
 * `sharded`: a large file's shards were queued (lib/fanout/shard-plan.ts).
 */
export type RecordOutcome = 'copied' | 'handed-over' | 'duplicate' | 'requeued' | 'planned' | 'sharded' | 'failed';

/**
 * A copy stopped by the invocation's abort (the deadline came before the handover did) returns a
 * checkpoint; saving it and queueing the continuation get this long of their own, since the
 * invocation's signal has already fired (the margins: lib/deadline.ts).
 */
const HANDOVER_SAVE_MS = DEADLINE_MARGINS.handoverSaveMs;
/**
 * Limits of a continuation chain, so that a file that cannot finish ends in the dead-letter queue
 * with an alert instead of handing over forever: restarts from byte 0 over the whole chain (a
 * source that keeps changing), hops in a row that stored no new part, and hops in all (one per
 * part at the very least, and S3 allows 10,000 parts).
 */
export const CHAIN_LIMITS = Object.freeze({ restarts: 2, stalledHops: 3, hops: 10_000 });
const DEFAULT_FINALIZE_RETRY_DELAY_SECONDS = 30;
/** Time of its own for the ChangeMessageVisibility of a failed message (the invocation may be ending). */
const VISIBILITY_CHANGE_MS = 5_000;

const attributesSchema = z.looseObject({ ApproximateReceiveCount: z.coerce.number().int().positive().optional() });

function receiveCountOf(record: CopyRecord): number {
  const parsed = attributesSchema.safeParse(record.attributes ?? {});
  return parsed.success ? parsed.data.ApproximateReceiveCount ?? 1 : 1;
}


/** Best effort ids of a message we could not parse, for the alert. */
function idsOfPoison(body: string): { runId: string; graphId: string; backupId: string; file?: string } {
  const str = (v: unknown): string | undefined => (typeof v === 'string' && isSafeId(v) ? v : undefined);
  try {
    const o = JSON.parse(body) as Record<string, unknown>;
    const file = typeof o['fileName'] === 'string' ? (o['fileName']).slice(0, 200) : undefined;
    return { runId: str(o['runId']) ?? 'unknown', graphId: str(o['graphId']) ?? '(unknown)', backupId: str(o['backupId']) ?? '(unknown)', ...(file === undefined ? {} : { file }) };
  } catch {
    return { runId: 'unknown', graphId: '(unknown)', backupId: '(unknown)' };
  }
}

class Worker {
  private readonly alerts = new Map<string, AlertFailure[]>();
  private readonly maxReceiveCount: number;
  private readonly now: () => number;

  constructor(private readonly deps: FanoutDeps, private readonly options: WorkerOptions) {
    this.maxReceiveCount = deps.config.fanout?.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
    this.now = deps.now ?? Date.now;
  }

  async run(records: readonly CopyRecord[]): Promise<CopyBatchResult> {
    const limit = pLimit(this.options.concurrency ?? this.deps.config.concurrency.files);
    const outcomes = await Promise.all(records.map((r) => limit(() => this.record(r))));
    await Promise.all(records.map((r, i) => (outcomes[i] === 'failed' ? this.retryLater(r) : Promise.resolve())));
    await this.publishAlerts();
    return {
      batchItemFailures: records.filter((_, i) => outcomes[i] === 'failed').map((r) => ({ itemIdentifier: r.messageId })),
    };
  }

  /**
   * A failed message comes back after a backoff instead of the queue's full visibility timeout (on
   * its last delivery: to the dead-letter queue that much sooner). Best effort: if this fails, SQS
   * delivers it again after the visibility timeout. It gets its own few seconds: the invocation's
   * signal may have fired already.
   */
  private async retryLater(record: CopyRecord): Promise<void> {
    const queueUrl = this.deps.config.copyQueueUrl;
    if (record.receiptHandle === undefined || queueUrl === undefined || this.deps.sqs === undefined) return;
    const seconds = retryVisibilitySeconds(receiveCountOf(record), this.options.retryVisibility ?? DEFAULT_RETRY_VISIBILITY);
    try {
      await changeVisibility({ sqs: this.deps.sqs, retry: this.deps.retry }, queueUrl, record.receiptHandle, seconds, AbortSignal.timeout(VISIBILITY_CHANGE_MS));
      this.deps.logger.info({ messageId: record.messageId, retryInSeconds: seconds }, 'failed copy message comes back after a backoff');
    } catch (err) {
      this.deps.logger.warn({ err: toArchiverError(err), messageId: record.messageId }, 'could not shorten the failed message\'s visibility; SQS delivers it again after the queue\'s visibility timeout');
    }
  }

  private alert(runId: string, failure: AlertFailure): void {
    const list = this.alerts.get(runId) ?? [];
    list.push(failure);
    this.alerts.set(runId, list);
  }

  private async publishAlerts(): Promise<void> {
    for (const [runId, failures] of this.alerts) {
      await publishRunAlert({ sns: this.deps.sns, topicArn: this.deps.config.alertTopicArn, logger: this.deps.logger, retry: this.deps.retry }, { runId, failures }, { source: 'copyWorker' });
    }
  }

  private async record(record: CopyRecord): Promise<RecordOutcome> {
    const receiveCount = receiveCountOf(record);
    const last = receiveCount >= this.maxReceiveCount;
    const log = this.deps.logger.child({ messageId: record.messageId, receiveCount });
    let message: QueueMessage;
    try {
      message = parseQueueMessage(record.body);
    } catch (err) {
      const e = toArchiverError(err, ErrorCodes.MessageInvalid);
      log.error({ err: e, last }, 'copy message is invalid; it will end in the dead-letter queue');
      if (last) {
        const ids = idsOfPoison(record.body);
        this.alert(ids.runId, {
          graphId: ids.graphId, backupId: ids.backupId, ...(ids.file === undefined ? {} : { file: ids.file }),
          code: e.code, message: `Copy message ${record.messageId} is invalid and goes to the dead-letter queue: ${e.message}`,
        });
      }
      return 'failed';
    }
    if (message.type === 'plan-graph') return this.planGraph(message, log, last, receiveCount);
    const flog = log.child({ runId: message.runId, graphId: message.graphId, backupId: message.backupId, file: message.fileName });
    if (this.options.signal?.aborted) {
      flog.warn({}, 'invocation is ending; leaving the message for a redelivery');
      return 'failed';
    }
    try {
      const outcome = message.type === 'copy-file' ? await this.copy(message, flog, last) : await this.shardStep(message, flog, last);
      flog.info({ outcome }, 'copy message done');
      return outcome;
    } catch (err) {
      // Cut short by the invocation's deadline: DEADLINE_EXCEEDED (the signal's reason), not a cancellation.
      const e = failureOf(err, this.options.signal);
      const aborted = isAbortError(e) || this.options.signal?.aborted === true;
      flog.error({ err: e, last, retryable: e.retryable }, last ? 'file failed on its last delivery; it goes to the dead-letter queue' : 'file failed; SQS delivers the message again');
      if (last && !aborted) {
        this.alert(message.runId, {
          graphId: message.graphId, backupId: message.backupId, file: message.fileName, code: e.code,
          message: `${e.message} (delivery ${receiveCount} of ${this.maxReceiveCount}; the message goes to the dead-letter queue)`,
        });
      } else if (last && aborted) {
        this.alert(message.runId, {
          graphId: message.graphId, backupId: message.backupId, file: message.fileName, code: e.code,
          message: `Cut short by the invocation deadline on delivery ${receiveCount} of ${this.maxReceiveCount}; the message goes to the dead-letter queue`,
        });
      }
      return 'failed';
    }
  }

  /**
   * A `plan-graph` message (lib/fanout/plan-graph.ts): the graph's failed backups are alerted
   * with the run's other failures of this invocation. A failure of the step itself (the store)
   * comes back like a copy's, and alerts on its last delivery.
   */
  private async planGraph(message: PlanGraphMessage, parent: FanoutDeps['logger'], last: boolean, receiveCount: number): Promise<RecordOutcome> {
    const { runId, graphId } = message;
    const log = parent.child({ runId, graphId });
    if (this.options.signal?.aborted) {
      log.warn({}, 'invocation is ending; leaving the planning message for a redelivery');
      return 'failed';
    }
    try {
      const { outcome, report } = await planGraphStep(this.deps, message, {
        signal: this.options.signal, deadline: this.options.deadline, marginMs: this.options.handoverMarginMs ?? DEADLINE_MARGINS.handoverMs,
      });
      for (const b of report?.backups ?? []) {
        if (b.status === 'failed' && b.error) this.alert(runId, { graphId: b.graphId, backupId: b.backupId, code: b.error.code, message: b.error.message });
      }
      if (report) this.options.onGraphReport?.(report);
      return outcome;
    } catch (err) {
      const e = failureOf(err, this.options.signal);
      log.error({ err: e, last }, last ? 'planning failed on its last delivery; the message goes to the dead-letter queue' : 'planning failed; SQS delivers the message again');
      if (last) {
        this.alert(runId, {
          graphId, backupId: '(planning)', code: e.code,
          message: `Planning graph ${graphId} failed: ${e.message} (delivery ${receiveCount} of ${this.maxReceiveCount}; the message goes to the dead-letter queue)`,
        });
      }
      return 'failed';
    }
  }

  private async copy(message: CopyMessage, log: FanoutDeps['logger'], last: boolean): Promise<RecordOutcome> {
    const { deps } = this;
    const { signal } = this.options;
    const { bucket, prefix } = deps.config.archive;
    const { graphId, backupId, fileName } = message;
    const ref = { graphId, backupId, fileName };
    if (message.checkpointKey !== undefined && message.checkpointKey !== fileStateKeys(prefix, ref).checkpointKey) {
      throw new ArchiverError(ErrorCodes.MessageInvalid, 'Invalid copy message: checkpointKey does not belong to this file', { details: { fields: ['checkpointKey'] } });
    }

    // Duplicates and redeliveries: an archived backup, or a file with a receipt and its object,
    // changes nothing (a continuation's upload is aborted: its work is done).
    if (await headObject(deps, bucket, manifestKey(prefix, graphId, backupId), signal)) {
      log.info({}, 'backup already archived; nothing to do');
      await this.dropCheckpoint(message, log);
      return 'duplicate';
    }

    const handoverAt = this.options.deadline === undefined ? undefined : this.options.deadline - (this.options.handoverMarginMs ?? DEADLINE_MARGINS.handoverMs);
    const links = new BackupLinks(deps, { graphId, backupId }, undefined, signal);
    let sharded: RecordOutcome | undefined;
    const step = await runFileStep(deps, ref, {
      log,
      signal,
      resume: message.checkpointKey !== undefined,
      keepCheckpointOnFailure: true,
      request: {
        // The worker asks GES for its own link: messages never carry one.
        getLink: (s) => links.fresh(fileName, s),
        metadata: { 'ges-graph-id': graphId, 'ges-backup-id': backupId },
        // A late duplicate (another run, a redelivery) never replaces a file under a finished manifest.json.
        beforeCommit: refuseIfArchived(deps, { graphId, backupId }, fileName),
        ...(handoverAt === undefined ? {} : { handoverAt }),
      },
      beforeCopy: async () => {
        const overLimit = chainLimitError(message);
        if (overLimit) {
          // Nothing will continue this upload: on the last delivery, abort it before the DLQ takes the message.
          if (last) await this.dropCheckpoint(message, log);
          throw overLimit;
        }
        sharded = await planShardedCopy(deps, message, { signal, log });
        return sharded !== undefined;
      },
      // After the deadline's abort, saving the checkpoint gets a short budget of its own.
      saveSignal: () => (signal?.aborted ? AbortSignal.timeout(HANDOVER_SAVE_MS) : signal),
    });
    switch (step.status) {
      case 'diverted':
        return sharded ?? 'sharded';
      case 'reused':
        log.info({}, 'file already archived; nothing to copy');
        return this.finalize(message, 'duplicate', log);
      case 'archived-elsewhere':
        log.info({}, 'another run archived the backup while this file was being copied; nothing was replaced');
        return 'duplicate';
      case 'handover': {
        // The progress is saved; queue the continuation: if sending fails the message is
        // delivered again and continues from this checkpoint (or restarts).
        const ckKey = fileStateKeys(prefix, ref).checkpointKey;
        const next = continuation(message, ckKey, step.from, step.checkpoint.offset, step.stats.restarts);
        await this.send(next, undefined, signal?.aborted ? AbortSignal.timeout(HANDOVER_SAVE_MS) : signal);
        log.info({ offset: step.checkpoint.offset, totalBytes: step.checkpoint.totalBytes, hop: next.hop, stalledHops: next.stalledHops }, 'copy handed over to a continuation message');
        return 'handed-over';
      }
      case 'copied':
        log.info({ bytes: step.file.bytes, ...step.stats }, 'file archived');
        return this.finalize(message, 'copied', log);
    }
  }

  /** A shard of a range-sharded file, or its hash pass (lib/fanout/shard-worker.ts); finalize when the file is done. */
  private async shardStep(message: ShardMessage | HashMessage, log: FanoutDeps['logger'], last: boolean): Promise<RecordOutcome> {
    const { signal, deadline } = this.options;
    const step = await runShardStep(this.deps, message, {
      signal, log, last, now: this.now, overLimit: chainLimitError(message),
      handoverAt: deadline === undefined ? undefined : deadline - (this.options.handoverMarginMs ?? DEADLINE_MARGINS.handoverMs),
      saveSignal: () => (signal?.aborted ? AbortSignal.timeout(HANDOVER_SAVE_MS) : signal),
    });
    if (!step.finalize) return step.outcome;
    if (step.archived) this.options.onFileArchived?.(step.archived);
    const { runId, graphId, backupId, fileName } = message;
    return this.finalize({ v: 1, type: 'copy-file', runId, graphId, backupId, fileName }, step.outcome, log);
  }

  /** Sends a message to the copy queue (a continuation, or a finalize to try again later). */
  private async send(message: CopyMessage, delaySeconds?: number, signal = this.options.signal): Promise<void> {
    const queueUrl = this.deps.config.copyQueueUrl;
    if (queueUrl === undefined || this.deps.sqs === undefined) {
      throw new ArchiverError(ErrorCodes.ConfigInvalid, 'The copy worker needs COPY_QUEUE_URL to queue a follow-up message');
    }
    await sendMessage({ sqs: this.deps.sqs, retry: this.deps.retry }, queueUrl, serializeCopyMessage(message), signal, delaySeconds);
  }

  /**
   * A continuation whose work is done elsewhere: abort the upload its checkpoint names (nothing
   * else will: it is not the one that completed the file) and remove the checkpoint.
   */
  private async dropCheckpoint(message: CopyMessage, log: FanoutDeps['logger']): Promise<void> {
    if (message.checkpointKey === undefined) return;
    const { graphId, backupId, fileName } = message;
    await abandonCheckpoint(this.deps, { graphId, backupId, fileName }, log, this.options.signal);
  }

  /**
   * Writes the backup's manifest.json when this was its last file. When another finalizer holds
   * the lock ('busy', stores without conditional writes), the message goes back to the queue with
   * a delay: whoever comes back writes it, or takes over the lock if its holder died.
   */
  private async finalize(message: CopyMessage, done: 'copied' | 'duplicate', log: FanoutDeps['logger']): Promise<RecordOutcome> {
    const { graphId, backupId } = message;
    const result = await finalizeBackup(this.deps, graphId, backupId, { ...this.options.finalize, ...(this.options.signal ? { signal: this.options.signal } : {}) });
    log.debug({ outcome: result.outcome }, 'finalize');
    if (result.outcome !== 'busy') return done;
    // Only the file's finalize comes back: no checkpoint, and a fresh chain.
    const { checkpointKey: _done, hop: _hop, restarts: _restarts, stalledHops: _stalled, ...again } = message;
    const delaySeconds = this.options.finalizeRetryDelaySeconds ?? DEFAULT_FINALIZE_RETRY_DELAY_SECONDS;
    await this.send(again, delaySeconds);
    log.info({ delaySeconds }, 'another worker holds the finalize lock; the message comes back to finalize later');
    return 'requeued';
  }
}

/** The message that continues a handed-over copy: the checkpoint, and the chain's counters moved on. */
function continuation(message: CopyMessage, checkpointKey: string, fromOffset: number | undefined, toOffset: number, restarts: number): CopyMessage {
  const progressed = toOffset > (fromOffset ?? 0);
  return {
    ...message, checkpointKey,
    hop: (message.hop ?? 0) + 1,
    restarts: (message.restarts ?? 0) + restarts,
    stalledHops: progressed ? 0 : (message.stalledHops ?? 0) + 1,
  };
}

/** Why a continuation chain must end here (HANDOVER_LIMIT), or undefined while it may go on. */
function chainLimitError(message: Pick<CopyMessage, 'fileName' | 'hop' | 'restarts' | 'stalledHops'>): ArchiverError | undefined {
  const { hop = 0, restarts = 0, stalledHops = 0 } = message;
  const why = restarts > CHAIN_LIMITS.restarts ? `it started again from byte 0 ${restarts} times (the source keeps changing)`
    : stalledHops >= CHAIN_LIMITS.stalledHops ? `${stalledHops} invocations in a row stored no new part (the download is too slow or keeps failing)`
      : hop > CHAIN_LIMITS.hops ? `it was handed over ${hop} times`
        : undefined;
  if (why === undefined) return undefined;
  return new ArchiverError(ErrorCodes.HandoverLimit, `The copy of ${message.fileName} is given up: ${why}`, { details: { hop, restarts, stalledHops } });
}

/**
 * The copy worker (SQS, ReportBatchItemFailures). Each record is one file: already archived →
 * nothing changes; else a fresh link from GES and a copy, handed over to a continuation message
 * when the invocation's deadline nears; the worker that lands a backup's last file writes its
 * manifest.json (finalize.ts). Returns the ids of the records that failed, so SQS delivers
 * only those again; on their `maxReceiveCount`-th delivery they alert (one SNS message per run)
 * and then go to the dead-letter queue. Never throws for one record's failure.
 */
export async function handleCopyMessages(deps: FanoutDeps, records: readonly CopyRecord[], options: WorkerOptions = {}): Promise<CopyBatchResult> {
  return new Worker(deps, options).run(records);
}
