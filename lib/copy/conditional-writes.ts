import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../log.js';

/**
 * Conditional writes (`If-None-Match: *`, `If-Match: <etag>` on PutObject and
 * CompleteMultipartUpload) and what a store makes of them; shared by the copier (file keys) and
 * the fan-out's finalize (manifest.json).
 *
 * AWS S3 honours both headers on both operations: 412 PreconditionFailed when the condition
 * fails (a multipart upload survives it, Complete may be sent again), 409
 * ConditionalRequestConflict when another conditional write of the key raced this one (a
 * multipart upload is gone after it). Other stores honour less. OpenStack Swift's s3api answers
 * 501 NotImplemented to either header on PutObject, honours `If-None-Match: *` on
 * CompleteMultipartUpload, and answers 412 to every `If-Match` there, even one naming the
 * object's own ETag. What a client's store does not honour is learned once per process, per
 * operation and header, and logged once at info; the writes then go without that header.
 */
export type WriteOperation = 'PutObject' | 'CompleteMultipartUpload';
export type ConditionHeader = 'If-None-Match' | 'If-Match';

const unsupported = new WeakMap<S3Client, Set<string>>();

interface SdkError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

/** False once `s3`'s store was found not to honour `header` on `operation`. */
export function conditionSupported(s3: S3Client, operation: WriteOperation, header: ConditionHeader): boolean {
  return unsupported.get(s3)?.has(`${operation} ${header}`) !== true;
}

/** Remembers that `s3`'s store does not honour `header` on `operation`; logs it the first time. */
export function learnConditionUnsupported(s3: S3Client, operation: WriteOperation, header: ConditionHeader, log: Logger, answer: unknown): void {
  const known = unsupported.get(s3) ?? new Set<string>();
  unsupported.set(s3, known);
  const fact = `${operation} ${header}`;
  if (known.has(fact)) return;
  known.add(fact);
  const e = (answer ?? {}) as SdkError;
  log.info({ operation, header, status: e.$metadata?.httpStatusCode, code: e.name },
    'the store does not honour this conditional write header; writing without it from now on (a copy still checks manifest.json right before it commits; finalize takes a lock object)');
}

/**
 * The answers that mean "this store does not do conditional writes" to a write carrying
 * `If-None-Match` or `If-Match`: `NotImplemented` ("A header you provided implies functionality
 * that is not implemented", 501: what AWS S3 answered before it had conditional writes, and what
 * OpenStack Swift's s3api answers to a PutObject; some stores send it with 400), and a 400
 * `InvalidArgument` or `InvalidRequest` from stores that refuse the header as an argument they do
 * not take. A 400 for another reason makes the same write without the header fail the same way,
 * so that error still surfaces. (A store that ignores the header cannot be told apart: it
 * answers 200.)
 */
export function conditionalWritesRefused(err: unknown): boolean {
  const e = (err ?? {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  if (status === 501 || e.name === 'NotImplemented') return true;
  return status === 400 && (e.name === 'InvalidArgument' || e.name === 'InvalidRequest');
}

/** 412: the condition did not hold (the key holds an object, or not the one named). Swift spells it InvalidRequest on a Complete. */
export function preconditionFailed(err: unknown): boolean {
  const e = (err ?? {}) as SdkError;
  return e.$metadata?.httpStatusCode === 412 || e.name === 'PreconditionFailed';
}

/** 409 ConditionalRequestConflict: another conditional write of the key was in flight. */
export function conditionalConflict(err: unknown): boolean {
  const e = (err ?? {}) as SdkError;
  return e.$metadata?.httpStatusCode === 409 || e.name === 'ConditionalRequestConflict';
}
