import { randomUUID } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { ArchiveManifest } from '../store/archive-manifest.js';
import { manifestKey } from '../store/keys.js';
import { headObject, putJson, s3Error } from '../store/s3-objects.js';
import { completeBackup, storedFiles } from '../archive/complete-backup.js';
import {
  conditionalConflict, conditionalWritesRefused, conditionSupported, learnConditionUnsupported, preconditionFailed,
} from '../copy/conditional-writes.js';
import { ArchiverError, ErrorCodes } from '../errors.js';
import { deleteKey, finalizeLockKey, getJson, readJob } from '../store/fanout-state.js';
import type { FanoutDeps } from './types.js';
import { sleep } from '../retry.js';

/**
 * Writes a fanned-out backup's manifest.json exactly once, when its last file has landed, even
 * when several workers finish their files at the same moment (each of them calls this).
 *
 * 1. Nothing to do when manifest.json exists, or when any file of the job has no receipt or
 *    its object is missing or has another length ('incomplete': a later worker finalizes).
 * 2. AWS S3: `PutObject` with `If-None-Match: *`. The store decides atomically; 412 means
 *    another worker wrote it first ('exists').
 * 3. Stores without conditional writes (any answer of `conditionalWritesRefused` in
 *    lib/copy/conditional-writes.ts: Swift's 501 NotImplemented, a 400 refusing the header;
 *    learned once per S3 client, shared with the copier) fall back to a lock
 *    object: check that no fresh lock exists,
 *    PUT `finalize.lock` with a unique token, wait `settleDelayMs`, read it back; only the
 *    owner of the token checks again that manifest.json does not exist and writes it.
 *    ASSUMPTION of the fallback: the store is read-after-write consistent and last-writer-wins,
 *    and every request to it completes well within `settleDelayMs` (1 s by default). Under
 *    that assumption, two contenders cannot both read back their own token. If it is broken
 *    (a request stalls for longer), the worst case is manifest.json written twice with the
 *    same files and digests (only `archivedAt` differs): never a manifest for an incomplete
 *    backup. A lock older than `lockTtlMs` (a crashed owner) is taken over.
 *    'busy' (another finalizer holds a fresh lock, or won it) is not done: the caller must
 *    come back (the copy worker re-queues its message with a delay), since the holder may die
 *    before writing; after `lockTtlMs` its lock is taken over.
 * 4. The writer removes everything under the backup's `_state/` afterwards: receipts, job.json,
 *    the lock, and checkpoints with the uploads they name (best effort: leftovers are harmless,
 *    and `ges-archiver cleanup` removes them).
 */
export type FinalizeOutcome = 'written' | 'exists' | 'incomplete' | 'busy';

export interface FinalizeOptions {
  signal?: AbortSignal;
  /** Lock fallback: wait between writing the lock and reading it back. Default 1000 ms. */
  settleDelayMs?: number;
  /** Lock fallback: a lock older than this belongs to a crashed finalizer. Default 5 min. */
  lockTtlMs?: number;
}

export interface FinalizeResult {
  outcome: FinalizeOutcome;
  manifestKey: string;
  manifest?: ArchiveManifest;
}

interface LockBody {
  token: string;
  at: number;
}

/** The job's files when every one is stored with its receipt's length; undefined when not yet. */
async function completedJob(deps: FanoutDeps, graphId: string, backupId: string, signal?: AbortSignal) {
  const { bucket, prefix } = deps.config.archive;
  const job = await readJob(deps, bucket, prefix, graphId, backupId, signal);
  if (!job) {
    deps.logger.debug({ graphId, backupId }, 'no readable job.json for the backup (finalized meanwhile, or not fanned out)');
    return undefined;
  }
  const files = await storedFiles(deps, { graphId, backupId }, job.files.map((f) => f.name), signal);
  return files === undefined ? undefined : { job, files };
}

/** 'written', 'exists' (412), or 'unsupported' (the store has no conditional writes). */
async function putIfAbsent(deps: FanoutDeps, key: string, manifest: ArchiveManifest, signal?: AbortSignal): Promise<'written' | 'exists' | 'unsupported'> {
  if (!conditionSupported(deps.s3, 'PutObject', 'If-None-Match')) return 'unsupported';
  const body = `${JSON.stringify(manifest, null, 2)}\n`;
  return deps.retry(async () => {
    try {
      await deps.s3.send(new PutObjectCommand({
        Bucket: deps.config.archive.bucket, Key: key, Body: body, ContentType: 'application/json', IfNoneMatch: '*',
      }), { abortSignal: signal });
      return 'written' as const;
    } catch (err) {
      if (preconditionFailed(err)) return 'exists' as const;
      if (conditionalWritesRefused(err)) {
        learnConditionUnsupported(deps.s3, 'PutObject', 'If-None-Match', deps.logger, err);
        return 'unsupported' as const;
      }
      if (conditionalConflict(err)) {
        // ConditionalRequestConflict: another conditional write of the key is in flight; asking
        // again yields 412 once it has landed.
        throw new ArchiverError(ErrorCodes.S3Failed, `S3 PutObject conflict for ${key}`, { cause: err, retryable: true, details: { status: 409, key } });
      }
      throw s3Error('PutObject', key, err);
    }
  }, { signal });
}

async function writeUnderLock(deps: FanoutDeps, graphId: string, backupId: string, mKey: string, manifest: ArchiveManifest, options: FinalizeOptions): Promise<'written' | 'exists' | 'busy'> {
  const { bucket, prefix } = deps.config.archive;
  const { signal } = options;
  const lockKey = finalizeLockKey(prefix, graphId, backupId);
  const now = deps.now ?? Date.now;
  const ttl = options.lockTtlMs ?? 5 * 60_000;
  const log = deps.logger.child({ graphId, backupId });

  const held = await getJson(deps, bucket, lockKey, signal) as Partial<LockBody> | null | undefined;
  if (held && typeof held.token === 'string' && typeof held.at === 'number' && now() - held.at < ttl) {
    log.debug({}, 'another worker holds the finalize lock');
    return 'busy';
  }
  const token = randomUUID();
  await putJson(deps, bucket, lockKey, { token, at: now() } satisfies LockBody, signal);
  await sleep(options.settleDelayMs ?? 1000, signal);
  const after = await getJson(deps, bucket, lockKey, signal) as Partial<LockBody> | null | undefined;
  if (!after || after.token !== token) {
    log.debug({}, 'lost the finalize lock to another worker');
    return 'busy';
  }
  if (await headObject(deps, bucket, mKey, signal)) {
    await deleteKey(deps, bucket, lockKey, signal).catch(() => undefined);
    return 'exists';
  }
  await putJson(deps, bucket, mKey, manifest, signal);
  return 'written';
}

/** See the module comment. Throws only on store failures (the caller reports the message for a retry). */
export async function finalizeBackup(deps: FanoutDeps, graphId: string, backupId: string, options: FinalizeOptions = {}): Promise<FinalizeResult> {
  const { bucket, prefix } = deps.config.archive;
  const { signal } = options;
  const mKey = manifestKey(prefix, graphId, backupId);
  const log = deps.logger.child({ graphId, backupId });
  if (await headObject(deps, bucket, mKey, signal)) return { outcome: 'exists', manifestKey: mKey };

  const complete = await completedJob(deps, graphId, backupId, signal);
  if (!complete) {
    // A finalizer that finished meanwhile removes job.json and the receipts: that is not "incomplete".
    const written = await headObject(deps, bucket, mKey, signal);
    return { outcome: written ? 'exists' : 'incomplete', manifestKey: mKey };
  }
  const { job, files } = complete;
  // Everything under the backup's _state/ goes once it is written: receipts, job.json, the lock,
  // and checkpoints (whose uploads, left by duplicates of handed-over copies, are aborted first).
  const done = await completeBackup(deps, {
    graphId, backupId, backupName: job.backupName, backupTimestamp: job.backupTimestamp, runId: job.runId,
  }, files, {
    log, signal,
    write: (key, manifest) => putIfAbsent(deps, key, manifest, signal).then((r) => (r === 'unsupported' ? writeUnderLock(deps, graphId, backupId, key, manifest, options) : r)),
  });
  return done.outcome === 'written' ? { outcome: 'written', manifestKey: mKey, manifest: done.manifest } : { outcome: done.outcome, manifestKey: mKey };
}
