import * as z from 'zod';
import { ArchiverError, ErrorCodes } from '../errors.js';
import { MIN_PART_SIZE, partCount } from './part-size.js';

/**
 * What one invocation hands the next so it can continue the same multipart upload (Lambda
 * handover). Plain JSON, because it travels in a queue message: a few hundred bytes plus ~60 per
 * part. It comes back from outside, so it is validated before anything is sent to S3.
 */
export interface CopyCheckpoint {
  version: 1;
  bucket: string;
  key: string;
  uploadId: string;
  partSize: number;
  totalBytes: number;
  sourceEtag?: string;
  /** The source's Last-Modified, when it had no strong ETag (ranges then use If-Unmodified-Since). */
  sourceLastModified?: string;
  /** Bytes stored in `parts` (always a part boundary). */
  offset: number;
  parts: { partNumber: number; etag: string }[];
  /** Base64 SHA-256 midstate (hash-wasm) after `offset` bytes. */
  hashState: string;
}

export interface CheckpointFields {
  bucket: string;
  key: string;
  uploadId: string;
  partSize: number;
  totalBytes: number;
  offset: number;
  /** Sorted by part number. */
  parts: { partNumber: number; etag: string }[];
  hashState: string;
  sourceEtag: string | undefined;
  sourceLastModified: string | undefined;
}

export function toCheckpoint(f: CheckpointFields): CopyCheckpoint {
  const checkpoint: CopyCheckpoint = {
    version: 1, bucket: f.bucket, key: f.key, uploadId: f.uploadId, partSize: f.partSize,
    totalBytes: f.totalBytes, offset: f.offset, parts: f.parts, hashState: f.hashState,
  };
  if (f.sourceEtag !== undefined) checkpoint.sourceEtag = f.sourceEtag;
  if (f.sourceLastModified !== undefined) checkpoint.sourceLastModified = f.sourceLastModified;
  return checkpoint;
}

/** Throws MESSAGE_INVALID naming the first bad field; `target` is the request it is meant to continue. */
export function validateCheckpoint(cp: CopyCheckpoint, target: { bucket: string; key: string }): void {
  const bad = (field: string): never => {
    throw new ArchiverError(ErrorCodes.MessageInvalid, `Copy checkpoint is invalid: ${field}`, { details: { field } });
  };
  if (cp.version !== 1) bad('version');
  if (cp.bucket !== target.bucket || cp.key !== target.key) bad('bucket/key do not match the request');
  if (typeof cp.uploadId !== 'string' || cp.uploadId === '') bad('uploadId');
  if (!Number.isSafeInteger(cp.partSize) || cp.partSize < MIN_PART_SIZE) bad('partSize');
  if (!Number.isSafeInteger(cp.totalBytes) || cp.totalBytes <= 0) bad('totalBytes');
  if (!Number.isSafeInteger(cp.offset) || cp.offset < 0 || cp.offset > cp.totalBytes) bad('offset');
  if (cp.offset % cp.partSize !== 0 && cp.offset !== cp.totalBytes) bad('offset is not a part boundary');
  if (cp.parts.length !== partCount(cp.offset, cp.partSize)) bad('parts');
  cp.parts.forEach((p, i) => {
    if (p.partNumber !== i + 1 || typeof p.etag !== 'string' || p.etag === '') bad(`parts[${i}]`);
  });
  if (typeof cp.hashState !== 'string' || cp.hashState === '') bad('hashState');
  if (cp.sourceEtag !== undefined && typeof cp.sourceEtag !== 'string') bad('sourceEtag');
  if (cp.sourceLastModified !== undefined && typeof cp.sourceLastModified !== 'string') bad('sourceLastModified');
}

/** The shape of a checkpoint read back from the store (validateCheckpoint checks the rest when it is used). */
export const checkpointSchema = z.looseObject({
  version: z.literal(1),
  bucket: z.string(),
  key: z.string(),
  uploadId: z.string().min(1),
  partSize: z.number().int().positive(),
  totalBytes: z.number().int().positive(),
  offset: z.number().int().nonnegative(),
  parts: z.array(z.object({ partNumber: z.number().int().positive(), etag: z.string().min(1) })),
  hashState: z.string().min(1),
});
