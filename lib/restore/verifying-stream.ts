import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { ArchivedFile } from '../store/archive-manifest.js';
import { ArchiverError, ErrorCodes } from '../errors.js';

/**
 * A pass-through that hashes and counts a file's bytes on their way to the target and fails
 * the stream (VERIFY_FAILED, not retryable) when they do not match manifest.json: as soon as
 * there are more bytes than recorded, and in `flush()`, before the end of the stream is seen
 * downstream, when there are fewer or the SHA-256 differs. A writer that publishes the file
 * only after the stream ended cleanly (rename of a temporary file, CompleteMultipartUpload)
 * therefore never publishes a file that does not match. Memory: the chunk in hand (plus the
 * stream's highWaterMark buffers).
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;

  constructor(
    private readonly file: Pick<ArchivedFile, 'name' | 'key' | 'bytes' | 'sha256'>,
    private readonly onBytes: (delta: number) => void = () => undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.byteLength;
    if (this.bytes > this.file.bytes) {
      callback(this.mismatch(`is longer than the ${this.file.bytes} bytes manifest.json records`));
      return;
    }
    this.hash.update(chunk);
    this.onBytes(chunk.byteLength);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.bytes !== this.file.bytes) {
      callback(this.mismatch(`has ${this.bytes} bytes, manifest.json records ${this.file.bytes}`));
      return;
    }
    const digest = this.hash.digest('hex');
    if (digest !== this.file.sha256) {
      callback(this.mismatch(`has SHA-256 ${digest}, manifest.json records ${this.file.sha256}`));
      return;
    }
    callback();
  }

  private mismatch(what: string): ArchiverError {
    return new ArchiverError(ErrorCodes.VerifyFailed,
      `Archived file ${this.file.key} ${what}: the archive copy is damaged, nothing was written at the target's ${this.file.name}. `
      + 'Re-archive the backup from GES (ges-archiver archive --force) if GES still has it, or restore an earlier version of the object.',
      { details: { key: this.file.key, name: this.file.name, expectedBytes: this.file.bytes } });
  }
}
