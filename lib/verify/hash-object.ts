import { createHash } from 'node:crypto';
import { readObjectStream } from '../store/s3-objects.js';
import type { StorageDeps } from '../catalog/types.js';

/**
 * Streams a body through SHA-256 chunk by chunk: its length and hex digest, never holding more
 * than a chunk. `onBytes` is told about every chunk hashed (progress), and about the bytes
 * taken back (negative) when the body breaks off.
 */
export async function hashStream(body: AsyncIterable<Uint8Array>, onBytes?: (delta: number) => void): Promise<{ bytes: number; sha256: string }> {
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
}

/**
 * Re-reads one object and returns its length and SHA-256, or undefined when it does not
 * exist. The body is streamed through the hash chunk by chunk: memory is one chunk plus
 * the stream's buffer, whatever the object's size. A body that breaks off is read again
 * from the start (the retry policy decides how often). `bucket` defaults to the archive's.
 */
export function hashObject(
  deps: Pick<StorageDeps, 's3' | 'retry' | 'config'>,
  key: string,
  signal?: AbortSignal,
  options: { onBytes?: (delta: number) => void; bucket?: string } = {},
): Promise<{ bytes: number; sha256: string } | undefined> {
  return readObjectStream(deps, options.bucket ?? deps.config.archive.bucket, key, (body) => hashStream(body, options.onBytes), signal);
}
