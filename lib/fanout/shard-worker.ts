import pLimit from 'p-limit';
import { refuseIfArchived, storedArchivedFile, writeFileReceipt } from '../archive/file-step.js';
import { BackupLinks } from '../links/backup-links.js';
import { manifestKey } from '../store/keys.js';
import { headObject, listObjects, putJson } from '../store/s3-objects.js';
import { createFileHasher } from '../copy/hasher.js';
import { isNoSuchUpload } from '../store/s3-errors.js';
import type { CopyRangeResult } from '../copy/types.js';
import { UploadSession } from '../copy/upload.js';
import { ArchiverError, ErrorCodes, toArchiverError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ArchivedFile } from '../store/archive-manifest.js';
import { hashStoredFile } from './hash-pass.js';
import type { HashMessage, ShardMessage } from './messages.js';
import { abandonPlan, clearShardState, dropKey, readShardPlan, restartShardedFile, sendOne } from './shard-state.js';
import {
  hashCheckpointKey, hashCheckpointSchema, OWNER_SILENT_MS, partsOfReceipts, shardCheckpointKey, shardCheckpointSchema, shardRange, shardReceiptKey,
  shardReceiptSchema, shardReceiptsPrefix, type HashCheckpoint, type ShardPlan, type ShardReceipt,
} from './shards.js';
import { getJson } from '../store/fanout-state.js';
import type { FanoutDeps } from './types.js';

/**
 * The copy worker's side of a range-sharded file (shard-plan.ts plans it):
 *
 * - `copy-shard`: copies the shard's byte range into the plan's multipart upload with a link
 *   of its own (the copier's range mode: If-Match the plan's ETag, resume from the exact byte,
 *   link refresh), writes a shard receipt (its parts' numbers and ETags), and hands over at the
 *   deadline like a copy (a shard checkpoint and a continuation message). Part numbers are fixed
 *   by the range, so a redelivered or duplicate shard uploads the same parts again: nothing is
 *   lost, nothing doubled. A shard with a receipt copies nothing.
 * - The shard that finds every receipt completes the upload from the receipts' parts (commit.ts's
 *   conditional commit, after the "not archived meanwhile" check), then queues the hash pass.
 * - `hash-file`: the whole-file SHA-256 read pass (hash-pass.ts), handed over like a copy; at
 *   its end the normal file receipt is written and the caller runs finalize.
 *
 * A message of an older plan (the file was planned again) changes nothing. A changed source
 * restarts the whole file from a new plan (shard-state.ts restartShardedFile).
 */

export interface ShardStepContext {
  signal?: AbortSignal | undefined;
  /** Epoch ms: hand over from here on. */
  handoverAt?: number | undefined;
  log: Logger;
  now: () => number;
  /** The message's last delivery (an abandoned chain aborts its upload before the dead-letter queue). */
  last: boolean;
  /** Why the chain must end (HANDOVER_LIMIT), or undefined. */
  overLimit: ArchiverError | undefined;
  /** The signal for saving a checkpoint and queueing the continuation once the deadline's abort fired. */
  saveSignal(): AbortSignal | undefined;
}

export type ShardStepResult =
  /** The file's receipt is there: the caller runs finalize. `archived`: this step wrote it (the hash pass ended). */
  | { outcome: 'copied' | 'duplicate'; finalize: true; archived?: ArchivedFile }
  | { outcome: 'copied' | 'handed-over' | 'duplicate'; finalize: false };

const done = (outcome: 'copied' | 'handed-over' | 'duplicate'): ShardStepResult => ({ outcome, finalize: false });

export async function runShardStep(deps: FanoutDeps, message: ShardMessage | HashMessage, ctx: ShardStepContext): Promise<ShardStepResult> {
  const { bucket, prefix } = deps.config.archive;
  const { graphId, backupId, fileName } = message;
  const { signal, log } = ctx;
  const ownCheckpoint = message.type === 'copy-shard' ? shardCheckpointKey(prefix, graphId, backupId, fileName, message.shard) : hashCheckpointKey(prefix, graphId, backupId, fileName);
  if (message.checkpointKey !== undefined && message.checkpointKey !== ownCheckpoint) {
    throw new ArchiverError(ErrorCodes.MessageInvalid, `Invalid ${message.type} message: checkpointKey does not belong to this ${message.type === 'copy-shard' ? 'shard' : 'file'}`, { details: { fields: ['checkpointKey'] } });
  }
  // A continuation whose work is done elsewhere: its checkpoint (written after the file's state was cleared) goes.
  const dropOwnCheckpoint = async (): Promise<void> => {
    if (message.checkpointKey !== undefined) await dropKey(deps, ownCheckpoint, log);
  };
  if (await headObject(deps, bucket, manifestKey(prefix, graphId, backupId), signal)) {
    log.info({}, 'backup already archived; nothing to do');
    await dropOwnCheckpoint();
    return done('duplicate');
  }
  if (await storedArchivedFile(deps, { graphId, backupId, fileName }, signal)) {
    log.info({}, 'file already archived; nothing to do');
    await dropOwnCheckpoint();
    return { outcome: 'duplicate', finalize: true };
  }
  const plan = await readShardPlan(deps, message, signal);
  if (plan?.planId !== message.planId) {
    log.info({ planId: message.planId, currentPlanId: plan?.planId }, 'message of a plan that is no longer current; nothing to do');
    if (plan === undefined) await dropOwnCheckpoint();
    return done('duplicate');
  }
  if (ctx.overLimit) {
    // Nothing will finish this plan: on the last delivery, abort its upload before the DLQ takes the message.
    if (ctx.last) await abandonPlan(deps, message, plan, log);
    throw ctx.overLimit;
  }
  try {
    if (message.type === 'hash-file') {
      const cp = hashCheckpointSchema.safeParse(await getJson(deps, bucket, hashCheckpointKey(prefix, graphId, backupId, fileName), signal));
      return await hashStep(deps, message, plan, cp.success && cp.data.planId === plan.planId ? cp.data : undefined, ctx);
    }
    return await copyShard(deps, message, plan, ctx);
  } catch (err) {
    // Failed on its last delivery (not cut short by the deadline): nothing will finish this plan,
    // so its upload is aborted before the message goes to the dead-letter queue, as a failed copy's is.
    if (ctx.last && signal?.aborted !== true) await abandonPlan(deps, message, plan, log);
    throw err;
  }
}

async function copyShard(deps: FanoutDeps, message: ShardMessage, plan: ShardPlan, ctx: ShardStepContext): Promise<ShardStepResult> {
  const { bucket, prefix } = deps.config.archive;
  const { graphId, backupId, fileName, shard } = message;
  const { signal, log } = ctx;
  if (message.shardCount !== plan.shardCount) {
    throw new ArchiverError(ErrorCodes.MessageInvalid, `Invalid copy-shard message: shardCount ${message.shardCount} is not the plan's ${plan.shardCount}`, { details: { fields: ['shardCount'] } });
  }
  const rKey = shardReceiptKey(prefix, graphId, backupId, fileName, plan.planId, shard);
  const ckKey = shardCheckpointKey(prefix, graphId, backupId, fileName, shard);
  const receipt = shardReceiptSchema.safeParse(await getJson(deps, bucket, rKey, signal));
  if (receipt.success && receipt.data.planId === plan.planId) {
    log.info({ shard }, 'shard already copied; checking whether the file can be completed');
    return completeIfLast(deps, message, plan, ctx);
  }

  const range = shardRange(plan, shard);
  const saved = message.checkpointKey === ckKey ? shardCheckpointSchema.safeParse(await getJson(deps, bucket, ckKey, signal)) : undefined;
  const from = saved?.success && saved.data.planId === plan.planId && saved.data.shard === shard
    && saved.data.offset >= range.start && saved.data.offset <= range.end ? saved.data : undefined;
  if (ctx.handoverAt !== undefined && ctx.now() >= ctx.handoverAt) {
    throw new ArchiverError(ErrorCodes.DeadlineExceeded, 'Too little time left in this invocation to start the shard', { retryable: true });
  }
  const links = new BackupLinks(deps, { graphId, backupId }, undefined, signal);
  let result: CopyRangeResult;
  try {
    result = await deps.copier.copyRange({
      bucket, key: plan.key, fileName, getLink: (s) => links.fresh(fileName, s),
      uploadId: plan.uploadId, partSize: plan.partSize, totalBytes: plan.totalBytes, sourceEtag: plan.sourceEtag,
      start: from?.offset ?? range.start, end: range.end, parts: from?.parts ?? [],
      ...(signal ? { signal } : {}), ...(ctx.handoverAt === undefined ? {} : { handoverAt: ctx.handoverAt }),
    });
  } catch (err) {
    const e = toArchiverError(err);
    if (e.code === ErrorCodes.SourceChanged) {
      await restartShardedFile(deps, message, plan, message.restarts ?? 0, e.message, log, signal);
      return done('handed-over');
    }
    if (!isNoSuchUpload(err)) throw err;
    return uploadGone(deps, message, plan, ctx);
  }

  if (result.status === 'handover') {
    const saveSignal = ctx.saveSignal();
    await putJson(deps, bucket, ckKey, { planId: plan.planId, shard, offset: result.offset, parts: result.parts }, saveSignal);
    const progressed = result.offset > (from?.offset ?? range.start);
    const next: ShardMessage = {
      ...message, checkpointKey: ckKey, hop: (message.hop ?? 0) + 1, stalledHops: progressed ? 0 : (message.stalledHops ?? 0) + 1,
    };
    await sendOne(deps, next, saveSignal);
    log.info({ shard, offset: result.offset, end: range.end, hop: next.hop }, 'shard handed over to a continuation message');
    return done('handed-over');
  }

  const shardReceipt: ShardReceipt = { planId: plan.planId, shard, bytes: range.end - range.start, parts: result.parts, completedAt: new Date(ctx.now()).toISOString() };
  await putJson(deps, bucket, rKey, shardReceipt, signal);
  if (message.checkpointKey !== undefined) await dropKey(deps, ckKey, log);
  log.info({ shard, bytes: shardReceipt.bytes, parts: result.parts.length }, 'shard copied');
  return completeIfLast(deps, message, plan, ctx);
}

/**
 * The upload is gone under a shard: completed by the shard that finished last (then nothing is
 * left to do here), or aborted (a restart, the bucket's lifecycle rule): then the file is planned again.
 */
async function uploadGone(deps: FanoutDeps, message: ShardMessage, plan: ShardPlan, ctx: ShardStepContext): Promise<ShardStepResult> {
  const current = await readShardPlan(deps, message, ctx.signal);
  const object = await headObject(deps, deps.config.archive.bucket, plan.key, ctx.signal);
  if (current?.planId !== plan.planId || object?.bytes === plan.totalBytes) {
    ctx.log.info({ shard: message.shard }, 'the upload was completed or replanned meanwhile; nothing to do');
    return done('duplicate');
  }
  await restartShardedFile(deps, message, plan, message.restarts ?? 0, 'the shards\' multipart upload is gone', ctx.log, ctx.signal);
  return done('handed-over');
}

/** When every shard has its receipt: complete the upload from the receipts' parts, then hash the file. */
async function completeIfLast(deps: FanoutDeps, message: ShardMessage, plan: ShardPlan, ctx: ShardStepContext): Promise<ShardStepResult> {
  const { bucket, prefix } = deps.config.archive;
  const { graphId, backupId, fileName } = message;
  const { signal, log } = ctx;
  const folder = shardReceiptsPrefix(prefix, graphId, backupId, fileName, plan.planId);
  const keys: string[] = [];
  for await (const o of listObjects(deps, bucket, folder, signal)) keys.push(o.key);
  if (keys.length < plan.shardCount) return done('copied');

  const limit = pLimit(8);
  const receipts = (await Promise.all(keys.map((k) => limit(async () => shardReceiptSchema.safeParse(await getJson(deps, bucket, k, signal))))))
    .flatMap((r) => (r.success ? [r.data] : []));
  const { parts, missing } = partsOfReceipts(plan, receipts);
  if (missing.length > 0) {
    // Unreadable or damaged receipts: those shards are copied again (same part numbers).
    log.warn({ missing }, 'some shard receipts do not match the plan; copying those shards again');
    for (const shard of missing) await dropKey(deps, shardReceiptKey(prefix, graphId, backupId, fileName, plan.planId, shard), log);
    for (const shard of missing) await sendOne(deps, { v: 1, type: 'copy-shard', runId: message.runId, graphId, backupId, fileName, planId: plan.planId, shard, shardCount: plan.shardCount }, signal);
    return done('copied');
  }

  const beforeCommit = refuseIfArchived(deps, { graphId, backupId }, fileName);
  const commitSignal = signal ?? new AbortController().signal;
  const session = new UploadSession({ s3: deps.s3, retry: deps.retry, log, bucket, key: plan.key, metadata: undefined, concurrency: 1, signal: commitSignal });
  session.restoreParts(parts);
  try {
    await beforeCommit(undefined, commitSignal);
    await session.complete(plan.uploadId, () => beforeCommit(undefined, commitSignal));
  } catch (err) {
    if (toArchiverError(err).code === ErrorCodes.AlreadyArchived) {
      log.info({}, 'another run archived the backup meanwhile; the sharded copy is not stored');
      await abandonPlan(deps, message, plan, log);
      return done('duplicate');
    }
    // Completed already: by another shard at the same moment, or by this shard's earlier
    // delivery, which may have died before it queued the hash pass.
    const object = isNoSuchUpload(err) ? await headObject(deps, bucket, plan.key, signal) : undefined;
    if (object?.bytes !== plan.totalBytes) throw err;
    return startHashPass(deps, message, plan, ctx);
  }
  await session.verify(plan.totalBytes);
  log.info({ parts: parts.length, totalBytes: plan.totalBytes }, 'sharded upload completed; queueing the hash pass');
  return startHashPass(deps, message, plan, ctx);
}

/**
 * Hands the whole-file SHA-256 pass to a `hash-file` message of its own: its one owner, which
 * SQS delivers again after a failure, so neither a failed pass nor a duplicate shard is the
 * last word. The checkpoint (offset 0) is saved first: a completed upload whose pass has a
 * worker on it (a checkpoint saved within OWNER_SILENT_MS) is left alone; an older one was
 * abandoned (its queueing died) and is taken over from where it stands.
 */
async function startHashPass(deps: FanoutDeps, message: ShardMessage, plan: ShardPlan, ctx: ShardStepContext): Promise<ShardStepResult> {
  const { bucket, prefix } = deps.config.archive;
  const { runId, graphId, backupId, fileName } = message;
  const { signal, log } = ctx;
  const ckKey = hashCheckpointKey(prefix, graphId, backupId, fileName);
  const saved = hashCheckpointSchema.safeParse(await getJson(deps, bucket, ckKey, signal));
  const existing = saved.success && saved.data.planId === plan.planId ? saved.data : undefined;
  // (Also after a Complete of our own: two shards finishing at once may both complete on some stores.)
  if (existing && ctx.now() - Date.parse(existing.savedAt) < OWNER_SILENT_MS) {
    log.info({ shard: message.shard }, 'the upload is completed and its hash pass under way; nothing to do');
    return done('duplicate');
  }
  let checkpoint: HashCheckpoint;
  if (existing) {
    checkpoint = { ...existing, savedAt: new Date(ctx.now()).toISOString() };
  } else {
    const head = await headObject(deps, bucket, plan.key, signal);
    if (head?.etag === undefined) throw new ArchiverError(ErrorCodes.VerifyFailed, `The completed object ${plan.key} is missing or has no ETag`, { retryable: true, details: { key: plan.key } });
    checkpoint = { planId: plan.planId, objectEtag: head.etag, offset: 0, hashState: (await createFileHasher(true)).save(), savedAt: new Date(ctx.now()).toISOString() };
  }
  await putJson(deps, bucket, ckKey, checkpoint, signal);
  try {
    await sendOne(deps, { v: 1, type: 'hash-file', runId, graphId, backupId, fileName, planId: plan.planId, checkpointKey: ckKey, ...(message.restarts ? { restarts: message.restarts } : {}) }, signal);
  } catch (err) {
    // This message comes back and queues it again: the checkpoint must not say "under way" meanwhile.
    if (!existing) await dropKey(deps, ckKey, log);
    throw err;
  }
  log.info({ offset: checkpoint.offset, takeover: existing !== undefined }, 'hash pass queued');
  return done('copied');
}

/** The hash pass (or its continuation), then the file's receipt; hands over with a hash checkpoint at the deadline. */
async function hashStep(deps: FanoutDeps, message: HashMessage, plan: ShardPlan, from: HashCheckpoint | undefined, ctx: ShardStepContext): Promise<ShardStepResult> {
  const { bucket, prefix } = deps.config.archive;
  const { graphId, backupId, fileName } = message;
  const { log } = ctx;
  const result = await hashStoredFile(deps, plan, from, ctx);
  if (result.status === 'handover') {
    const saveSignal = ctx.saveSignal();
    const ckKey = hashCheckpointKey(prefix, graphId, backupId, fileName);
    await putJson(deps, bucket, ckKey, result.checkpoint, saveSignal);
    const progressed = result.checkpoint.offset > (from?.offset ?? 0);
    const next: HashMessage = {
      ...message, checkpointKey: ckKey, hop: (message.hop ?? 0) + 1, stalledHops: progressed ? 0 : (message.stalledHops ?? 0) + 1,
    };
    await sendOne(deps, next, saveSignal);
    log.info({ offset: result.checkpoint.offset, totalBytes: plan.totalBytes, hop: next.hop }, 'hash pass handed over to a continuation message');
    return done('handed-over');
  }
  const archived: ArchivedFile = { name: fileName, key: plan.key, bytes: result.bytes, sha256: result.sha256 };
  // A second pass over the same object (its message delivered again while the first still ran)
  // finds the first one's receipt: the file is archived once, and counted once.
  if (await storedArchivedFile(deps, { graphId, backupId, fileName }, ctx.signal)) {
    log.info({}, 'another hash pass of this file wrote its receipt meanwhile; nothing to add');
    return { outcome: 'duplicate', finalize: true };
  }
  await writeFileReceipt({ ...deps, now: ctx.now }, { graphId, backupId, fileName }, archived, ctx.signal);
  await clearShardState(deps, message, log, ctx.signal).catch((err: unknown) => log.warn({ err: toArchiverError(err) }, 'could not remove the sharded file\'s state; it is removed with the backup\'s'));
  log.info({ bytes: result.bytes, shards: plan.shardCount }, 'sharded file archived');
  return { outcome: 'copied', finalize: true, archived };
}
