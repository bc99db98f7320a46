import { headObject, openObjectFrom } from '../store/s3-objects.js';
import { createFileHasher, restoreFileHasher, type FileHasher } from '../copy/hasher.js';
import { ArchiverError, ErrorCodes, isAbortError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HashCheckpoint, ShardPlan } from './shards.js';
import type { FanoutDeps } from './types.js';

/** Reads that bring no byte, in a row, before the pass gives up (the message comes back later). */
const MAX_STALLED_READS = 4;

export type HashPassResult =
  | { status: 'done'; bytes: number; sha256: string }
  | { status: 'handover'; checkpoint: HashCheckpoint };

/**
 * The whole-file SHA-256 of a sharded file, over the completed object: one in-region read
 * (GetObject, `If-Match` its ETag so that only that object is hashed), streamed through a
 * hash-wasm SHA-256 whose midstate can be saved, so the pass hands over at `handoverAt` like a
 * copy and the next invocation continues from the byte it stopped at. A read that breaks off is
 * resumed from the current byte. Memory: one chunk of the response at a time.
 *
 * Why a read pass: the shards hash nothing (SHA-256 cannot be computed over parts out of order,
 * nor combined from per-part digests), and manifest.json must record the whole file's digest. The
 * read is S3 to Lambda in one region: several times faster than the download, and free of transfer cost.
 */
export async function hashStoredFile(
  deps: Pick<FanoutDeps, 's3' | 'retry'> & { config: Pick<FanoutDeps['config'], 'archive'> },
  plan: ShardPlan,
  from: HashCheckpoint | undefined,
  ctx: { signal?: AbortSignal | undefined; handoverAt?: number | undefined; log: Logger; now: () => number },
): Promise<HashPassResult> {
  const { bucket } = deps.config.archive;
  const { signal, handoverAt, log } = ctx;
  const head = await headObject(deps, bucket, plan.key, signal);
  if (head === undefined || head.bytes !== plan.totalBytes || head.etag === undefined) {
    throw new ArchiverError(ErrorCodes.VerifyFailed,
      `The completed object ${plan.key} is ${head === undefined ? 'missing' : `${head.bytes} bytes`}, expected ${plan.totalBytes}: the sharded file is copied again on the next run`,
      { details: { key: plan.key, stored: head?.bytes, expected: plan.totalBytes } });
  }
  let hasher: FileHasher;
  let offset = 0;
  if (from !== undefined && from.objectEtag === head.etag) {
    hasher = await restoreFileHasher(from.hashState);
    offset = from.offset;
  } else {
    if (from !== undefined) log.warn({}, 'the object changed since the hash pass began; hashing it from the start');
    hasher = await createFileHasher(true);
  }
  const etag = head.etag;
  const due = (): boolean => handoverAt !== undefined && ctx.now() >= handoverAt;
  let stalled = 0;
  while (offset < plan.totalBytes) {
    if (due()) break;
    const before = offset;
    try {
      const body = await openObjectFrom(deps, bucket, plan.key, { offset, etag }, signal);
      for await (const chunk of body) {
        hasher.update(chunk);
        offset += chunk.byteLength;
        if (offset > plan.totalBytes) break;
        if (due()) break;
      }
    } catch (err) {
      if (err instanceof ArchiverError || isAbortError(err) || signal?.aborted) throw err;
      stalled = offset > before ? 0 : stalled + 1;
      if (stalled >= MAX_STALLED_READS) {
        throw new ArchiverError(ErrorCodes.S3Failed, `Reading ${plan.key} back for its SHA-256 broke off ${stalled} times without progress`, { cause: err, retryable: true, details: { key: plan.key, offset } });
      }
      log.warn({ err, offset }, 'reading the object back broke off; resuming');
    }
  }
  if (offset < plan.totalBytes) {
    return { status: 'handover', checkpoint: { planId: plan.planId, objectEtag: etag, offset, hashState: hasher.save(), savedAt: new Date(ctx.now()).toISOString() } };
  }
  if (offset !== plan.totalBytes) {
    throw new ArchiverError(ErrorCodes.VerifyFailed, `Reading ${plan.key} back gave ${offset} bytes, expected ${plan.totalBytes}`, { details: { key: plan.key, read: offset, expected: plan.totalBytes } });
  }
  return { status: 'done', bytes: offset, sha256: hasher.digestHex() };
}
