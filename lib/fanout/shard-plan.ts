import { randomUUID } from 'node:crypto';
import { BackupLinks } from '../links/backup-links.js';
import { fileKey } from '../store/keys.js';
import { putJson } from '../store/s3-objects.js';
import { discardBody, isStrongEtag, openDownload } from '../copy/download.js';
import { assertAllowedLink } from '../copy/guard.js';
import { DEFAULT_PART_SIZE } from '../copy/part-size.js';
import { abortMultipart, UploadSession } from '../copy/upload.js';
import type { Logger } from '../log.js';
import type { CopyMessage } from './messages.js';
import { abandonPlan, readShardPlan, sendShards } from './shard-state.js';
import { OWNER_SILENT_MS, shardLayout, shardPlanKey, shardReceiptKey, shardReceiptsPrefix, shardUploadKey, type ShardPlan } from './shards.js';
import { deleteKey } from '../store/fanout-state.js';
import { listObjects } from '../store/s3-objects.js';
import type { FanoutDeps } from './types.js';

/**
 * Shards a `copy-file` message's file when it is larger than ARCHIVE_SHARD_MB (by GES's size
 * estimate): learns the exact length and the strong ETag with a one-byte range request, creates
 * the multipart upload once (with the metadata a whole-file copy gives it), writes the plan and
 * queues one `copy-shard` message per shard. Undefined: not sharded, copy the file whole (small
 * enough, a continuation, no queue, or a source that does not answer ranges with a strong ETag:
 * shards pinned to anything weaker could mix two versions of the file).
 *
 * Idempotent: a plan younger than OWNER_SILENT_MS is left to its planner (several shards
 * that saw the source change each queue the file again: one plans it). An older plan is one
 * whose planner died after writing it (its message came back after the queue's visibility
 * timeout): the shards without a receipt are queued again (a shard message twice is harmless,
 * see shard-worker.ts). When queueing the shards fails, the plan is dropped and the message
 * comes back to plan again. Two planners at once: each names its upload in a record of its own,
 * then writes the plan and reads it back; the one whose plan was replaced aborts its upload and
 * queues nothing. (Both may read their own plan back: then the first one's shards find its plan
 * replaced and change nothing, and its upload, named by its record, is aborted when the file's
 * state is cleared.)
 */
export async function planShardedCopy(deps: FanoutDeps, message: CopyMessage, ctx: { signal?: AbortSignal | undefined; log: Logger }): Promise<'sharded' | 'duplicate' | undefined> {
  const shardBytes = deps.config.fanout?.shardBytes ?? 0;
  if (message.checkpointKey !== undefined || shardBytes <= 0 || message.expectedBytes === undefined || message.expectedBytes <= shardBytes) return undefined;
  if (deps.config.copyQueueUrl === undefined || deps.sqs === undefined) return undefined;
  const { signal, log } = ctx;
  const { bucket, prefix } = deps.config.archive;
  const { graphId, backupId, fileName } = message;

  const existing = await readShardPlan(deps, message, signal);
  if (existing && (deps.now ?? Date.now)() - Date.parse(existing.createdAt) < OWNER_SILENT_MS) {
    // Its planner is sending (or has sent) the shards: another shard's restart of the same plan, or a duplicate.
    log.info({ planId: existing.planId }, 'sharded copy planned moments ago; its shards are queued by its planner');
    return 'duplicate';
  }
  if (existing) {
    const done = new Set<string>();
    for await (const o of listObjects(deps, bucket, shardReceiptsPrefix(prefix, graphId, backupId, fileName, existing.planId), signal)) done.add(o.key);
    const pending = Array.from({ length: existing.shardCount }, (_, i) => i).filter((i) => !done.has(shardReceiptKey(prefix, graphId, backupId, fileName, existing.planId, i)));
    await sendShards(deps, message, existing, pending, message, signal);
    log.info({ planId: existing.planId, shards: pending.length }, 'sharded copy already planned; queued its unfinished shards again');
    return 'sharded';
  }

  const source = await probeSource(deps, message, signal ?? new AbortController().signal);
  if (source === undefined) {
    log.info({}, 'the source does not answer ranges with a strong ETag; copying the file whole');
    return undefined;
  }
  const layout = shardLayout(source.totalBytes, deps.config.partSizeBytes ?? DEFAULT_PART_SIZE, shardBytes);
  if (layout === undefined) return undefined;

  const key = fileKey(prefix, graphId, backupId, fileName);
  const target = { s3: deps.s3, retry: deps.retry, log, bucket, key };
  const session = new UploadSession({
    ...target, metadata: { 'ges-graph-id': graphId, 'ges-backup-id': backupId }, concurrency: 1, signal: signal ?? new AbortController().signal,
  });
  const uploadId = await session.createMultipart();
  const plan: ShardPlan = {
    version: 1, planId: randomUUID(), fileName, key, uploadId, ...layout, sourceEtag: source.etag, createdAt: new Date((deps.now ?? Date.now)()).toISOString(),
  };
  const uploadKey = shardUploadKey(prefix, graphId, backupId, fileName, plan.planId);
  const withdraw = async (): Promise<void> => {
    await abortMultipart(target, uploadId);
    await deleteKey(deps, bucket, uploadKey).catch((err: unknown) => log.warn({ err }, 'could not remove an upload record; it is harmless'));
  };
  try {
    await putJson(deps, bucket, uploadKey, { key, uploadId, planId: plan.planId }, signal);
    await putJson(deps, bucket, shardPlanKey(prefix, graphId, backupId, fileName), plan, signal);
    const stored = await readShardPlan(deps, message, signal);
    if (stored?.planId !== plan.planId) {
      log.info({ planId: stored?.planId }, 'another worker planned this file at the same time; its plan stands');
      await withdraw();
      return 'duplicate';
    }
  } catch (err) {
    await withdraw();
    throw err;
  }
  try {
    await sendShards(deps, message, plan, Array.from({ length: plan.shardCount }, (_, i) => i), message, signal);
  } catch (err) {
    // The message comes back and plans again; shards that did go out name this plan and change nothing.
    await abandonPlan(deps, message, plan, log);
    throw err;
  }
  log.info({ planId: plan.planId, totalBytes: plan.totalBytes, partSize: plan.partSize, shardBytes: plan.shardBytes, shards: plan.shardCount }, 'file sharded');
  return 'sharded';
}

/** The source's exact length and strong ETag, from a one-byte range request; undefined when it gives no 206 with a strong ETag. */
async function probeSource(deps: FanoutDeps, f: CopyMessage, signal: AbortSignal): Promise<{ totalBytes: number; etag: string } | undefined> {
  const link = await new BackupLinks(deps, f, undefined, signal).fresh(f.fileName, signal);
  assertAllowedLink(link.url, deps.config.download.allowedHosts);
  const opened = await deps.retry(() => openDownload(link.url, { offset: 0, end: 1, signal }), { signal });
  if (opened.kind !== 'body') return undefined;
  discardBody(opened.body);
  return opened.status === 206 && isStrongEtag(opened.etag) ? { totalBytes: opened.total, etag: opened.etag } : undefined;
}
