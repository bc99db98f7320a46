import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ArchiverError, ErrorCodes, isAbortError } from '../errors.js';
import type { RetryPolicy } from '../retry.js';

/** Small S3 helpers for the orchestrator: existence checks and whole-object JSON writes. */

export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}

function isTransient(err: unknown): boolean {
  const e = err as { name?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return e.$retryable !== undefined || status === undefined || status >= 500 || status === 429;
}

export function s3Error(action: string, key: string, err: unknown): ArchiverError {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return new ArchiverError(ErrorCodes.S3Failed, `S3 ${action} failed for ${key}: ${e.name ?? 'Error'}`, {
    cause: err,
    retryable: isTransient(err),
    details: { status: e.$metadata?.httpStatusCode, key },
  });
}

export interface HeadResult {
  bytes: number;
  metadata: Record<string, string>;
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
      return { bytes: res.ContentLength ?? 0, metadata: res.Metadata ?? {} };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw s3Error('HeadObject', key, err);
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
