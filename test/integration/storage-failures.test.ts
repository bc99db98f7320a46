// Storage failures a person can act on (issue 8, item 10; docs/contract.md "Before anything is
// copied"): the bucket is checked first, a failure is one line naming the bucket and the
// endpoint with exit 2 before GES is asked for anything; S3 errors carry their code and HTTP
// status; retries are logged; stack traces only with -v. Against Swift and the GES emulator.
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { checkArchiveBucket } from '../../lib/archive/preflight.js';
import { getJson, headObject } from '../../lib/store/s3-objects.js';
import { createLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { withRetryLogging } from '../../lib/app/aws-clients.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, listInProgressUploads, listKeys, s3Endpoint } from '../support/aws.js';
import { iamEnv, runCli, useLocalS3 } from '../support/cli.js';

const G = '9b9a05c2-0000-4000-8000-000000000001';
const B = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
const B_UNSAFE = '22222222-3333-4444-8555-666666666666';
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 5_000 });
const STACK_LINE = /\n\s+at .+:\d+:\d+/;

let emulator: Emulator;

beforeAll(async () => {
  useLocalS3();
  emulator = await startEmulator({
    graphs: [{ id: G, backups: [
      { id: B, name: 'ok', files: [{ name: 'graph.bin', bytes: 1000 }] },
      { id: B_UNSAFE, name: 'unsafe', files: [{ name: '../escape.bin', bytes: 10 }] },
    ] }],
  });
});

afterAll(async () => {
  await emulator.close();
});

const gesRequests = (): number => emulator.stats.tokenRequests + emulator.stats.listRequests + emulator.stats.linkRequests;

function s3With(options: { endpoint?: string; secretAccessKey?: string } = {}): S3Client {
  return new S3Client({
    endpoint: options.endpoint ?? s3Endpoint(), region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test:tester', secretAccessKey: options.secretAccessKey ?? process.env.AWS_SECRET_ACCESS_KEY ?? 'testing' },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** A port on which nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the bucket is checked before anything else', () => {
  it('a bucket that does not exist: exit 2, one line naming the bucket and the endpoint, no stack, GES never asked', async () => {
    // Prepare
    const env = iamEnv(emulator, 'no-such-bucket-here-1234');
    const before = gesRequests();

    // Act
    const run = await runCli(['archive', '--graph', G, '--backup', B], env);
    const json = await runCli(['archive', '--graph', G, '--backup', B, '--json'], env);

    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual([
      `ges-archiver: The archive bucket "no-such-bucket-here-1234" does not exist at ${s3Endpoint()} (NoSuchBucket, HTTP 404): create it, or set ARCHIVE_BUCKET to an existing bucket`,
    ]);
    expect(run.stdout).toBe('');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ backups: [], error: { code: 'BUCKET_UNAVAILABLE' } });
    expect(gesRequests()).toBe(before);
  });

  it('a wrong secret key: exit 2 naming the store\'s code and status and the variables to check, never the secret', async () => {
    // Prepare: the SDK reads its credentials from the process environment
    const bucket = await createTestBucket('wrong-secret');
    const saved = process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = 'not-the-secret-0123';
    const before = gesRequests();
    let result;
    try {
      // Act
      result = await runCli(['run', '--manifest', '/dev/null'], iamEnv(emulator, bucket));
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = saved;
    }

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`S3 refused the credentials for bucket "${bucket}" at ${s3Endpoint()} (SignatureDoesNotMatch, HTTP 403): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
    expect(result.stderr).not.toContain('not-the-secret-0123');
    expect(result.stderr).not.toMatch(STACK_LINE);
    expect(gesRequests()).toBe(before);
  });

  it('a refused endpoint: every retry is logged with the operation, code and attempt, then one message naming the endpoint', async () => {
    // Prepare
    const port = await closedPort();
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } }) });
    const deps = { s3: s3With({ endpoint: `http://127.0.0.1:${port}` }), retry: withRetryLogging(fastRetry, logger), config: { archive: { bucket: 'some-bucket', prefix: 'ges-backups/' } } };

    // Act
    const err = await checkArchiveBucket(deps, { write: true }).then(() => undefined, (e: unknown) => e);

    // Assess
    expect(err).toMatchObject({
      code: 'BUCKET_UNAVAILABLE',
      message: `Cannot reach the S3 endpoint http://127.0.0.1:${port} for the archive bucket "some-bucket" (ECONNREFUSED): check AWS_ENDPOINT_URL_S3, AWS_REGION and the network`,
    });
    const retries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(retries.map((r) => [r['msg'], r['operation'], r['code'], r['attempt']])).toEqual([
      ['request failed; retrying', 'ListObjectsV2', 'ECONNREFUSED', 1],
      ['request failed; retrying', 'ListObjectsV2', 'ECONNREFUSED', 2],
    ]);
    deps.s3.destroy();
  });

  it('a dry run checks the bucket without writing; a real run probes writing and leaves nothing behind', async () => {
    // Prepare
    const bucket = await createTestBucket('preflight-probe');
    const deps = { s3: s3With(), retry: fastRetry, config: { archive: { bucket, prefix: 'ges-backups/' } } };

    // Act
    await checkArchiveBucket(deps, { write: false });
    await checkArchiveBucket(deps, { write: true });

    // Assess
    expect(await listKeys(bucket)).toEqual([]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
    deps.s3.destroy();
  });
});

describe('S3 errors', () => {
  it('carry the store\'s code and the HTTP status, also for a HEAD answer that has no body', async () => {
    // Prepare
    const bucket = await createTestBucket('s3-errors');
    const deps = { s3: s3With({ secretAccessKey: 'wrong' }), retry: fastRetry };

    // Act
    const head = await headObject(deps, bucket, 'k').then(() => undefined, (e: unknown) => e);
    const get = await getJson(deps, bucket, 'k').then(() => undefined, (e: unknown) => e);
    const missing = await getJson({ s3: s3With(), retry: fastRetry }, `${bucket}-gone`, 'k').then(() => undefined, (e: unknown) => e);

    // Assess
    expect(head).toMatchObject({ code: 'S3_FAILED', message: 'S3 HeadObject failed for k: Forbidden (HTTP 403)', details: { operation: 'HeadObject', status: 403 } });
    expect(get).toMatchObject({ code: 'S3_FAILED', details: { remoteCode: 'SignatureDoesNotMatch', status: 403 } });
    expect((get as Error).message).toMatch(/^S3 GetObject failed for k: SignatureDoesNotMatch \(HTTP 403\): /);
    // A missing bucket is an error, never "no such object".
    expect(missing).toMatchObject({ code: 'S3_FAILED', details: { remoteCode: 'NoSuchBucket', status: 404 } });
    deps.s3.destroy();
  });
});

describe('stack traces', () => {
  it('appear only with -v', async () => {
    // Prepare: a backup that fails with a logged error
    const bucket = await createTestBucket('stacks');
    const env = iamEnv(emulator, bucket);

    // Act
    const quiet = await runCli(['archive', '--graph', G, '--backup', B_UNSAFE], env);
    const verbose = await runCli(['archive', '--graph', G, '--backup', B_UNSAFE, '-v'], env);

    // Assess
    expect(quiet.code).toBe(1);
    expect(quiet.stderr).toContain('UNSAFE_FILE_NAME');
    expect(quiet.stderr).not.toMatch(STACK_LINE);
    expect(verbose.code).toBe(1);
    expect(verbose.stderr).toMatch(STACK_LINE);
  });
});
