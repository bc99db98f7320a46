import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { s3Error } from '../archive/s3-objects.js';
import type { RetryPolicy } from '../retry.js';

export interface ListedObject {
  key: string;
  bytes: number;
  lastModified: Date | undefined;
}

/**
 * Every object under `prefix` in `bucket`, following ListObjectsV2 pagination, each page
 * retried by the one policy. Memory: one entry per object (key, size, date), never bodies.
 */
export async function listObjects(
  deps: { s3: S3Client; retry: RetryPolicy },
  bucket: string,
  prefix: string,
  signal?: AbortSignal,
): Promise<ListedObject[]> {
  const objects: ListedObject[] = [];
  let token: string | undefined;
  do {
    const continuation = token;
    const page = await deps.retry(async () => {
      try {
        return await deps.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: continuation }), { abortSignal: signal });
      } catch (err) {
        throw s3Error('ListObjectsV2', `s3://${bucket}/${prefix}`, err);
      }
    }, { signal });
    for (const o of page.Contents ?? []) {
      if (o.Key !== undefined) objects.push({ key: o.Key, bytes: o.Size ?? 0, lastModified: o.LastModified });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return objects;
}
