import * as z from 'zod';
import { fileKey } from '../store/keys.js';
import { deleteKeys, listObjects } from '../store/s3-objects.js';
import { isNoSuchUpload } from '../store/s3-errors.js';
import { abortMultipart } from '../copy/upload.js';
import { ArchiverError, ErrorCodes, toArchiverError } from '../errors.js';
import type { Logger } from '../log.js';
import { serializeCopyMessage, serializeShardMessage, type CopyMessage, type HashMessage, type ShardMessage } from './messages.js';
import { shardPlanKey, shardPlanSchema, shardStatePrefixes, type ShardPlan } from './shards.js';
import { sendMessage, sendMessages } from './sqs.js';
import { deleteKey, getJson } from '../store/fanout-state.js';
import type { FanoutDeps } from './types.js';

/** Reading, sending and removing a sharded file's state: shared by the planner, the shards and the hash pass. */

export interface FileRef {
  runId: string;
  graphId: string;
  backupId: string;
  fileName: string;
}

export async function readShardPlan(deps: FanoutDeps, f: FileRef, signal?: AbortSignal): Promise<ShardPlan | undefined> {
  const { bucket, prefix } = deps.config.archive;
  const parsed = shardPlanSchema.safeParse(await getJson(deps, bucket, shardPlanKey(prefix, f.graphId, f.backupId, f.fileName), signal));
  return parsed.success && parsed.data.fileName === f.fileName ? parsed.data : undefined;
}

function queueOf(deps: FanoutDeps): { sqs: NonNullable<FanoutDeps['sqs']>; queueUrl: string } {
  if (deps.config.copyQueueUrl === undefined || deps.sqs === undefined) {
    throw new ArchiverError(ErrorCodes.ConfigInvalid, 'A sharded copy needs COPY_QUEUE_URL and an SQS client to queue its messages');
  }
  return { sqs: deps.sqs, queueUrl: deps.config.copyQueueUrl };
}

/** Sends one message of a sharded file (a continuation, the file again) to the copy queue. */
export async function sendOne(deps: FanoutDeps, message: CopyMessage | ShardMessage | HashMessage, signal?: AbortSignal): Promise<void> {
  const { sqs, queueUrl } = queueOf(deps);
  const body = message.type === 'copy-file' ? serializeCopyMessage(message) : serializeShardMessage(message);
  await sendMessage({ sqs, retry: deps.retry }, queueUrl, body, signal);
}

/** One `copy-shard` message per shard in `shards`; throws when any could not be queued (the caller's message comes back and sends them again). */
export async function sendShards(deps: FanoutDeps, f: FileRef, plan: ShardPlan, shards: readonly number[], chain: Pick<CopyMessage, 'restarts'>, signal?: AbortSignal): Promise<void> {
  const { sqs, queueUrl } = queueOf(deps);
  const bodies = shards.map((shard) => serializeShardMessage({
    v: 1, type: 'copy-shard', runId: f.runId, graphId: f.graphId, backupId: f.backupId, fileName: f.fileName,
    planId: plan.planId, shard, shardCount: plan.shardCount, ...(chain.restarts ? { restarts: chain.restarts } : {}),
  }));
  const { failed } = await sendMessages({ sqs, retry: deps.retry }, queueUrl, bodies, signal ? { signal } : {});
  if (failed.size > 0) {
    const first = [...failed.values()][0]!;
    throw new ArchiverError(first.code, `${failed.size} of ${bodies.length} shard messages of ${f.fileName} could not be queued: ${first.message}`, { cause: first, retryable: true });
  }
}

/** What a plan or an upload record must name for its upload to be aborted. */
const namedUpload = z.looseObject({ key: z.string().min(1), uploadId: z.string().min(1) });

/** Aborts an upload; one already gone (completed, aborted by another shard at once) is fine. */
async function abortQuietly(deps: FanoutDeps, key: string, uploadId: string, log: Logger): Promise<void> {
  try {
    await abortMultipart({ s3: deps.s3, retry: deps.retry, log, bucket: deps.config.archive.bucket, key }, uploadId);
  } catch (err) {
    // Swift answers an abort racing another abort 404 NoSuchKey.
    if (isNoSuchUpload(err) || toArchiverError(err).details?.['status'] === 404) return;
    log.warn({ err: toArchiverError(err) }, 'could not abort a sharded file\'s upload; `ges-archiver cleanup` (or the bucket\'s lifecycle rule) removes it');
  }
}

/**
 * Removes every state object of one sharded file (plan, upload records, shard receipts and
 * checkpoints, the hash pass's checkpoint), after aborting every upload they name that is not
 * the file's completed one (a second planner's, left by a race).
 */
export async function clearShardState(deps: FanoutDeps, f: FileRef, log: Logger, signal?: AbortSignal): Promise<void> {
  const { bucket, prefix } = deps.config.archive;
  const [shardFolder, checkpointFolder] = shardStatePrefixes(prefix, f.graphId, f.backupId, f.fileName);
  const key = fileKey(prefix, f.graphId, f.backupId, f.fileName);
  for (const folder of [checkpointFolder, shardFolder]) {
    const keys: string[] = [];
    for await (const o of listObjects(deps, bucket, folder, signal)) keys.push(o.key);
    if (folder === checkpointFolder) {
      for (const k of keys) {
        const named = namedUpload.safeParse(await getJson(deps, bucket, k, signal));
        // Only an upload to this file's own key: the record is ours, but it is read back from the store.
        if (named.success && named.data.key === key) await abortQuietly(deps, key, named.data.uploadId, log);
      }
    }
    await deleteKeys(deps, bucket, keys, signal);
  }
}

/** Aborts the plan's upload and removes the file's shard state: nothing will finish this plan. */
export async function abandonPlan(deps: FanoutDeps, f: FileRef, plan: ShardPlan, log: Logger): Promise<void> {
  await abortQuietly(deps, plan.key, plan.uploadId, log);
  await clearShardState(deps, f, log).catch((err: unknown) => log.warn({ err: toArchiverError(err) }, 'could not remove the sharded file\'s state; `ges-archiver cleanup` removes it'));
}

/**
 * The source changed under the shards (412 to If-Match, another length), or their upload is gone:
 * the plan is dropped (its upload aborted) and the file is queued again as a `copy-file` message,
 * which plans it afresh. It counts as a restart of the file's chain (CHAIN_LIMITS.restarts): a
 * source that keeps changing ends with HANDOVER_LIMIT, an alert and the dead-letter queue.
 */
export async function restartShardedFile(deps: FanoutDeps, f: FileRef, plan: ShardPlan, restarts: number, why: string, log: Logger, signal?: AbortSignal): Promise<void> {
  // Another shard may have restarted the file already: then its new plan stands.
  const current = await readShardPlan(deps, f, signal);
  if (current?.planId !== plan.planId) {
    log.info({ why }, 'the sharded file was planned again already; nothing to restart');
    return;
  }
  log.warn({ why, restarts: restarts + 1 }, 'sharded copy starts again from a new plan');
  await abandonPlan(deps, f, plan, log);
  await sendOne(deps, {
    v: 1, type: 'copy-file', runId: f.runId, graphId: f.graphId, backupId: f.backupId, fileName: f.fileName,
    expectedBytes: plan.totalBytes, restarts: restarts + 1,
  }, signal);
}

/** Removes a state key, logging (not failing) when it cannot: leftover state is harmless and cleaned with the backup's. */
export async function dropKey(deps: FanoutDeps, key: string, log: Logger): Promise<void> {
  await deleteKey(deps, deps.config.archive.bucket, key).catch((err: unknown) => log.warn({ err: toArchiverError(err), key }, 'could not remove a state object; it is harmless'));
}
