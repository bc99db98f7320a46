// Conditional writes of file keys (issue 8): the copier commits a file (its single PutObject, or
// its CompleteMultipartUpload) with If-None-Match: *, and replaces an object found at the key
// only when no finished manifest.json vouches for it, through If-Match with the ETag it had.
// Against the real local S3 (Swift's s3api, as it is: 501 to conditional PUTs, If-None-Match
// honoured on a Complete, 412 to every If-Match there) and, through test/support's middleware,
// with AWS S3's semantics in front of the same Swift. The check before the commit is the
// orchestrator's own (refuseIfArchived), against manifest.json in the bucket.
import { createHash } from 'node:crypto';
import { AbortMultipartUploadCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'undici';
import { refuseIfArchived } from '../../lib/archive/file-step.js';
import { fileKey, manifestKey } from '../../lib/store/keys.js';
import { loadConfig, type Config } from '../../lib/config.js';
import { createCopier, type CopyFileResult } from '../../lib/copy/copier.js';
import { MiB } from '../../lib/copy/part-size.js';
import { ErrorCodes } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listInProgressUploads, s3Client } from '../support/aws.js';
import { tokenEnv } from '../support/cli.js';
import { awsConditionalWrites, recordWrites, type ConditionalWritesOptions } from '../support/conditional-writes.js';
import { expectNoTrace, failure, gesLinkSource } from '../support/copy.js';

const PART = 5 * MiB;
const G = 'graph-cond';
const B = 'backup-cond';
const TOKEN = 'static-token-cond';
const FILES = {
  small: { name: 'schema.xml', bytes: 1_000 }, // one PutObject
  big: { name: 'data.bin', bytes: PART + 4_321 }, // a multipart upload of 2 parts
};
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 5_000 });
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let emu: Emulator;
let direct: S3Client;
let dispatcher: Agent;
const clients: S3Client[] = [];
const buckets: string[] = [];

beforeAll(async () => {
  direct = s3Client();
  dispatcher = new Agent();
  emu = await startEmulator({ staticTokens: [TOKEN], graphs: [{ id: G, backups: [{ id: B, files: Object.values(FILES) }] }] });
});

afterAll(async () => {
  await emu.close();
  await dispatcher.close();
  for (const c of clients) c.destroy();
  direct.destroy();
});

afterEach(async () => {
  // Whatever a test did, no copy may leave a multipart upload behind.
  for (const bucket of buckets.splice(0)) {
    const left = await listInProgressUploads(bucket, direct);
    await Promise.all(left.map((u) => direct.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }))));
    expect(left.map((u) => u.Key)).toEqual([]);
  }
});

/** A fresh bucket and a fresh client (what a client's store refuses is learned per client). */
async function setup(options: { aws?: ConditionalWritesOptions } = {}) {
  const bucket = await createTestBucket('copy-cond', direct);
  buckets.push(bucket);
  const s3 = s3Client();
  clients.push(s3);
  const conditional = options.aws === undefined ? undefined : awsConditionalWrites(s3, direct, options.aws);
  const sent = recordWrites(s3);
  const config: Config = loadConfig(tokenEnv(emu, bucket, TOKEN));
  const prefix = config.archive.prefix;
  const copier = createCopier({ s3, logger: silentLogger(), retry: fastRetry, allowedHosts: ['127.0.0.1'], dispatcher, partSizeBytes: PART, partConcurrency: 2 });
  const keyOf = (name: string): string => fileKey(prefix, G, B, name);
  const copy = (name: string, repairing?: string): Promise<CopyFileResult> => copier.copyFile({
    bucket, key: keyOf(name), fileName: name, getLink: gesLinkSource(emu, TOKEN, G, B, name).getLink,
    beforeCommit: refuseIfArchived({ s3, retry: fastRetry, config }, { graphId: G, backupId: B }, name, repairing),
  });
  const put = async (key: string, body: string): Promise<string | undefined> =>
    (await direct.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))).ETag;
  const bytesAt = async (key: string): Promise<Buffer> => getObjectBytes(bucket, key, direct);
  return { bucket, s3, sent, conditional, copy, keyOf, put, bytesAt, manifestKey: manifestKey(prefix, G, B) };
}

type Setup = Awaited<ReturnType<typeof setup>>;
const OTHER_RUNS_FILE = 'the other run\'s file';

/** Another run stores the file at the key and finishes the backup (its manifest.json). */
async function otherRunFinishes(t: Setup, key: string): Promise<void> {
  await t.put(key, OTHER_RUNS_FILE);
  await t.put(t.manifestKey, '{"files":[]}');
}

/** The copy was refused: the other run's object is as it left it, and no upload is left. */
async function expectOtherRunsFileKept(t: Setup, key: string): Promise<void> {
  expect((await t.bytesAt(key)).toString()).toBe(OTHER_RUNS_FILE);
  expect(await listInProgressUploads(t.bucket, direct)).toEqual([]);
}

const variants = [
  { label: 'a single PutObject', file: FILES.small, command: 'PutObject' as const },
  { label: 'a multipart upload', file: FILES.big, command: 'CompleteMultipartUpload' as const },
];

describe.each(variants)('committing $label', ({ file, command }) => {
  const expected = (): string => emu.fileSha256(G, B, file.name);

  describe('on Swift as it is', () => {
    it('replaces an object no manifest vouches for, learns once what the store does not honour, and stores the new bytes', async () => {
      // Prepare: a leftover of an unfinished run at the key
      const t = await setup();
      const key = t.keyOf(file.name);
      await t.put(key, 'leftover of an unfinished run');

      // Act: two copies to the key (the second finds the first's object)
      const first = await t.copy(file.name);
      const afterFirst = t.sent.filter((w) => w.command === command).length;
      const second = await t.copy(file.name);

      // Assess
      expect(first).toMatchObject({ status: 'complete', sha256: expected() });
      expect(second).toMatchObject({ status: 'complete', sha256: expected() });
      expect(sha256(await t.bytesAt(key))).toBe(expected());
      const writes = t.sent.filter((w) => w.command === command).map((w) => [w.ifNoneMatch, w.ifMatch, w.status]);
      if (command === 'PutObject') {
        // 501 to If-None-Match: learned, and never sent again
        expect(writes).toEqual([['*', undefined, 501], [undefined, undefined, 200], [undefined, undefined, 200]]);
      } else {
        // Swift honours If-None-Match on a Complete (412: the key holds an object), and answers
        // 412 to an If-Match naming the object's own ETag: that is learned, and not sent again.
        const [ifNoneMatch, ifMatch] = [writes[0], writes[1]];
        expect(ifNoneMatch).toEqual(['*', undefined, 412]);
        expect(ifMatch?.[1]).toMatch(/^".+"$/);
        expect(ifMatch?.[2]).toBe(412);
        expect(writes.slice(2)).toEqual([[undefined, undefined, 200], ['*', undefined, 412], [undefined, undefined, 200]]);
      }
      expect(afterFirst).toBe(command === 'PutObject' ? 2 : 3);
    });
  });

  describe('with AWS S3 semantics', () => {
    it('commits a free key with If-None-Match: *', async () => {
      // Prepare
      const t: Setup = await setup({ aws: {} });
      const key = t.keyOf(file.name);

      // Act
      const result = await t.copy(file.name);

      // Assess
      expect(result).toMatchObject({ status: 'complete', sha256: expected() });
      expect(t.conditional?.calls).toEqual([{ command, key, ifNoneMatch: '*', ifMatch: undefined, outcome: 'stored' }]);
      expect(sha256(await t.bytesAt(key))).toBe(expected());
    });

    it('replaces an object no manifest vouches for through If-Match with the ETag it had', async () => {
      // Prepare
      const t: Setup = await setup({ aws: {} });
      const key = t.keyOf(file.name);
      const leftover = await t.put(key, 'leftover of an unfinished run');

      // Act
      const result = await t.copy(file.name);

      // Assess
      expect(result).toMatchObject({ status: 'complete', sha256: expected() });
      expect(t.conditional?.calls.map((c) => [c.ifNoneMatch, c.ifMatch, c.outcome])).toEqual([['*', undefined, 412], [undefined, leftover, 'stored']]);
      expect(sha256(await t.bytesAt(key))).toBe(expected());
    });

    it('an archive --force repair replaces the file under the manifest.json it set out to replace', async () => {
      // Prepare: an archived backup whose file object is damaged
      const t: Setup = await setup({ aws: {} });
      const key = t.keyOf(file.name);
      const damaged = await t.put(key, 'damaged');
      const repairing = await t.put(t.manifestKey, '{"files":[]}');

      // Act
      const result = await t.copy(file.name, repairing);

      // Assess
      expect(result).toMatchObject({ status: 'complete', sha256: expected() });
      expect(t.conditional?.calls.map((c) => [c.ifNoneMatch, c.ifMatch, c.outcome])).toEqual([['*', undefined, 412], [undefined, damaged, 'stored']]);
      expect(sha256(await t.bytesAt(key))).toBe(expected());
    });

    it('a manifest.json written between the check and the commit: ALREADY_ARCHIVED, the other run\'s object untouched, no upload left', async () => {
      // Prepare: another run stores the file and finishes the backup just before this copy commits
      const t: Setup = await setup({
        aws: {
          before: async ({ n, key }) => {
            if (n === 1) await otherRunFinishes(t, key);
          },
        },
      });

      // Act
      const err = await failure(t.copy(file.name));

      // Assess
      expect(err.code).toBe(ErrorCodes.AlreadyArchived);
      expect(t.conditional?.calls.map((c) => [c.ifNoneMatch, c.ifMatch, c.outcome])).toEqual([['*', undefined, 412]]);
      await expectOtherRunsFileKept(t, t.keyOf(file.name));
    });

    it('a commit that failed without an answer, then found the other run\'s object (412): the cleanup deletes nothing', async () => {
      // Prepare: the first commit attempt ends in a 500 after the other run stored its file and
      // finished the backup; the retry gets 412
      const t: Setup = await setup({
        aws: {
          before: async ({ n, key }) => {
            if (n !== 1) return;
            await otherRunFinishes(t, key);
            throw Object.assign(new Error('We encountered an internal error. Please try again.'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } });
          },
        },
      });

      // Act
      const err = await failure(t.copy(file.name));

      // Assess
      expect(err.code).toBe(ErrorCodes.AlreadyArchived);
      expect(t.conditional?.calls.map((c) => c.outcome)).toEqual(['failed', 412]);
      await expectOtherRunsFileKept(t, t.keyOf(file.name));
    });

    it('an object that changes again before the If-Match: S3_FAILED (retryable) naming the key, nothing replaced, no upload left', async () => {
      // Prepare: a leftover, which another writer replaces right before this copy's If-Match
      const t: Setup = await setup({
        aws: {
          before: async ({ n, key }) => {
            if (n === 2) await t.put(key, 'written meanwhile');
          },
        },
      });
      const key = t.keyOf(file.name);
      await t.put(key, 'leftover of an unfinished run');

      // Act
      const err = await failure(t.copy(file.name));

      // Assess
      expect(err.code).toBe(ErrorCodes.S3Failed);
      expect(err.retryable).toBe(true);
      expect(err.message).toContain(key);
      expect(err.message).toContain('Run the archive again');
      expect(t.conditional?.calls.map((c) => c.outcome)).toEqual([412, 412]);
      expect((await t.bytesAt(key)).toString()).toBe('written meanwhile');
      expect(await listInProgressUploads(t.bucket, direct)).toEqual([]);
    });

    it('a 409 ConditionalRequestConflict: S3_FAILED (retryable) naming the key, and nothing left behind', async () => {
      // Prepare
      const t: Setup = await setup({ aws: { conflict: ({ n }) => n === 1 } });
      const key = t.keyOf(file.name);

      // Act
      const err = await failure(t.copy(file.name));

      // Assess
      expect(err.code).toBe(ErrorCodes.S3Failed);
      expect(err.retryable).toBe(true);
      expect(err.message).toContain(key);
      expect(err.details).toMatchObject({ operation: command, remoteCode: 'ConditionalRequestConflict', status: 409 });
      expect(t.conditional?.calls.map((c) => c.outcome)).toEqual([409]);
      await expectNoTrace(t.bucket, key);
    });

    it('a store that refuses If-Match (400 InvalidArgument): the object is replaced without it, and that is learned once', async () => {
      // Prepare: a leftover at the key; the store takes If-None-Match but refuses If-Match
      let refused = 0;
      const t: Setup = await setup({ aws: {} });
      t.s3.middlewareStack.add((next, context) => async (args) => {
        if (context.commandName === `${command}Command` && (args.input as { IfMatch?: string }).IfMatch !== undefined) {
          refused++;
          throw Object.assign(new Error('Unsupported header If-Match'), { name: 'InvalidArgument', $metadata: { httpStatusCode: 400 } });
        }
        return next(args);
      }, { step: 'initialize', priority: 'high', name: 'refuseIfMatch' });
      const key = t.keyOf(file.name);
      await t.put(key, 'leftover of an unfinished run');

      // Act: the second copy finds the first's object
      await t.copy(file.name);
      const result = await t.copy(file.name);

      // Assess
      expect(result).toMatchObject({ status: 'complete', sha256: expected() });
      expect(refused).toBe(1);
      expect(t.sent.filter((w) => w.command === command).map((w) => [w.ifNoneMatch, w.ifMatch])).toEqual([
        [undefined, undefined], [undefined, undefined], // each copy: If-None-Match answered 412 by the middleware (not sent), then the write without a condition
      ]);
      expect(sha256(await t.bytesAt(key))).toBe(expected());
    });
  });
});
