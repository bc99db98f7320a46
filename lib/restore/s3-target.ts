import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { pipeline, Readable } from 'node:stream';
import { headObject, s3Error } from '../store/s3-objects.js';
import { listObjects } from '../store/list-objects.js';
import { choosePartSize } from '../copy/part-size.js';
import { ArchiverError, ErrorCodes, isAbortError } from '../errors.js';
import { deleteKey } from '../store/fanout-state.js';
import type { Logger } from '../log.js';
import type { RetryPolicy } from '../retry.js';
import { hashObject } from '../verify/hash-object.js';
import type { TargetWriter } from './types.js';
import { VerifyingStream } from './verifying-stream.js';

/**
 * An `s3://bucket/prefix/` target (AWS S3, Huawei OBS or any S3 API): each file goes to
 * `{prefix}{name}` as a lib-storage upload fed through the verifying stream.
 *
 * Why no object can appear unless verified: lib-storage cuts the body into parts and yields
 * the last part only after the stream has *ended*; the verifying stream fails in `flush()`,
 * before that end, on a wrong length or SHA-256 (and at once on a surplus byte). The upload
 * then never sends CompleteMultipartUpload (or, for a file that fits in one part, its single
 * PutObject) and aborts the multipart upload (`leavePartsOnError` false): no object, no
 * upload left behind (tested against Swift with ListMultipartUploads). After completion a
 * HeadObject must report the right length, or the object is deleted.
 *
 * Memory per file: (partConcurrency + 1) × part size (lib-storage's queueSize parts in
 * flight plus the one filling); 5 × 8 MiB = 40 MiB with the defaults.
 *
 * The object's user metadata `ges-sha256` records the verified digest, so a re-run keeps a
 * file already restored without reading it back; an object without it but of the right
 * length is read back and hashed.
 */
export const RESTORED_SHA256_METADATA = 'ges-sha256';

export interface S3TargetDeps {
  s3: S3Client;
  retry: RetryPolicy;
  logger: Logger;
}

export interface S3TargetOptions {
  bucket: string;
  prefix: string;
  partSizeBytes: number;
  partConcurrency: number;
}

export function createS3Target(deps: S3TargetDeps, options: S3TargetOptions): TargetWriter {
  const { bucket, prefix } = options;
  const keyOf = (name: string): string => `${prefix}${name}`;
  const storage = { ...deps, config: { archive: { bucket, prefix } } };

  return {
    label: `s3://${bucket}/${prefix}`,

    async prepare(files, signal) {
      const allowed = new Set(files.map((f) => keyOf(f.name)));
      let keys: string[];
      try {
        keys = (await listObjects(deps, bucket, prefix, signal)).map((o) => o.key);
      } catch (err) {
        const status = err instanceof ArchiverError ? err.details?.['status'] : undefined;
        if (status === 404 || status === 403) {
          throw new ArchiverError(ErrorCodes.ArgsInvalid,
            `The restore target bucket ${bucket} does not exist or cannot be listed (HTTP ${String(status)}): create it, or check RESTORE_S3_* and the credentials`, { cause: err });
        }
        throw err;
      }
      const foreign = keys.filter((k) => !allowed.has(k));
      if (foreign.length > 0) {
        const shown = foreign.slice(0, 5).map((k) => JSON.stringify(k)).join(', ');
        throw new ArchiverError(ErrorCodes.ArgsInvalid,
          `s3://${bucket}/${prefix} holds ${foreign.length} object${foreign.length === 1 ? '' : 's'} that ${foreign.length === 1 ? 'is' : 'are'} not a file of this backup (${shown}${foreign.length > 5 ? ', …' : ''}): `
          + 'GES imports everything in the folder, so restore into an empty folder');
      }
    },

    async existing(file, signal) {
      const key = keyOf(file.name);
      const head = await headObject(deps, bucket, key, signal);
      if (!head) return { state: 'absent' };
      if (head.bytes !== file.bytes) return { state: 'differs', why: `it has ${head.bytes} bytes, the archive ${file.bytes}` };
      const recorded = head.metadata[RESTORED_SHA256_METADATA];
      const sha256 = recorded ?? (await hashObject(storage, key, signal, { bucket }))?.sha256;
      if (sha256 === undefined) return { state: 'absent' };
      return sha256 === file.sha256 ? { state: 'match' } : { state: 'differs', why: `its SHA-256 is ${sha256}, the archive's ${file.sha256}` };
    },

    async write(file, body, onBytes, signal) {
      const key = keyOf(file.name);
      const verified = new VerifyingStream(file, onBytes);
      const source = Readable.from(body);
      // A failing source (S3 read broken off, cancelled) fails the verifying stream, and so the
      // upload; the outcome is the upload's, so the callback has nothing to add.
      pipeline(source, verified, () => undefined);
      const upload = new Upload({
        client: deps.s3,
        params: { Bucket: bucket, Key: key, Body: verified, ContentLength: file.bytes, Metadata: { [RESTORED_SHA256_METADATA]: file.sha256 } },
        partSize: choosePartSize(file.bytes, options.partSizeBytes),
        queueSize: options.partConcurrency,
        leavePartsOnError: false,
      });
      try {
        await upload.done();
      } catch (err) {
        source.destroy();
        if (err instanceof ArchiverError || isAbortError(err) || signal?.aborted) throw err;
        throw s3Error('upload', `s3://${bucket}/${key}`, err);
      }
      const head = await headObject(deps, bucket, key, signal);
      if (head?.bytes !== file.bytes) {
        await deleteKey(deps, bucket, key).catch((err: unknown) => deps.logger.error({ err, key }, 'could not delete a restored object of the wrong length'));
        throw new ArchiverError(ErrorCodes.VerifyFailed,
          `s3://${bucket}/${key} has ${head?.bytes ?? 'no'} bytes after the upload completed, ${file.bytes} were sent; the object was deleted`,
          { details: { key, expectedBytes: file.bytes, actualBytes: head?.bytes } });
      }
    },

    finish() {
      // GES imports every object in the folder: nothing but the backup's files goes there.
      return Promise.resolve(undefined);
    },
  };
}
