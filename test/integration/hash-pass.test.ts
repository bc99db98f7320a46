// The whole-file SHA-256 read pass of a sharded file (lib/fanout/hash-pass.ts) against Swift:
// resuming a read that breaks off, handing over with a midstate at any byte, and refusing to
// mix two objects.
import { createHash, randomBytes } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { hashStoredFile } from '../../lib/fanout/hash-pass.js';
import type { ShardPlan } from '../../lib/fanout/shards.js';
import { ErrorCodes } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { createTestBucket, s3Client } from '../support/aws.js';
import { failure } from '../support/copy.js';

const MiB = 1024 * 1024;
const retry = createRetryPolicy({ maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 200, maxElapsedMs: 10_000 });
const body = randomBytes(6 * MiB + 13);
const digest = createHash('sha256').update(body).digest('hex');

let s3: S3Client;
let bucket: string;
const clients: S3Client[] = [];

beforeAll(async () => {
  s3 = s3Client();
  bucket = await createTestBucket('hash-pass');
});

afterAll(() => {
  for (const c of [s3, ...clients]) c.destroy();
});

async function stored(key: string, bytes: Buffer = body): Promise<ShardPlan> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
  return {
    version: 1, planId: 'plan-1', fileName: 'f.bin', key, uploadId: 'u', totalBytes: bytes.length, partSize: 5 * MiB,
    shardBytes: 5 * MiB, shardCount: 2, sourceEtag: '"e"', createdAt: new Date().toISOString(),
  };
}

/** A client whose GetObject bodies yield chunks of `chunk` bytes; the first one breaks off after `breakAfter` bytes. */
function client(options: { chunk?: number; breakAfter?: number }): { s3: S3Client; ranges: string[] } {
  const c = s3Client();
  clients.push(c);
  const ranges: string[] = [];
  let broken = false;
  c.middlewareStack.add((next, context) => async (args) => {
    const result = await next(args);
    if (context.commandName !== 'GetObjectCommand') return result;
    ranges.push((args.input as { Range?: string }).Range ?? '');
    const original = (result.output as { Body: AsyncIterable<Uint8Array> }).Body;
    const breakNow = options.breakAfter !== undefined && !broken;
    broken ||= breakNow;
    (result.output as { Body: unknown }).Body = (async function* rechunk() {
      let sent = 0;
      let pending = Buffer.alloc(0);
      for await (const piece of original) {
        pending = Buffer.concat([pending, piece]);
        while (pending.length >= (options.chunk ?? 1)) {
          const n = Math.min(options.chunk ?? pending.length, pending.length);
          if (breakNow && sent + n > options.breakAfter!) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
          yield pending.subarray(0, n);
          sent += n;
          pending = pending.subarray(n);
        }
      }
      if (pending.length > 0) yield pending;
    })();
    return result;
  }, { step: 'initialize', name: 'rechunkForTest' });
  return { s3: c, ranges };
}

const deps = (c: S3Client) => ({ s3: c, retry, config: { archive: { bucket, prefix: 'ges-backups/' } } });
const ctx = (over: { handoverAt?: number; now?: () => number } = {}) => ({ log: silentLogger(), now: Date.now, ...over });

describe('the whole-file SHA-256 read pass', () => {
  it('resumes a read that breaks off from the byte it reached, and the digest is the file\'s', async () => {
    // Prepare
    const plan = await stored('a/f.bin');
    const breaking = client({ chunk: 64 * 1024, breakAfter: 2 * MiB + 5 });

    // Act
    const result = await hashStoredFile(deps(breaking.s3), plan, undefined, ctx());

    // Assess
    expect(result).toEqual({ status: 'done', bytes: body.length, sha256: digest });
    expect(breaking.ranges).toEqual(['bytes=0-', `bytes=${2 * MiB}-`]);
  });

  it('hands over at an odd byte with its midstate, and the continuation gives the file\'s digest', async () => {
    // Prepare: chunks of 100,003 bytes; the clock passes handoverAt after the third chunk
    const plan = await stored('b/f.bin');
    const odd = client({ chunk: 100_003 });
    let ticks = 0;

    // Act
    const first = await hashStoredFile(deps(odd.s3), plan, undefined, ctx({ handoverAt: 4, now: () => ++ticks }));
    if (first.status !== 'handover') throw new Error('expected a handover');
    const rest = await hashStoredFile(deps(s3), plan, first.checkpoint, ctx());

    // Assess
    expect(first.checkpoint).toMatchObject({ planId: 'plan-1', offset: 3 * 100_003 });
    expect(rest).toEqual({ status: 'done', bytes: body.length, sha256: digest });
  });

  it('hashes from the start when the object is not the one the checkpoint read, and refuses an object of another length', async () => {
    // Prepare: a checkpoint taken over one object, then the key holds other bytes of the same length
    const plan = await stored('c/f.bin');
    let ticks = 0;
    const first = await hashStoredFile(deps(client({ chunk: 100_003 }).s3), plan, undefined, ctx({ handoverAt: 3, now: () => ++ticks }));
    if (first.status !== 'handover') throw new Error('expected a handover');
    const other = randomBytes(body.length);
    await stored('c/f.bin', other);

    // Act
    const result = await hashStoredFile(deps(s3), plan, first.checkpoint, ctx());
    const shorter = await stored('d/f.bin', body.subarray(0, MiB));
    const err = await failure(hashStoredFile(deps(s3), { ...shorter, totalBytes: body.length }, undefined, ctx()));

    // Assess
    expect(result).toEqual({ status: 'done', bytes: other.length, sha256: createHash('sha256').update(other).digest('hex') });
    expect(err.code).toBe(ErrorCodes.VerifyFailed);
    expect(err.message).toContain(`${MiB} bytes, expected ${body.length}`);
  });
});
