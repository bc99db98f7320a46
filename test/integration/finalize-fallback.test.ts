// The finalize fallback for stores without conditional writes (issue 8, item 8): any answer
// that refuses If-None-Match switches to the lock, and a busy lock never loses the finalize:
// the worker's message comes back with a delay until the holder has written manifest.json or
// its lock has expired and is taken over. Against Swift (no conditional PUT) and fauxqs.
import { createHash } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'undici';
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { receiptKey } from '../../lib/store/receipts.js';
import { getJson, putJson } from '../../lib/store/s3-objects.js';
import { loadConfig } from '../../lib/config.js';
import { createCopier } from '../../lib/copy/copier.js';
import { finalizeBackup, finalizeLockKey, handleCopyMessages, jobKey } from '../../lib/fanout/index.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { createRuntime, type Runtime } from '../../lib/app/runtime.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, listKeys, s3Client, sqsClient, uniqueName } from '../support/aws.js';
import { recordWrites } from '../support/conditional-writes.js';
import { gesLinkSource } from '../support/copy.js';
import { tokenEnv } from '../support/cli.js';

const P = 'ges-backups/';
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B = '0f1e2d3c-4b5a-4697-8877-665544332211';
const TOKEN = 'static-token-1';
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 50, maxElapsedMs: 5_000 });
const sha256 = (b: string): string => createHash('sha256').update(b).digest('hex');

let emulator: Emulator;
let s3: S3Client;
let sqs: SQSClient;
const runtimes: Runtime[] = [];

beforeAll(async () => {
  s3 = s3Client();
  sqs = sqsClient();
  emulator = await startEmulator({ staticTokens: [TOKEN], graphs: [{ id: G, backups: [{ id: B, files: [{ name: 'a.bin', bytes: 10 }] }] }] });
});

afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()));
  await emulator.close();
  s3.destroy();
  sqs.destroy();
});

function runtime(bucket: string, client: S3Client, env: Record<string, string> = {}): Runtime {
  const rt = createRuntime(loadConfig({ ...tokenEnv(emulator, bucket, TOKEN), ...env }), silentLogger(), { s3: client, sqs, retry: fastRetry });
  runtimes.push(rt);
  return rt;
}

/** The backup's one file stored with its receipt, and the fan-out's job: ready to finalize. */
async function readyToFinalize(bucket: string): Promise<void> {
  const key = `${P}${G}/${B}/a.bin`;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'a' }));
  await putJson({ s3, retry: fastRetry }, bucket, receiptKey(P, G, B, 'a.bin'), { name: 'a.bin', key, bytes: 1, sha256: sha256('a'), completedAt: new Date().toISOString() });
  await putJson({ s3, retry: fastRetry }, bucket, jobKey(P, G, B), { version: 1, runId: 'run-f', graphId: G, backupId: B, createdAt: new Date().toISOString(), files: [{ name: 'a.bin' }] });
}

describe('finalize without conditional writes', () => {
  it('falls back to the lock when the store refuses If-None-Match with 400 InvalidArgument', async () => {
    // Prepare: a store that takes If-None-Match for an argument it does not support
    const client = s3Client();
    client.middlewareStack.add((next, context) => async (args) => {
      if (context.commandName === 'PutObjectCommand' && (args.input as { IfNoneMatch?: string }).IfNoneMatch !== undefined) {
        throw Object.assign(new Error('Unsupported header If-None-Match'), { name: 'InvalidArgument', $metadata: { httpStatusCode: 400 } });
      }
      return next(args);
    }, { step: 'initialize', name: 'refuseIfNoneMatch' });
    const bucket = await createTestBucket('finalize-400');
    await readyToFinalize(bucket);

    // Act
    const result = await finalizeBackup(runtime(bucket, client), G, B, { settleDelayMs: 100 });

    // Assess
    expect(result.outcome).toBe('written');
    expect(await getJson({ s3, retry: fastRetry }, bucket, `${P}${G}/${B}/manifest.json`)).toMatchObject({ graphId: G, backupId: B, runId: 'run-f' });
    expect(await listKeys(bucket, `${P}_state/`)).toEqual([]);
  });

  it('a busy lock whose holder died: the message comes back with a delay, takes the lock over once it is stale, and writes manifest.json', async () => {
    // Prepare: the file is in, a finalizer took the lock a moment ago and died
    const bucket = await createTestBucket('finalize-busy');
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('copy-busy'), Attributes: { VisibilityTimeout: '30' } }));
    const rt = runtime(bucket, s3, { COPY_QUEUE_URL: QueueUrl! });
    await readyToFinalize(bucket);
    await putJson(rt, bucket, finalizeLockKey(P, G, B), { token: 'dead-holder', at: Date.now() });
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify({ v: 1, type: 'copy-file', runId: 'run-f', graphId: G, backupId: B, fileName: 'a.bin' }) }));

    // Act: Lambda's event source, played by the test, until the queue stays empty
    const rounds: number[] = [];
    for (let i = 0; i < 15; i++) {
      const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }));
      if (Messages.length === 0) break;
      const result = await handleCopyMessages(rt, Messages.map((m) => ({ messageId: m.MessageId!, body: m.Body! })), {
        finalize: { settleDelayMs: 100, lockTtlMs: 2_500 }, finalizeRetryDelaySeconds: 1,
      });
      rounds.push(result.batchItemFailures.length);
      for (const m of Messages) await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle! }));
    }

    // Assess: it came back at least once (busy), never failed, and the manifest is there
    expect(rounds.length).toBeGreaterThanOrEqual(2);
    expect(rounds.every((failures) => failures === 0)).toBe(true);
    expect(await getJson({ s3, retry: fastRetry }, bucket, `${P}${G}/${B}/manifest.json`)).toMatchObject({ graphId: G, backupId: B });
    expect(await listKeys(bucket, `${P}_state/`)).toEqual([]);
  });

  it('what finalize learned is the copier\'s too: after Swift\'s 501, a copy with the same client sends its PutObject without If-None-Match', async () => {
    // Prepare: a client that records its writes, and a backup ready to finalize
    const client = s3Client();
    const sent = recordWrites(client);
    const bucket = await createTestBucket('finalize-shared');
    await readyToFinalize(bucket);
    const written = await finalizeBackup(runtime(bucket, client), G, B, { settleDelayMs: 100 });
    const dispatcher = new Agent();
    const copier = createCopier({ s3: client, logger: silentLogger(), retry: fastRetry, allowedHosts: ['127.0.0.1'], dispatcher });

    // Act
    const copied = await copier.copyFile({ bucket, key: `${P}${G}/${B}/again.bin`, fileName: 'a.bin', getLink: gesLinkSource(emulator, TOKEN, G, B, 'a.bin').getLink })
      .finally(() => dispatcher.close());

    // Assess: one If-None-Match in all (finalize's, answered 501); the copy's PUT went without
    expect(written.outcome).toBe('written');
    expect(copied.status).toBe('complete');
    expect(sent.filter((w) => w.ifNoneMatch !== undefined).map((w) => w.status)).toEqual([501]);
    expect(sent.filter((w) => w.command === 'PutObject').at(-1)).toMatchObject({ ifNoneMatch: undefined, status: 200 });
  });
});
