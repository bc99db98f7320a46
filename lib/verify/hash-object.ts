import { createHash } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { isNotFound, s3Error } from '../archive/s3-objects.js';
import { ArchiverError, ErrorCodes, isAbortError } from '../errors.js';
import type { StorageDeps } from '../catalog/types.js';


/**
 * Re-reads one object and returns its length and SHA-256, or undefined when it does not
 * exist. The body is streamed through the hash chunk by chunk: memory is one chunk plus
 * the stream's buffer, whatever the object's size. A body that breaks off is read again
 * from the start (the retry policy decides how often).
 */
export async function hashObject(
  deps: Pick<StorageDeps, 's3' | 'retry' | 'config'>,
  key: string,
  signal?: AbortSignal,
): Promise<{ bytes: number; sha256: string } | undefined> {
  const bucket = deps.config.archive.bucket;
  return deps.retry(async () => {
    let body: AsyncIterable<Uint8Array> | undefined;
    try {
      const res = await deps.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      body = res.Body as AsyncIterable<Uint8Array> | undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw s3Error('GetObject', key, err);
    }
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      // for-await destroys the body stream if the loop ends early, so nothing is left half-read.
      for await (const chunk of body ?? []) {
        hash.update(chunk);
        bytes += chunk.byteLength;
      }
    } catch (err) {
      if (isAbortError(err)) throw err;
      throw new ArchiverError(ErrorCodes.S3Failed, `S3 GetObject body broke off for ${key}`, { cause: err, retryable: true, details: { key } });
    }
    return { bytes, sha256: hash.digest('hex') };
  }, { signal });
}
