import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { isNotFound, s3Error } from '../store/s3-objects.js';
import type { StorageDeps } from '../catalog/types.js';

/**
 * Whether S3 Object Lock protects an object's current version: a legal hold that is ON, or a
 * retention date in the future (GOVERNANCE or COMPLIANCE). HeadObject reports both (the
 * caller needs s3:GetObjectRetention and s3:GetObjectLegalHold, or S3 leaves them out).
 * Undefined when the object is gone or not protected.
 */
export async function objectLockOf(
  deps: Pick<StorageDeps, 's3' | 'retry'>,
  bucket: string,
  key: string,
  now: number,
  signal?: AbortSignal,
): Promise<string | undefined> {
  return deps.retry(async () => {
    try {
      const head = await deps.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      if (head.ObjectLockLegalHoldStatus === 'ON') return 'a legal hold';
      const until = head.ObjectLockRetainUntilDate;
      if (until !== undefined && until.getTime() > now) {
        return `${head.ObjectLockMode ?? 'Object Lock'} retention until ${until.toISOString()}`;
      }
      return undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw s3Error('HeadObject', key, err);
    }
  }, { signal });
}
