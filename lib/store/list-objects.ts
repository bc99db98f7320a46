import type { S3Client } from '@aws-sdk/client-s3';
import { listObjects as eachObject, type ListedObject } from './s3-objects.js';
import type { RetryPolicy } from '../retry.js';

export type { ListedObject } from './s3-objects.js';

/**
 * Every object under `prefix` in `bucket`, collected from the paged listing of
 * lib/store/s3-objects.ts (each page retried by the one policy). Memory: one entry per object
 * (key, size, date), never bodies; callers that can work page by page use that generator.
 */
export async function listObjects(
  deps: { s3: S3Client; retry: RetryPolicy },
  bucket: string,
  prefix: string,
  signal?: AbortSignal,
): Promise<ListedObject[]> {
  const objects: ListedObject[] = [];
  for await (const o of eachObject(deps, bucket, prefix, signal)) objects.push(o);
  return objects;
}
