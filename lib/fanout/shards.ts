import * as z from 'zod';
import { stateBackupPrefix } from '../store/receipts.js';
import { filePartSize, partCount } from '../copy/part-size.js';

/**
 * Range-sharded copies: the arithmetic, the state keys and the state documents.
 *
 * A file larger than ARCHIVE_SHARD_MB is cut into shards of whole parts. The part size is the
 * whole file's (filePartSize over its length, as a single copy of it would use), so the
 * 10,000-part limit holds for the file; a shard is `partsPerShard` consecutive parts, and its parts keep their numbers in the file.
 *
 * State, under the backup's `_state/` folder (removed with it once manifest.json is written):
 * - `checkpoints/shards/{fileName}/plan.json`: the plan (upload id, sizes, the source's ETag), and
 *   `checkpoints/shards/{fileName}/uploads/{planId}.json`, each upload a planner created (written
 *   before its plan: two planners racing leave no unnamed upload). Under `checkpoints/` because
 *   they name multipart uploads: `ges-archiver cleanup` aborts the uploads that checkpoints name
 *   (lib/archive/backup-state.ts), and docs/contract.md promises an upload kept is always named
 *   by a checkpoint. Clearing a file's shard state aborts them too.
 * - `shards/{fileName}/receipts/{planId}/{shard}.json`: a finished shard's parts (numbers and ETags).
 * - `shards/{fileName}/checkpoints/{shard}.json`: a handed-over shard's stored prefix.
 * - `shards/{fileName}/hash.json`: the whole-file SHA-256 pass's progress (a hash-wasm midstate).
 */

/**
 * A plan or a hash-pass checkpoint saved less than this long ago has a worker on it (its planner
 * queueing the shards; the hash pass, which saves at least once per invocation of at most 15
 * minutes): others leave it alone. Older, its worker is taken for dead and another takes over.
 * A takeover while the owner is merely slow (a message waiting out a backoff) does the work
 * twice, with the same result.
 */
export const OWNER_SILENT_MS = 20 * 60_000;

export interface ShardLayout {
  totalBytes: number;
  partSize: number;
  /** Bytes per shard: a whole number of parts (the last shard may be shorter). */
  shardBytes: number;
  shardCount: number;
}

/**
 * How a file of `totalBytes` is sharded with shards of about `wantedShardBytes` (rounded down
 * to whole parts, at least one part); undefined when it would be one shard (copy it whole).
 */
export function shardLayout(totalBytes: number, minPartSize: number, wantedShardBytes: number): ShardLayout | undefined {
  if (wantedShardBytes <= 0 || totalBytes <= wantedShardBytes) return undefined;
  const partSize = filePartSize(totalBytes, minPartSize);
  const shardBytes = Math.max(1, Math.floor(wantedShardBytes / partSize)) * partSize;
  const shardCount = Math.ceil(totalBytes / shardBytes);
  if (shardCount < 2) return undefined;
  return { totalBytes, partSize, shardBytes, shardCount };
}

export interface ShardRange {
  /** First byte (a part boundary). */
  start: number;
  /** End (exclusive): a part boundary, or the file's end. */
  end: number;
  /** Part numbers in the whole file, first and last (inclusive). */
  firstPart: number;
  lastPart: number;
}

/** The byte range and part numbers of shard `index` (0-based). */
export function shardRange(layout: ShardLayout, index: number): ShardRange {
  if (!Number.isInteger(index) || index < 0 || index >= layout.shardCount) {
    throw new RangeError(`shard ${index} is not one of the ${layout.shardCount} shards`);
  }
  const start = index * layout.shardBytes;
  const end = Math.min(start + layout.shardBytes, layout.totalBytes);
  return { start, end, firstPart: start / layout.partSize + 1, lastPart: partCount(end, layout.partSize) };
}

const shardFolder = (prefix: string, graphId: string, backupId: string, fileName: string): string =>
  `${stateBackupPrefix(prefix, graphId, backupId)}shards/${fileName}/`;

const shardCheckpointsFolder = (prefix: string, graphId: string, backupId: string, fileName: string): string =>
  `${stateBackupPrefix(prefix, graphId, backupId)}checkpoints/shards/${fileName}/`;

export function shardPlanKey(prefix: string, graphId: string, backupId: string, fileName: string): string {
  return `${shardCheckpointsFolder(prefix, graphId, backupId, fileName)}plan.json`;
}

/** Names every upload a planner created (before its plan is written), so that none is left unnamed if two planners race. */
export function shardUploadKey(prefix: string, graphId: string, backupId: string, fileName: string, planId: string): string {
  return `${shardCheckpointsFolder(prefix, graphId, backupId, fileName)}uploads/${planId}.json`;
}

/** Per plan: a receipt an old plan's shard writes late (after a restart) is never counted for the new one. */
export function shardReceiptsPrefix(prefix: string, graphId: string, backupId: string, fileName: string, planId: string): string {
  return `${shardFolder(prefix, graphId, backupId, fileName)}receipts/${planId}/`;
}

export function shardReceiptKey(prefix: string, graphId: string, backupId: string, fileName: string, planId: string, shard: number): string {
  return `${shardReceiptsPrefix(prefix, graphId, backupId, fileName, planId)}${shard}.json`;
}

export function shardCheckpointKey(prefix: string, graphId: string, backupId: string, fileName: string, shard: number): string {
  return `${shardFolder(prefix, graphId, backupId, fileName)}checkpoints/${shard}.json`;
}

export function hashCheckpointKey(prefix: string, graphId: string, backupId: string, fileName: string): string {
  return `${shardFolder(prefix, graphId, backupId, fileName)}hash.json`;
}

/** Every state key of one sharded file lives under one of these two prefixes. */
export function shardStatePrefixes(prefix: string, graphId: string, backupId: string, fileName: string): [string, string] {
  return [shardFolder(prefix, graphId, backupId, fileName), shardCheckpointsFolder(prefix, graphId, backupId, fileName)];
}

const whole = z.number().int().nonnegative();
const partSchema = z.object({ partNumber: z.number().int().min(1).max(10_000), etag: z.string().min(1) });
export type StoredPart = z.infer<typeof partSchema>;

/** The plan: written once by whoever shards the file; every shard message names its `planId`. */
export const shardPlanSchema = z.object({
  version: z.literal(1),
  planId: z.string().min(1),
  fileName: z.string().min(1),
  /** The file's final key and the multipart upload every shard writes into. */
  key: z.string().min(1),
  uploadId: z.string().min(1),
  totalBytes: z.number().int().positive(),
  partSize: z.number().int().positive(),
  shardBytes: z.number().int().positive(),
  shardCount: z.number().int().min(2),
  /** The source's strong ETag when the file was planned: every shard's ranges are pinned to it (If-Match). */
  sourceEtag: z.string().min(1),
  createdAt: z.string(),
});
export type ShardPlan = z.infer<typeof shardPlanSchema>;

/** What a shard's receipt and its checkpoint both hold: the plan, the shard, its stored parts. */
const shardParts = { planId: z.string().min(1), shard: whole, parts: z.array(partSchema) };

export const shardReceiptSchema = z.object({
  ...shardParts,
  bytes: whole,
  completedAt: z.string(),
});
export type ShardReceipt = z.infer<typeof shardReceiptSchema>;

export const shardCheckpointSchema = z.object({
  ...shardParts,
  /** Bytes of the file before which the shard's parts are stored (a part boundary). */
  offset: whole,
});
export type ShardCheckpoint = z.infer<typeof shardCheckpointSchema>;

export const hashCheckpointSchema = z.object({
  planId: z.string().min(1),
  /** The completed object's ETag: the read pass reads only that object (If-Match). */
  objectEtag: z.string().min(1),
  offset: whole,
  /** Base64 hash-wasm SHA-256 midstate after `offset` bytes. */
  hashState: z.string().min(1),
  /** When it was saved: a younger one has a worker on it (OWNER_SILENT_MS). */
  savedAt: z.string(),
});
export type HashCheckpoint = z.infer<typeof hashCheckpointSchema>;

/**
 * The parts the receipts name, checked against the plan: every shard once, each with exactly
 * its own part numbers. Undefined when they do not add up (a receipt of another plan, or a
 * damaged one): the caller copies those shards again rather than complete a wrong upload.
 */
export function partsOfReceipts(plan: ShardPlan, receipts: readonly ShardReceipt[]): { parts: StoredPart[]; missing: number[] } {
  const layout: ShardLayout = plan;
  const byShard = new Map(receipts.filter((r) => r.planId === plan.planId).map((r) => [r.shard, r]));
  const parts: StoredPart[] = [];
  const missing: number[] = [];
  for (let shard = 0; shard < plan.shardCount; shard++) {
    const receipt = byShard.get(shard);
    const range = shardRange(layout, shard);
    const numbers = receipt?.parts.map((p) => p.partNumber) ?? [];
    const expected = Array.from({ length: range.lastPart - range.firstPart + 1 }, (_, i) => range.firstPart + i);
    if (!receipt || numbers.length !== expected.length || numbers.some((n, i) => n !== expected[i])) {
      missing.push(shard);
      continue;
    }
    parts.push(...receipt.parts);
  }
  return { parts, missing };
}
