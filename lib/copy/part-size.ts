import { ArchiverError, ErrorCodes } from '../errors.js';
import { PART_SIZE_MIB } from '../settings.js';

export const MiB = 1024 * 1024;
/** S3's multipart limits (the same in Swift s3api once max_upload_part_num = 10000). */
export const MAX_PARTS = 10_000;
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
/** ARCHIVE_PART_SIZE_MB's default, for a copier built without a part size. */
export const DEFAULT_PART_SIZE = PART_SIZE_MIB.default * MiB;

/**
 * Part size for a file of `totalBytes` (its true length, from Content-Length or Content-Range):
 * `minPartSize`, raised to ceil(totalBytes / 10,000) rounded up to a whole MiB when the file
 * would otherwise need more than 10,000 parts (so the minimum holds up to 10,000 × it: 78.125 GiB
 * with the default 8 MiB).
 */
export function choosePartSize(totalBytes: number, minPartSize: number = DEFAULT_PART_SIZE): number {
  const needed = Math.ceil(totalBytes / MAX_PARTS);
  const size = Math.max(minPartSize, Math.ceil(needed / MiB) * MiB);
  if (size > MAX_PART_SIZE) {
    throw new ArchiverError(ErrorCodes.S3Failed, `File of ${totalBytes} bytes is larger than an S3 multipart upload can hold`, {
      details: { totalBytes },
    });
  }
  return size;
}

/** Number of parts a file of `totalBytes` is cut into (0 for an empty file). */
export function partCount(totalBytes: number, partSize: number): number {
  return Math.ceil(totalBytes / partSize);
}
