import { deleteKeys, listObjects } from '../archive/s3-objects.js';
import { isNoSuchUpload } from '../copy/s3-errors.js';
import { abortMultipart } from '../copy/upload.js';
import { ArchiverError, ErrorCodes, toArchiverError } from '../errors.js';
import type { Logger } from '../log.js';
import { serializeCopyMessage, serializeShardMessage, type CopyMessage, type HashMessage, type ShardMessage } from './messages.js';
import { shardPlanKey, shardPlanSchema, shardStatePrefixes, type ShardPlan } from './shards.js';
import { sendMessage, sendMessages } from './sqs.js';
import { deleteKey, getJson } from './state.js';
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

/** Removes every state object of one sharded file (plan, shard receipts and checkpoints, the hash pass's checkpoint). */
export async function clearShardState(deps: FanoutDeps, f: FileRef, signal?: AbortSignal): Promise<void> {
  const { bucket, prefix } = deps.config.archive;
  for (const folder of shardStatePrefixes(prefix, f.graphId, f.backupId, f.fileName)) {
    const keys: string[] = [];
    for await (const o of listObjects(deps, bucket, folder, signal)) keys.push(o.key);
    await deleteKeys(deps, bucket, keys, signal);
  }
}

/** Aborts the plan's upload and removes the file's shard state: nothing will finish this plan. */
export async function abandonPlan(deps: FanoutDeps, f: FileRef, plan: ShardPlan, log: Logger): Promise<void> {
  const { bucket } = deps.config.archive;
  try {
    await abortMultipart({ s3: deps.s3, retry: deps.retry, log, bucket, key: plan.key }, plan.uploadId);
  } catch (err) {
    // Another shard aborting the same upload at once: Swift answers the second abort 404 NoSuchKey.
    const gone = isNoSuchUpload(err) || toArchiverError(err).details?.['status'] === 404;
    if (!gone) {
      log.warn({ err: toArchiverError(err) }, 'could not abort the sharded file\'s upload; `ges-archiver cleanup` (or the bucket\'s lifecycle rule) removes it');
    }
  }
  await clearShardState(deps, f).catch((err: unknown) => log.warn({ err: toArchiverError(err) }, 'could not remove the sharded file\'s state; `ges-archiver cleanup` removes it'));
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
