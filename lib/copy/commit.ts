import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { ArchiverError, ErrorCodes } from '../errors.js';
import {
  conditionalConflict, conditionalWritesRefused, conditionSupported, learnConditionUnsupported, preconditionFailed, type WriteOperation,
} from './conditional-writes.js';
import { describeAwsFailure } from '../should-retry.js';
import { isClientError, isNotFound, toS3Error } from '../store/s3-errors.js';
import type { UploadTarget } from './upload.js';

/**
 * Commits a file's object at its key (CompleteMultipartUpload, or the single PutObject) without
 * replacing an object that a finished manifest.json vouches for, nor one another run stores at
 * the same moment:
 *
 * 1. The write carries `If-None-Match: *` where the store honours it: a free key is taken atomically.
 * 2. 412, the key holds an object: `recheck` (the copy's beforeCommit) runs again; it throws
 *    ALREADY_ARCHIVED when a finished manifest.json vouches for the backup. When it lets the copy
 *    go on, the object is a leftover of an unfinished run (or the object an `archive --force`
 *    repairs): its ETag is read and the write sent again with `If-Match: <that ETag>`, so that
 *    only that object is replaced (logged at info).
 * 3. A second 412 (the object changed meanwhile) or a 409 (a concurrent conditional write): the
 *    copy fails with a retryable S3_FAILED; nothing was replaced.
 *
 * Where the store does not honour a header (see conditional-writes.ts) the write goes without
 * it: the copy's check right before the commit, or the recheck that just ran, still guards.
 */

export type WriteCondition = { IfNoneMatch: '*' } | { IfMatch: string } | Record<string, never>;

export interface CommitTarget extends UploadTarget {
  signal: AbortSignal;
}

export interface CommitWrite {
  operation: WriteOperation;
  /** Sends the write once, with `condition`; resolves to the VersionId the store gave the new object. */
  send(condition: WriteCondition, abortSignal: AbortSignal): Promise<string | undefined>;
  /** Awaited once the key is found to hold an object, before that object is replaced: throwing refuses the write. */
  recheck(): Promise<void>;
}

/**
 * Kept up to date while committing: true when an attempt failed without a definite answer (not
 * a 4xx), so the object may have been stored, and no 412 or 409 came after it (those say the
 * key holds an object this write did not put there).
 */
export interface CommitMark {
  mayHaveLanded: boolean;
}

type Answer =
  | { kind: 'stored'; versionId: string | undefined }
  /** 412 (or, to If-Match, NoSuchKey): the condition did not hold. */
  | { kind: 'failed'; err: unknown }
  /** The store refused the header (conditionalWritesRefused). */
  | { kind: 'refused'; err: unknown };

/** Commits the object (see the module comment); resolves to the VersionId of the object this write created. */
export async function commitObject(t: CommitTarget, write: CommitWrite, mark: CommitMark): Promise<string | undefined> {
  if (conditionSupported(t.s3, write.operation, 'If-None-Match')) {
    const answer = await attempt(t, write, { IfNoneMatch: '*' }, mark);
    if (answer.kind === 'stored') return answer.versionId;
    if (answer.kind === 'failed') return replaceLeftover(t, write, mark);
    learnConditionUnsupported(t.s3, write.operation, 'If-None-Match', t.log, answer.err);
  }
  return unconditional(t, write, mark);
}

async function replaceLeftover(t: CommitTarget, write: CommitWrite, mark: CommitMark): Promise<string | undefined> {
  await write.recheck();
  const etag = await currentEtag(t);
  if (etag === undefined) throw changedMeanwhile(t, write.operation, 'it was removed');
  t.log.info({ oldEtag: etag }, 'replacing an object at the key that no manifest.json vouches for (left by an unfinished run, or repaired by archive --force)');
  if (conditionSupported(t.s3, write.operation, 'If-Match')) {
    const answer = await attempt(t, write, { IfMatch: etag }, mark);
    if (answer.kind === 'stored') return answer.versionId;
    if (answer.kind === 'failed') {
      if (await currentEtag(t) !== etag) throw changedMeanwhile(t, write.operation, 'it changed');
      // 412 to the ETag the key still holds: the store does not evaluate If-Match on this
      // write (Swift's s3api on a Complete), and the recheck has just run.
    }
    learnConditionUnsupported(t.s3, write.operation, 'If-Match', t.log, answer.err);
  }
  return unconditional(t, write, mark);
}

async function unconditional(t: CommitTarget, write: CommitWrite, mark: CommitMark): Promise<string | undefined> {
  const answer = await attempt(t, write, {}, mark);
  // Without a condition the store cannot answer "failed" or "refused": those come back as errors.
  return answer.kind === 'stored' ? answer.versionId : undefined;
}

/** One write with `condition`, retried under the retry policy while its failure is retryable. */
async function attempt(t: CommitTarget, write: CommitWrite, condition: WriteCondition, mark: CommitMark): Promise<Answer> {
  const conditional = Object.keys(condition).length > 0;
  const answer = await t.retry(async (): Promise<Answer | { kind: 'conflict'; err: unknown }> => {
    try {
      return { kind: 'stored', versionId: await write.send(condition, t.signal) };
    } catch (err) {
      if (conditional && (preconditionFailed(err) || ('IfMatch' in condition && (err as { name?: string }).name === 'NoSuchKey'))) {
        mark.mayHaveLanded = false;
        return { kind: 'failed', err };
      }
      if (conditional && conditionalWritesRefused(err)) return { kind: 'refused', err };
      if (conditional && conditionalConflict(err)) {
        mark.mayHaveLanded = false;
        // Not retried here: for a Complete the upload is gone, and the run retries the file.
        return { kind: 'conflict', err };
      }
      if (!isClientError(err)) mark.mayHaveLanded = true;
      throw toS3Error(err, write.operation, { key: t.key });
    }
  }, { signal: t.signal });
  if (answer.kind === 'conflict') {
    const { remoteCode, status } = describeAwsFailure(answer.err);
    throw new ArchiverError(ErrorCodes.S3Failed,
      `S3 ${write.operation} failed for ${t.key}: ${remoteCode} (HTTP ${status ?? '?'}): another write of the same key was in flight, so this copy was not stored; run the archive again`,
      { retryable: true, cause: answer.err, details: { operation: write.operation, remoteCode, status, key: t.key } });
  }
  return answer;
}

/** The ETag of the object at the key; undefined when there is none. */
async function currentEtag(t: CommitTarget): Promise<string | undefined> {
  return t.retry(async () => {
    try {
      const head = await t.s3.send(new HeadObjectCommand({ Bucket: t.bucket, Key: t.key }), { abortSignal: t.signal });
      return head.ETag;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw toS3Error(err, 'HeadObject', { key: t.key });
    }
  }, { signal: t.signal });
}

function changedMeanwhile(t: CommitTarget, operation: WriteOperation, what: string): ArchiverError {
  return new ArchiverError(ErrorCodes.S3Failed,
    `S3 ${operation} for ${t.key} not done: the object found at the key was to be replaced, but ${what} meanwhile (another run is writing the same file); nothing was replaced. Run the archive again once the other run has finished`,
    { retryable: true, details: { operation, key: t.key } });
}
