// Range-sharded copies end to end against the local stack: fauxqs (SQS), Swift (S3) and the GES
// emulator. As in fanout.test.ts, the test plays Lambda's SQS event source: it receives, hands
// records to handleCopyMessages (one call per invocation) and deletes what did not fail.
import { createHash } from 'node:crypto';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { runScheduled } from '../../lib/app/scheduled-run.js';
import { putJson } from '../../lib/store/s3-objects.js';
import { loadConfig } from '../../lib/config.js';
import { handleCopyMessages, type CopyRecord, type WorkerOptions } from '../../lib/fanout/index.js';
import { shardPlanKey } from '../../lib/fanout/shards.js';
import { ArchiverError, ErrorCodes } from '../../lib/errors.js';
import { createLogger, silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { createRuntime, type Runtime } from '../../lib/app/runtime.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listInProgressUploads, listKeys, s3Client, sqsClient, uniqueName } from '../support/aws.js';
import { tokenEnv } from '../support/cli.js';

const MiB = 1024 * 1024;
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B = '9a8b7c6d-5e4f-4321-8765-0fedcba98765';
const HUGE = { name: 'huge.bin', bytes: 16 * MiB + 777 };
const SMALL = { name: 'small.bin', bytes: MiB + 3 };
const TOKEN = 'static-token-1';
// Patient enough for a loaded machine (Swift answers 503 SlowDown under load); no test here waits on a retryable failure.
const retry = createRetryPolicy({ maxAttempts: 6, baseDelayMs: 20, maxDelayMs: 1_000, maxElapsedMs: 20_000 });
const FINALIZE = { settleDelayMs: 150 };
/** 5 MiB parts and shards: HUGE makes 4 shards (three of one part, and the rest). */
const SHARD_ENV = { ARCHIVE_PART_SIZE_MB: '5', ARCHIVE_SHARD_MB: '5', ARCHIVE_STREAMS: '1' };
const HUGE_KEY = `ges-backups/${G}/${B}/${HUGE.name}`;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let emulator: Emulator;
let s3: S3Client;
let sqs: SQSClient;
const runtimes: Runtime[] = [];
const clients: S3Client[] = [];

beforeAll(async () => {
  s3 = s3Client();
  sqs = sqsClient();
  emulator = await startEmulator({ staticTokens: [TOKEN], graphs: [{ id: G, backups: [{ id: B, name: 'b', files: [HUGE, SMALL] }] }] });
});

afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()));
  await emulator.close();
  for (const c of [s3, ...clients]) c.destroy();
  sqs.destroy();
});

beforeEach(() => {
  emulator.faults.reset();
});

interface Received {
  record: CopyRecord;
  receiptHandle: string;
  type: string;
}

function runtime(bucket: string, env: Record<string, string>, client = s3): Runtime {
  const rt = createRuntime(loadConfig({ ...tokenEnv(emulator, bucket, TOKEN), ...env }), process.env['DEBUG_SHARDS'] ? createLogger({ level: 'warn', stacks: false }) : silentLogger(), { s3: client, sqs, retry });
  runtimes.push(rt);
  return rt;
}

/** A backup fanned out by a scheduled run short of time: one copy-file message per file. */
async function fanOut(env: Record<string, string> = {}, client = s3): Promise<{ bucket: string; queueUrl: string; rt: Runtime }> {
  const bucket = await createTestBucket('shards');
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('copy-shards') }));
  const rt = runtime(bucket, { COPY_QUEUE_URL: QueueUrl!, MANIFEST_URI: `s3://${bucket}/m.json`, ...SHARD_ENV, ...env }, client);
  await putJson(rt, bucket, 'm.json', { version: 1, graphs: [{ graphId: G, backups: [B] }] });
  const report = await runScheduled(rt, { deadline: Date.now() });
  expect(report.backups.map((b) => b.status)).toEqual(['queued']);
  return { bucket, queueUrl: QueueUrl!, rt };
}

async function receive(queueUrl: string, waitSeconds = 1): Promise<Received[]> {
  const res = await sqs.send(new ReceiveMessageCommand({
    QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds, VisibilityTimeout: 60, MessageSystemAttributeNames: ['ApproximateReceiveCount'],
  }));
  return (res.Messages ?? []).map((m) => ({
    record: { messageId: m.MessageId!, body: m.Body!, attributes: m.Attributes },
    receiptHandle: m.ReceiptHandle!,
    type: (JSON.parse(m.Body!) as { type: string }).type,
  }));
}

/** Receives until `count` messages are in hand (or the queue stays empty). */
async function receiveCount(queueUrl: string, count: number): Promise<Received[]> {
  const got: Received[] = [];
  for (let i = 0; i < 10 && got.length < count; i++) got.push(...await receive(queueUrl));
  return got;
}

/** One invocation per message, all at once; deletes the messages that did not fail. Returns the failed ones. */
async function invokeEach(rt: Runtime, queueUrl: string, messages: Received[], options: () => WorkerOptions = () => ({})): Promise<Received[]> {
  const results = await Promise.all(messages.map((m) => handleCopyMessages(rt, [m.record], { finalize: FINALIZE, ...options() })));
  const failed: Received[] = [];
  for (const [i, m] of messages.entries()) {
    if (results[i]!.batchItemFailures.length > 0) failed.push(m);
    else await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.receiptHandle }));
  }
  return failed;
}

/** Copies the fanned-out files: the small one whole, the huge one sharded. Returns the shard messages. */
async function planShards(rt: Runtime, queueUrl: string): Promise<Received[]> {
  const copyFiles = await receiveCount(queueUrl, 2);
  expect(copyFiles.map((m) => m.type)).toEqual(['copy-file', 'copy-file']);
  expect(await invokeEach(rt, queueUrl, copyFiles)).toEqual([]);
  const shards = await receiveCount(queueUrl, 4);
  expect(shards.map((m) => m.type)).toEqual(['copy-shard', 'copy-shard', 'copy-shard', 'copy-shard']);
  return shards.sort((a, b) => shardOf(a) - shardOf(b));
}

const shardOf = (m: Received): number => (JSON.parse(m.record.body) as { shard: number }).shard;

/** Invokes the worker on whatever the queue holds, one invocation per batch, until it stays empty. */
async function drain(rt: Runtime, queueUrl: string, options: () => WorkerOptions = () => ({})): Promise<{ bodies: string[]; failures: number }> {
  const bodies: string[] = [];
  let failures = 0;
  for (let round = 0; round < 60; round++) {
    const batch = await receive(queueUrl);
    if (batch.length === 0) break;
    bodies.push(...batch.map((m) => m.record.body));
    failures += (await invokeEach(rt, queueUrl, batch, options)).length;
  }
  return { bodies, failures };
}

async function expectArchived(bucket: string): Promise<void> {
  const manifest = JSON.parse((await getObjectBytes(bucket, `ges-backups/${G}/${B}/manifest.json`)).toString()) as {
    files: { name: string; bytes: number; sha256: string }[];
  };
  expect(manifest.files.map((f) => f.name).sort()).toEqual([HUGE.name, SMALL.name]);
  for (const f of manifest.files) {
    const body = await getObjectBytes(bucket, `ges-backups/${G}/${B}/${f.name}`);
    expect(f.bytes).toBe(emulator.fileBytes(G, B, f.name));
    expect(body.length).toBe(f.bytes);
    expect(sha256(body)).toBe(emulator.fileSha256(G, B, f.name));
    expect(f.sha256).toBe(emulator.fileSha256(G, B, f.name));
  }
  expect(await listKeys(bucket, 'ges-backups/_state/')).toEqual([]);
  expect(await listInProgressUploads(bucket)).toEqual([]);
}

describe('range-sharded copies', () => {
  it('a file larger than ARCHIVE_SHARD_MB is copied by shards on parallel invocations; manifest.json has the whole file\'s SHA-256', async () => {
    // Prepare: ~8 MiB/s per connection, so a shard takes a good half second
    const { bucket, queueUrl, rt } = await fanOut();
    const shards = await planShards(rt, queueUrl);
    emulator.faults.throttleDownloads(8 * MiB);
    const spans: { start: number; end: number }[] = [];

    // Act: four invocations at once, one shard each
    const failed = await Promise.all(shards.map(async (m) => {
      const start = Date.now();
      const f = await invokeEach(rt, queueUrl, [m]);
      spans.push({ start, end: Date.now() });
      return f;
    }));
    emulator.faults.throttleDownloads(null);
    const rest = await drain(rt, queueUrl);

    // Assess: the shards overlapped in time, named the work only, and the file is whole
    expect(failed.flat()).toEqual([]);
    expect(rest.failures).toBe(0);
    expect(Math.max(...spans.map((s) => s.start))).toBeLessThan(Math.min(...spans.map((s) => s.end)));
    for (const m of shards) {
      expect(m.record.body).not.toMatch(/https?:|Signature|AccessKeyId|token|uploadId/i);
      expect(Object.keys(JSON.parse(m.record.body) as object).sort()).toEqual(['backupId', 'fileName', 'graphId', 'planId', 'runId', 'shard', 'shardCount', 'type', 'v']);
    }
    await expectArchived(bucket);
  });

  it('a sharded file counts once as archived (onFileArchived, the FilesArchived metric), when its hash pass writes its receipt; a duplicate shard adds nothing', async () => {
    // Prepare
    const { bucket, queueUrl, rt } = await fanOut();
    const shards = await planShards(rt, queueUrl);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: shards[0]!.record.body }));
    const archived: [string, number][] = [];
    const options = (): WorkerOptions => ({ onFileArchived: (f) => archived.push([f.name, f.bytes]) });

    // Act: the shards one after another (shards finishing at the very same instant may both
    // complete and both queue a hash pass on a store without conditional writes, like Swift:
    // the receipt is the same, see docs/lambda.md; parallel shards are the first test's case)
    for (const shard of shards) expect(await invokeEach(rt, queueUrl, [shard], options)).toEqual([]);
    const rest = await drain(rt, queueUrl, options);

    // Assess: the whole file once (the small file is a whole-file copy: the copier counts it)
    expect(rest.failures).toBe(0);
    expect(archived).toEqual([[HUGE.name, HUGE.bytes]]);
    await expectArchived(bucket);
  });

  it('a duplicate shard message changes nothing, before or after the file is archived', async () => {
    // Prepare
    const { bucket, queueUrl, rt } = await fanOut();
    const shards = await planShards(rt, queueUrl);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: shards[1]!.record.body }));

    // Act: the shards, their duplicate among them, then a late duplicate once archived
    expect(await invokeEach(rt, queueUrl, shards)).toEqual([]);
    const first = await drain(rt, queueUrl);
    const before = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: HUGE_KEY }));
    const manifestBefore = await getObjectBytes(bucket, `ges-backups/${G}/${B}/manifest.json`);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: shards[2]!.record.body }));
    const late = await drain(rt, queueUrl);

    // Assess
    expect(first.failures + late.failures).toBe(0);
    expect(first.bodies.filter((b) => b === shards[1]!.record.body)).toHaveLength(1);
    expect(late.bodies).toEqual([shards[2]!.record.body]);
    const after = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: HUGE_KEY }));
    expect(after.ETag).toBe(before.ETag);
    expect(after.LastModified).toEqual(before.LastModified);
    expect(await getObjectBytes(bucket, `ges-backups/${G}/${B}/manifest.json`)).toEqual(manifestBefore);
    await expectArchived(bucket);
  });

  it('a shard whose worker dies mid-copy (no handover) is delivered again and the file completes', async () => {
    // Prepare: a slow source, so the invocation is cut off inside the shard's part
    const { bucket, queueUrl, rt } = await fanOut();
    const shards = await planShards(rt, queueUrl);
    emulator.faults.throttleDownloads(2 * MiB);
    const dying = new AbortController();
    setTimeout(() => dying.abort(new ArchiverError(ErrorCodes.Aborted, 'the worker died')), 700);

    // Act: shard 0 dies; SQS delivers it again later (the same record), with the other shards
    const died = await handleCopyMessages(rt, [shards[0]!.record], { finalize: FINALIZE, signal: dying.signal });
    emulator.faults.throttleDownloads(null);
    const stateAfterDeath = await listKeys(bucket, `ges-backups/_state/${G}/${B}/shards/`);
    const uploadsAfterDeath = await listInProgressUploads(bucket);
    expect(await invokeEach(rt, queueUrl, shards)).toEqual([]);
    const rest = await drain(rt, queueUrl);

    // Assess: the death left the shared upload (no checkpoint, no receipt), the redelivery finished it
    expect(died.batchItemFailures).toEqual([{ itemIdentifier: shards[0]!.record.messageId }]);
    expect(stateAfterDeath).toEqual([]);
    expect(uploadsAfterDeath.map((u) => u.Key)).toEqual([HUGE_KEY]);
    expect(rest.failures).toBe(0);
    await expectArchived(bucket);
  });

  it('a shard short of time hands over (shard checkpoint + continuation) and the chain completes', async () => {
    // Prepare: shards of two 5 MiB parts, ~6 MiB/s, so an invocation of ~1.2 s stores about one part
    const { bucket, queueUrl, rt } = await fanOut({ ARCHIVE_SHARD_MB: '10' });
    const copyFiles = await receiveCount(queueUrl, 2);
    expect(await invokeEach(rt, queueUrl, copyFiles)).toEqual([]);
    emulator.faults.throttleDownloads(6 * MiB);

    // Act
    const drained = await drain(rt, queueUrl, () => ({ deadline: Date.now() + 1_700, handoverMarginMs: 500 }));

    // Assess
    expect(drained.failures).toBe(0);
    const continuations = drained.bodies.map((b) => JSON.parse(b) as { type: string; checkpointKey?: string; hop?: number })
      .filter((m) => m.type === 'copy-shard' && m.checkpointKey !== undefined);
    expect(continuations.length).toBeGreaterThanOrEqual(1);
    for (const c of continuations) expect(c.checkpointKey).toMatch(new RegExp(`^ges-backups/_state/${G}/${B}/shards/${HUGE.name}/checkpoints/[01]\\.json$`));
    await expectArchived(bucket);
  });

  it('the whole-file SHA-256 pass hands over at the deadline and a hash-file message continues it', async () => {
    // Prepare: the store answers the first read-back of the object late (after the handover time)
    const slow = s3Client();
    clients.push(slow);
    let delayed = false;
    slow.middlewareStack.add((next, context) => async (args) => {
      const input = args.input as { Key?: string; Range?: string };
      if (context.commandName === 'GetObjectCommand' && input.Key === HUGE_KEY && input.Range !== undefined && !delayed) {
        delayed = true;
        await new Promise((r) => setTimeout(r, 4_000));
      }
      return next(args);
    }, { step: 'initialize', name: 'slowReadBack' });
    const { bucket, queueUrl, rt } = await fanOut({}, slow);
    const shards = await planShards(rt, queueUrl);

    // Act: every shard, one after the other (the last one completes the upload and queues the hash pass); a duplicate
    // shard meanwhile; then the pass with a deadline the read-back misses; then its continuation
    for (const shard of shards) expect(await invokeEach(rt, queueUrl, [shard])).toEqual([]);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: shards[0]!.record.body }));
    const queued = await receiveCount(queueUrl, 2);
    const duplicate = queued.filter((m) => m.type === 'copy-shard');
    const hashPass = queued.filter((m) => m.type === 'hash-file');
    expect(await invokeEach(rt, queueUrl, duplicate)).toEqual([]);
    expect(await invokeEach(rt, queueUrl, hashPass, () => ({ deadline: Date.now() + 3_000, handoverMarginMs: 500 }))).toEqual([]);
    const rest = await drain(rt, queueUrl);

    // Assess: one pass, queued once (the duplicate shard queued none), handed over once with progress
    const hashKey = `ges-backups/_state/${G}/${B}/shards/${HUGE.name}/hash.json`;
    expect(delayed).toBe(true);
    expect(duplicate).toHaveLength(1);
    expect(hashPass.map((m) => JSON.parse(m.record.body) as object)).toEqual([expect.objectContaining({ checkpointKey: hashKey })]);
    expect(rest.failures).toBe(0);
    expect(rest.bodies.map((b) => JSON.parse(b) as object)).toEqual([expect.objectContaining({ type: 'hash-file', checkpointKey: hashKey, hop: 1, stalledHops: 0 })]);
    await expectArchived(bucket);
  });

  it('a copy-file message delivered again queues nothing while its plan is fresh, and the unfinished shards once the planner is taken for dead', async () => {
    // Prepare: the file is sharded; shard 0 copied; the other shard messages lost (the planner died sending them)
    const { bucket, queueUrl, rt } = await fanOut();
    const copyFiles = await receiveCount(queueUrl, 2);
    const hugeCopy = copyFiles.find((m) => m.record.body.includes(HUGE.name))!;
    expect(await invokeEach(rt, queueUrl, copyFiles)).toEqual([]);
    const shards = (await receiveCount(queueUrl, 4)).sort((a, b) => shardOf(a) - shardOf(b));
    expect(await invokeEach(rt, queueUrl, [shards[0]!])).toEqual([]);
    for (const m of shards.slice(1)) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.receiptHandle }));
    const planKey = shardPlanKey('ges-backups/', G, B, HUGE.name);

    // Act: the copy-file message again, with the plan fresh, then with the plan 21 minutes old
    expect(await invokeEach(rt, queueUrl, [hugeCopy])).toEqual([]);
    const whileFresh = await receive(queueUrl);
    const plan = JSON.parse((await getObjectBytes(bucket, planKey)).toString()) as { createdAt: string };
    await putJson(rt, bucket, planKey, { ...plan, createdAt: new Date(Date.now() - 21 * 60_000).toISOString() });
    expect(await invokeEach(rt, queueUrl, [hugeCopy])).toEqual([]);
    const requeued = (await receiveCount(queueUrl, 3)).sort((a, b) => shardOf(a) - shardOf(b));
    expect(await invokeEach(rt, queueUrl, requeued)).toEqual([]);
    const rest = await drain(rt, queueUrl);

    // Assess
    expect(whileFresh).toEqual([]);
    expect(requeued.map(shardOf)).toEqual([1, 2, 3]);
    expect(rest.failures).toBe(0);
    await expectArchived(bucket);
  });

  it('two planners of the same file at once leave one plan in use and no upload behind', async () => {
    // Prepare
    const { bucket, queueUrl, rt } = await fanOut();
    const copyFiles = await receiveCount(queueUrl, 2);
    const hugeCopy = copyFiles.find((m) => m.record.body.includes(HUGE.name))!;

    // Act: the huge file's copy-file message on two invocations at once (a duplicate delivery)
    const results = await Promise.all([hugeCopy, hugeCopy, ...copyFiles.filter((m) => m !== hugeCopy)]
      .map((m) => handleCopyMessages(rt, [m.record], { finalize: FINALIZE })));
    for (const m of copyFiles) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.receiptHandle }));
    const drained = await drain(rt, queueUrl);

    // Assess
    expect(results.flatMap((r) => r.batchItemFailures)).toEqual([]);
    expect(drained.failures).toBe(0);
    expect([4, 8]).toContain(drained.bodies.filter((b) => b.includes('"copy-shard"')).length);
    await expectArchived(bucket);
  });

  it('a shard that fails on its last delivery aborts the file\'s upload and drops its state before the dead-letter queue', async () => {
    // Prepare: every delivery is the last (MAX_RECEIVE_COUNT 1); the source refuses every link
    const { bucket, queueUrl, rt } = await fanOut({ MAX_RECEIVE_COUNT: '1' });
    const shards = await planShards(rt, queueUrl);
    expect(await listInProgressUploads(bucket)).toHaveLength(1);
    emulator.faults.obsStatus(HUGE.name, 403, 1_000);

    // Act
    const failed = await invokeEach(rt, queueUrl, [shards[0]!]);
    emulator.faults.reset();
    const others = await invokeEach(rt, queueUrl, shards.slice(1));

    // Assess: the upload is gone with the plan; the other shards, of a plan no longer current, change nothing
    expect(failed).toHaveLength(1);
    expect(await listInProgressUploads(bucket)).toEqual([]);
    expect(await listKeys(bucket, `ges-backups/_state/${G}/${B}/checkpoints/`)).toEqual([]);
    expect(others).toEqual([]);
    expect(await listKeys(bucket, HUGE_KEY)).toEqual([]);
  });

  it('a source that changes between shards restarts the file from a new plan; the archive has the new content', async () => {
    // Prepare: shard 0 copied from the first version
    const { bucket, queueUrl, rt } = await fanOut();
    const shards = await planShards(rt, queueUrl);
    const oldPlan = (await getObjectBytes(bucket, shardPlanKey('ges-backups/', G, B, HUGE.name))).toString();
    expect(await invokeEach(rt, queueUrl, [shards[0]!])).toEqual([]);
    const oldSha = emulator.fileSha256(G, B, HUGE.name);
    emulator.faults.changeFile(G, B, HUGE.name, 'second-version');

    // Act
    expect(await invokeEach(rt, queueUrl, shards.slice(1))).toEqual([]);
    const rest = await drain(rt, queueUrl);

    // Assess: one restart (copy-file with restarts 1), a new plan, the old upload aborted
    expect(rest.failures).toBe(0);
    const restarts = rest.bodies.map((b) => JSON.parse(b) as { type: string; restarts?: number }).filter((m) => m.type === 'copy-file');
    // (each shard that saw the change queues the file again; one of them plans it, once)
    expect(restarts.length).toBeGreaterThanOrEqual(1);
    for (const m of restarts) expect(m).toMatchObject({ fileName: HUGE.name, restarts: 1 });
    const newShards = rest.bodies.map((b) => JSON.parse(b) as { type: string; planId?: string; restarts?: number }).filter((m) => m.type === 'copy-shard');
    const oldPlanId = (JSON.parse(oldPlan) as { planId: string }).planId;
    // (four, or eight when two of those messages planned at the very same moment: see the next test)
    expect([4, 8]).toContain(newShards.length);
    for (const m of newShards) expect(m).toMatchObject({ restarts: 1 });
    expect(newShards.every((m) => m.planId !== oldPlanId)).toBe(true);
    expect(emulator.fileSha256(G, B, HUGE.name)).not.toBe(oldSha);
    await expectArchived(bucket);
  });
});
