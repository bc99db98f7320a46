import { ArchiverError, ErrorCodes } from '../errors.js';
import { PART_SIZE_MIB } from '../settings.js';

export const MiB = 1024 * 1024;
/** S3's multipart limits (the same in Swift s3api once max_upload_part_num = 10000). */
export const MAX_PARTS = 10_000;
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
/** ARCHIVE_PART_SIZE_MB's default, for a copier built without a part size. */
export const DEFAULT_PART_SIZE = PART_SIZE_MIB.default * MiB;
/** A file is cut into about this many parts, so bigger files get bigger parts (fewer store requests). */
export const TARGET_PARTS = 32;
/** Parts grow with the file up to this size (or the minimum part size, if that is larger). */
export const GROWN_PART_LIMIT = 32 * MiB;
/**
 * The most a stream fetches per request in parallel mode: parts are cut into segments at fixed
 * offsets (the last one of a part shorter), so several streams can fill one large part.
 */
export const SEGMENT_BYTES = 8 * MiB;

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

/**
 * The copier's part size for a file of `totalBytes`: ceil(totalBytes / TARGET_PARTS) in whole
 * MiB, kept within [minPartSize, max(minPartSize, GROWN_PART_LIMIT)], then `choosePartSize`'s
 * 10,000-part rule. With 8 MiB as the minimum, files up to 256 MiB keep 8 MiB parts and 1 GiB
 * gets 32 MiB ones: Swift pays a large CPU cost per part request, so fewer parts is the lever
 * for a big file, while the memory they take stays within `copierMemoryBound`.
 */
export function filePartSize(totalBytes: number, minPartSize: number = DEFAULT_PART_SIZE): number {
  const grown = Math.ceil(totalBytes / TARGET_PARTS / MiB) * MiB;
  const size = Math.min(Math.max(grown, minPartSize), Math.max(minPartSize, GROWN_PART_LIMIT));
  return choosePartSize(totalBytes, size);
}

/** Number of parts a file of `totalBytes` is cut into (0 for an empty file). */
export function partCount(totalBytes: number, partSize: number): number {
  return Math.ceil(totalBytes / partSize);
}
