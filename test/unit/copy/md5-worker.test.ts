// Content-MD5 off the event loop (lib/copy/md5-worker.ts): the same digest as inline hashing,
// computed on another thread for large shared part buffers, inline for everything else.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { contentMd5Off, prefault, sharedBuffer, startMd5Worker } from '../../../lib/copy/md5-worker.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

const MiB = 1024 * 1024;
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('base64');

function fill(buf: Buffer, seed: number): Buffer {
  for (let i = 0; i < buf.length; i += 4096) buf[i] = (i / 4096 + seed) & 0xff;
  return buf;
}

describe('startMd5Worker', () => {
  it('starts the worker ahead of the first part, once however often it is called, and never keeps a process alive', async () => {
    startMd5Worker();
    startMd5Worker();
    const part = fill(sharedBuffer(4 * MiB), 5);
    await expect(contentMd5Off(part)).resolves.toBe(md5(part));

    // A process that only started the worker (a Lambda or CLI run that copies nothing) still ends.
    // (A script file: tsx ends an -e script with process.exit, which would hide a worker that holds on.)
    const dir = await mkdtemp(join(tmpdir(), 'md5-worker-'));
    try {
      const script = join(dir, 'start.mts');
      await writeFile(script, `import { startMd5Worker } from ${JSON.stringify(pathToFileURL(join(ROOT, 'lib/copy/md5-worker.ts')).href)};\nstartMd5Worker();\nconsole.log('started');\n`);
      const child = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
      expect({ status: child.status, signal: child.signal, stdout: child.stdout }).toEqual({ status: 0, signal: null, stdout: 'started\n' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('contentMd5Off', () => {
  it('gives the MD5 of a large shared part buffer, also for a slice at an offset', async () => {
    const whole = fill(sharedBuffer(8 * MiB), 3);
    const slice = whole.subarray(MiB + 5, 7 * MiB);

    await expect(contentMd5Off(whole)).resolves.toBe(md5(whole));
    await expect(contentMd5Off(slice)).resolves.toBe(md5(slice));
  });

  it('keeps each answer with its own part when many are in flight at once', async () => {
    const parts = Array.from({ length: 12 }, (_, i) => fill(sharedBuffer(2 * MiB), i));

    const digests = await Promise.all(parts.map((p) => contentMd5Off(p)));

    expect(digests).toEqual(parts.map(md5));
    expect(new Set(digests).size).toBe(parts.length);
  });

  it('does not hash a shared buffer on the event loop: the loop keeps turning while 64 MiB are hashed', async () => {
    const big = fill(sharedBuffer(64 * MiB), 9);
    let turns = 0;
    const ticker = setInterval(() => { turns++; }, 1);

    const digest = await contentMd5Off(big);
    clearInterval(ticker);

    // Inline, 64 MiB of MD5 (~100 ms here) would block every timer until it is done.
    expect(digest).toBe(md5(big));
    expect(turns).toBeGreaterThan(5);
  });

  it('hashes small or unshared bodies inline, with the same result', async () => {
    const small = fill(sharedBuffer(64 * 1024), 1);
    const unshared = fill(Buffer.alloc(4 * MiB), 2);

    await expect(contentMd5Off(small)).resolves.toBe(md5(small));
    await expect(contentMd5Off(unshared)).resolves.toBe(md5(unshared));
    await expect(contentMd5Off(Buffer.alloc(0))).resolves.toBe('1B2M2Y8AsgTpgAmY7PhCfg==');
  });
});

describe('prefault', () => {
  /** Every byte written (the worker touches one byte per page: each of them must keep its value). */
  function pattern(buf: Buffer, seed: number): Buffer {
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 7 + seed) & 0xff;
    return buf;
  }

  it('changes no byte of a shared buffer, while this thread fills it and Content-MD5 requests come in', async () => {
    // Prepare: 32 MiB, its first half already written; another part to hash meanwhile.
    const buf = sharedBuffer(32 * MiB);
    pattern(buf.subarray(0, 16 * MiB), 5);
    const other = fill(sharedBuffer(4 * MiB), 6);
    // Act: the worker walks the buffer from its end while this thread writes the second half.
    prefault(buf);
    pattern(buf.subarray(16 * MiB), 7);
    const digest = await contentMd5Off(other);
    // Touch slices run between messages; give the last ones time to finish before checking.
    await new Promise((r) => setTimeout(r, 500));
    // Assess
    const expected = Buffer.concat([pattern(Buffer.alloc(16 * MiB), 5), pattern(Buffer.alloc(16 * MiB), 7)]);
    expect(buf.equals(expected)).toBe(true);
    expect(digest).toBe(md5(other));
  });
});
