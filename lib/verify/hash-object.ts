import { createHash } from 'node:crypto';
import { readObjectStream } from '../archive/s3-objects.js';
import type { StorageDeps } from '../catalog/types.js';

/**
 * Re-reads one object and returns its length and SHA-256, or undefined when it does not
 * exist. The body is streamed through the hash chunk by chunk: memory is one chunk plus
 * the stream's buffer, whatever the object's size. A body that breaks off is read again
 * from the start (the retry policy decides how often).
 */
export function hashObject(
  deps: Pick<StorageDeps, 's3' | 'retry' | 'config'>,
  key: string,
  signal?: AbortSignal,
  /** Told about every chunk hashed (progress); negative after a read that broke off and starts again. */
  onBytes?: (delta: number) => void,
): Promise<{ bytes: number; sha256: string } | undefined> {
  return readObjectStream(deps, deps.config.archive.bucket, key, async (body) => {
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for await (const chunk of body) {
        hash.update(chunk);
        bytes += chunk.byteLength;
        onBytes?.(chunk.byteLength);
      }
    } catch (err) {
      onBytes?.(-bytes);
      throw err;
    }
    return { bytes, sha256: hash.digest('hex') };
  }, signal);
}
