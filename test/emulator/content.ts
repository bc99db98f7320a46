// Backup file content: generated on the fly, never stored, so a 1 GiB file costs no memory.
//
// Generated content is laid out in 1 MiB chunks. Chunk c is a 32-byte stamp (the chunk
// counter plus a digest of the file key and counter) followed by the shared 1 MiB
// pseudo-random PATTERN read from a per-chunk rotation offset. Any byte range is therefore
// computable without generating its prefix, and a response body is a sequence of
// zero-copy subarrays of PATTERN plus one 32-byte stamp per MiB. Memory: PATTERN (1 MiB,
// process-wide) plus O(1) per request.
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';

export const CHUNK = 1024 * 1024;
const STAMP = 32;

// AES-256-CTR over zeros with a fixed key: deterministic, fast, incompressible.
const PATTERN: Buffer = (() => {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update('ges-emulator-pattern').digest(), Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(CHUNK)), cipher.final()]);
})();

export interface ContentSource {
  readonly bytes: number;
  /** Quoted, stable for identical content, changes when the content changes. */
  readonly etag: string;
  readonly lastModified: Date;
  /** Body pieces for [start, end), each ≤ 1 MiB. */
  pieces(start: number, end: number): Iterable<Buffer> | AsyncIterable<Buffer>;
  sha256(): string;
}

function etagFor(key: Buffer, bytes: number): string {
  const md5 = createHash('md5').update(key).update(String(bytes)).digest('hex');
  // Large objects get a multipart-style ETag, which is not an MD5 (docs/ges-api.md §7.4, §9.15).
  const parts = Math.ceil(bytes / (8 * CHUNK));
  return bytes > 16 * CHUNK ? `"${md5}-${parts}"` : `"${md5}"`;
}

export class GeneratedContent implements ContentSource {
  readonly etag: string;
  private readonly key: Buffer;
  private digest: string | undefined;

  constructor(identity: readonly string[], readonly bytes: number, readonly lastModified: Date) {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`file size must be a non-negative integer, got ${bytes}`);
    this.key = createHash('sha256').update(identity.join('\0')).digest();
    this.etag = etagFor(this.key, bytes);
  }

  private chunk(c: number): { stamp: Buffer; offset: number } {
    const counter = Buffer.alloc(8);
    counter.writeBigUInt64BE(BigInt(c));
    const digest = createHash('sha256').update(this.key).update(counter).digest();
    const stamp = Buffer.concat([counter, digest.subarray(0, STAMP - 8)]);
    return { stamp, offset: digest.readUInt32BE(24) % CHUNK };
  }

  *pieces(start: number, end: number): Generator<Buffer> {
    end = Math.min(end, this.bytes);
    if (start >= end) return;
    for (let c = Math.floor(start / CHUNK); c * CHUNK < end; c++) {
      const base = c * CHUNK;
      let lo = Math.max(start, base) - base;
      const hi = Math.min(end, base + CHUNK) - base;
      const { stamp, offset } = this.chunk(c);
      if (lo < STAMP) {
        const to = Math.min(hi, STAMP);
        yield stamp.subarray(lo, to);
        lo = to;
      }
      if (lo >= hi) continue;
      const p = (offset + lo) % CHUNK;
      const len = hi - lo;
      if (p + len <= CHUNK) {
        yield PATTERN.subarray(p, p + len);
      } else {
        yield PATTERN.subarray(p);
        yield PATTERN.subarray(0, len - (CHUNK - p));
      }
    }
  }

  sha256(): string {
    if (this.digest === undefined) {
      const hash = createHash('sha256');
      for (const piece of this.pieces(0, this.bytes)) hash.update(piece);
      this.digest = hash.digest('hex');
    }
    return this.digest;
  }
}

/** Serves a real file; its size and mtime are read once, when the emulator starts. */
export class FileContent implements ContentSource {
  readonly bytes: number;
  readonly etag: string;
  readonly lastModified: Date;
  private digest: string | undefined;

  constructor(private readonly path: string) {
    const st = statSync(path);
    this.bytes = st.size;
    this.lastModified = st.mtime;
    this.etag = etagFor(Buffer.from(`${path}\0${st.mtimeMs}`), st.size);
  }

  async *pieces(start: number, end: number): AsyncGenerator<Buffer> {
    end = Math.min(end, this.bytes);
    if (start >= end) return;
    const stream = createReadStream(this.path, { start, end: end - 1, highWaterMark: CHUNK });
    for await (const piece of stream) yield piece as Buffer;
  }

  sha256(): string {
    if (this.digest === undefined) {
      const hash = createHash('sha256');
      const buf = Buffer.allocUnsafe(CHUNK);
      const fd = openSync(this.path, 'r');
      try {
        for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) hash.update(buf.subarray(0, n));
      } finally {
        closeSync(fd);
      }
      this.digest = hash.digest('hex');
    }
    return this.digest;
  }
}
