import {
  AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client,
} from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { isNotFound, toS3Error } from './s3-errors.js';
import { ArchiverError, ErrorCodes, isAbortError } from '../errors.js';
import type { RetryPolicy } from '../retry.js';

/** Small S3 helpers for the orchestrator: existence checks and whole-object JSON writes. */

/** The object is not there (a missing bucket is not "no object": it is an error); lib/copy's. */
export { isNotFound };

/** An S3 failure on `key` as S3_FAILED naming the operation, the store's code and the HTTP status (see toS3Error). */
export function s3Error(action: string, key: string, err: unknown): Error {
  return toS3Error(err, action, { key });
}

export interface HeadResult {
  bytes: number;
  metadata: Record<string, string>;
  etag: string | undefined;
}

export async function headObject(
  deps: { s3: S3Client; retry: RetryPolicy },
  bucket: string,
  key: string,
  signal?: AbortSignal,
): Promise<HeadResult | undefined> {
  return deps.retry(async () => {
    try {
      const res = await deps.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      return { bytes: res.ContentLength ?? 0, metadata: res.Metadata ?? {}, etag: res.ETag };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw s3Error('HeadObject', key, err);
    }
  }, { signal });
}

export interface ListedObject {
  key: string;
  bytes: number;
  lastModified: Date | undefined;
}

/** Every object under `listPrefix`, page by page (1,000 keys at a time in memory), each page with the retry policy. */
export async function* listObjects(
  deps: { s3: S3Client; retry: RetryPolicy },
  bucket: string,
  listPrefix: string,
  signal?: AbortSignal,
): AsyncGenerator<ListedObject> {
  let token: string | undefined;
  do {
    const continuation = token;
    const page = await deps.retry(async () => {
      try {
        return await deps.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: listPrefix, ContinuationToken: continuation }), { abortSignal: signal });
      } catch (err) {
        throw s3Error('ListObjectsV2', `s3://${bucket}/${listPrefix}`, err);
      }
    }, { signal });
    for (const o of page.Contents ?? []) {
      if (o.Key !== undefined) yield { key: o.Key, bytes: o.Size ?? 0, lastModified: o.LastModified };
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** Deletes one object; a missing one is fine. */
export async function deleteKey(deps: { s3: S3Client; retry: RetryPolicy }, bucket: string, key: string, signal?: AbortSignal): Promise<void> {
  await deps.retry(async () => {
    try {
      await deps.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    } catch (err) {
      if (isNotFound(err)) return;
      throw s3Error('DeleteObject', key, err);
    }
  }, { signal });
}

/**
 * Deletes objects, eight at a time, one DeleteObject each (DeleteObjects needs a Content-MD5
 * that S3-compatible stores treat differently). Throws the first failure once all are tried.
 */
export async function deleteKeys(deps: { s3: S3Client; retry: RetryPolicy }, bucket: string, keys: readonly string[], signal?: AbortSignal): Promise<void> {
  const limit = pLimit(8);
  const results = await Promise.allSettled(keys.map((key) => limit(() => deleteKey(deps, bucket, key, signal))));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Aborts a multipart upload. False when it was already gone (completed, aborted, expired). */
export async function abortUpload(deps: { s3: S3Client; retry: RetryPolicy }, bucket: string, key: string, uploadId: string, signal?: AbortSignal): Promise<boolean> {
  return deps.retry(async () => {
    try {
      await deps.s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), { abortSignal: signal });
      return true;
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchUpload') return false;
      throw s3Error('AbortMultipartUpload', key, err);
    }
  }, { signal });
}

/** PutObject of a small JSON document: one request, so the object appears whole or not at all. */
export async function putJson(
  deps: { s3: S3Client; retry: RetryPolicy },
  bucket: string,
  key: string,
  document: unknown,
  signal?: AbortSignal,
): Promise<void> {
  const body = `${JSON.stringify(document, null, 2)}\n`;
  await deps.retry(async () => {
    try {
      await deps.s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' }),
        { abortSignal: signal },
      );
    } catch (err) {
      throw s3Error('PutObject', key, err);
    }
  }, { signal });
}

/**
 * A small JSON object: its parsed value, `undefined` when there is no such object, `null` when
 * it is there but not JSON (the caller's schema check refuses it).
 */
export async function getJson(
  deps: { s3: S3Client; retry: RetryPolicy },
  bucket: string,
  key: string,
  signal?: AbortSignal,
): Promise<unknown> {
  return deps.retry(async () => {
    let text: string;
    try {
      const res = await deps.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      text = (await res.Body?.transformToString('utf8')) ?? '';
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw s3Error('GetObject', key, err);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return null;
    }
  }, { signal });
}

/** The body's chunks; a stream that breaks off becomes a retryable S3_FAILED. */
async function* guardedBody(body: AsyncIterable<Uint8Array>, key: string): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of body) yield chunk;
  } catch (err) {
    if (isAbortError(err)) throw err;
    throw new ArchiverError(ErrorCodes.S3Failed, `S3 GetObject body broke off for ${key}`, { cause: err, retryable: true, details: { key } });
  }
}

/**
 * Streams one object's body through `consume` (never buffering it here), with the retry
 * policy around the whole read: a body that breaks off is read again from the start.
 * Returns undefined when the object does not exist. Errors `consume` throws pass through
 * unchanged; when it stops early, the body stream is destroyed.
 */
export async function readObjectStream<T>(
  deps: { s3: S3Client; retry: RetryPolicy },
  bucket: string,
  key: string,
  consume: (body: AsyncIterable<Uint8Array>) => Promise<T>,
  signal?: AbortSignal,
): Promise<T | undefined> {
  return deps.retry(async () => {
    let body: AsyncIterable<Uint8Array>;
    try {
      const res = await deps.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      body = (res.Body as AsyncIterable<Uint8Array> | undefined) ?? (async function* empty() {})();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw s3Error('GetObject', key, err);
    }
    return consume(guardedBody(body, key));
  }, { signal });
}

/**
 * The body of `key` from byte `offset` on, only while the object's ETag is `etag` (If-Match: a
 * changed object is a 412, S3_FAILED). The retry policy covers opening it; a body that breaks
 * off is the caller's to open again from the byte it reached.
 */
export async function openObjectFrom(
  deps: { s3: S3Client; retry: RetryPolicy },
  bucket: string,
  key: string,
  range: { offset: number; etag: string },
  signal?: AbortSignal,
): Promise<AsyncIterable<Uint8Array>> {
  return deps.retry(async () => {
    try {
      const res = await deps.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${range.offset}-`, IfMatch: range.etag }), { abortSignal: signal });
      return (res.Body as AsyncIterable<Uint8Array> | undefined) ?? (async function* empty() {})();
    } catch (err) {
      throw s3Error('GetObject', key, err);
    }
  }, { signal });
}
