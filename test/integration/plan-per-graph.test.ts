// Planning per graph at scale, against the local stack: the GES emulator with 300 graphs,
// fauxqs (SQS + SNS) and Swift (S3). The test drives runScheduled and handleCopyMessages (what
// the Lambda handlers call) and plays Lambda's SQS event source itself.
import type { SNSClient } from '@aws-sdk/client-sns';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { runScheduled } from '../../lib/app/scheduled-run.js';
import { graphReportKey } from '../../lib/store/keys.js';
import { archiveOne } from '../../lib/archive/run.js';
import { getJson, putJson } from '../../lib/store/s3-objects.js';
import type { RunReport } from '../../lib/archive/types.js';
import { loadConfig } from '../../lib/config.js';
import { handleCopyMessages, parseQueueMessage, type CopyRecord } from '../../lib/fanout/index.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { createRuntime, type Runtime } from '../../lib/app/runtime.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import type { EmulatorGraphSpec } from '../emulator/types.js';
import { alertQueue, alertsOn, createQueue } from '../support/alert-queue.js';
import { createTestBucket, listKeys, s3Client, snsClient, sqsClient } from '../support/aws.js';
import { tokenEnv } from '../support/cli.js';

const MiB = 1024 * 1024;
const TOKEN = 'static-token-plan';
const GRAPHS = 300;
/** Graphs (`all`, two backups) whose newest backup holds one file too large for the worker's time budget: fanned out. */
const LARGE = new Set([7, 151]);
const MISSING_GRAPH = 'graph-not-in-ges';
const fastRetry = createRetryPolicy({ maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 50, maxElapsedMs: 5_000 });

const graphId = (i: number): string => `graph-${String(i).padStart(3, '0')}`;
/** Every third graph has one backup, the others two; `latest` for even graphs, `all` for odd. */
const backupCount = (i: number): number => (i % 3 === 0 ? 1 : 2);
const selector = (i: number): 'latest' | 'all' => (i % 2 === 0 ? 'latest' : 'all');

function graphSpecs(): EmulatorGraphSpec[] {
  return Array.from({ length: GRAPHS }, (_, i) => ({
    id: graphId(i),
    backups: Array.from({ length: backupCount(i) }, (_, j) => ({
      id: `b${j}`,
      name: `${graphId(i)}-b${j}`,
      // The newest backup is the last one (the emulator steps backup times by an hour).
      files: LARGE.has(i) && j === backupCount(i) - 1
        ? [{ name: 'big.bin', bytes: 20 * MiB }]
        : [{ name: 'meta.json', bytes: 512 + i }, { name: 'data.bin', bytes: 2048 + j }],
    })),
  }));
}

/** The backups a full run must leave archived: the newest of a `latest` graph, every one of an `all` graph. */
function expectedManifests(): string[] {
  const keys: string[] = [];
  for (let i = 0; i < GRAPHS; i++) {
    const n = backupCount(i);
    const ids = selector(i) === 'latest' ? [`b${n - 1}`] : Array.from({ length: n }, (_, j) => `b${j}`);
    keys.push(...ids.map((b) => `ges-backups/${graphId(i)}/${b}/manifest.json`));
  }
  return keys.sort();
}

let emulator: Emulator;
let s3: S3Client;
let sqs: SQSClient;
let sns: SNSClient;
const runtimes: Runtime[] = [];

beforeAll(async () => {
  s3 = s3Client();
  sqs = sqsClient();
  sns = snsClient();
  emulator = await startEmulator({ staticTokens: [TOKEN], graphs: graphSpecs() });
});

afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()));
  await emulator.close();
  s3.destroy();
  sqs.destroy();
  sns.destroy();
});

function runtime(bucket: string, env: Record<string, string>): Runtime {
  const config = loadConfig({ ...tokenEnv(emulator, bucket, TOKEN), ...env });
  const rt = createRuntime(config, silentLogger(), { s3, sqs, sns, retry: fastRetry });
  runtimes.push(rt);
  return rt;
}

/**
 * Lambda's SQS event source, played by the test: receive up to 10, hand them to the worker with
 * a deadline 30 s away (and no handover margin), delete what did not fail. Until the queue stays empty.
 */
async function drain(rt: Runtime, queueUrl: string, reports: RunReport[] = []): Promise<{ bodies: string[]; failures: number }> {
  const bodies: string[] = [];
  let failures = 0;
  for (let round = 0; round < 200; round++) {
    const res = await sqs.send(new ReceiveMessageCommand({
      QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 300, MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    }));
    const batch = res.Messages ?? [];
    if (batch.length === 0) break;
    const records: CopyRecord[] = batch.map((m) => ({ messageId: m.MessageId!, body: m.Body!, attributes: m.Attributes }));
    bodies.push(...records.map((r) => r.body));
    const result = await handleCopyMessages(rt, records, {
      deadline: Date.now() + 30_000, handoverMarginMs: 0, concurrency: 10, finalize: { settleDelayMs: 100 },
      onGraphReport: (r) => reports.push(r),
    });
    const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
    failures += failed.size;
    for (const m of batch) {
      if (!failed.has(m.MessageId!)) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
    }
  }
  return { bodies, failures };
}

describe('planning per graph', () => {
  it('300 graphs: the scheduled run queues one planning message per graph; the workers archive everything, report each graph and alert the graph that failed', async () => {
    // Prepare: a manifest naming 300 graphs and one GES does not know; graph-000's newest backup
    // archived beforehand by a manual run.
    const bucket = await createTestBucket('plan-per-graph');
    const queue = await createQueue(sqs, 'plan-copy');
    const alerts = await alertQueue(sqs, sns, 'plan');
    // 1 MiB/s: the 20 MiB files need more than half of the worker's 30 s, so those graphs fan out.
    const rt = runtime(bucket, {
      COPY_QUEUE_URL: queue.url, MANIFEST_URI: `s3://${bucket}/config/manifest.json`, ALERT_TOPIC_ARN: alerts.topicArn, INLINE_THROUGHPUT_MBPS: '1',
    });
    const graphs = [
      ...Array.from({ length: GRAPHS }, (_, i) => ({ graphId: graphId(i), backups: selector(i) })),
      { graphId: MISSING_GRAPH, backups: 'latest' as const },
    ];
    await putJson(rt, bucket, 'config/manifest.json', { version: 1, graphs });
    const manual = await archiveOne(rt, graphId(0), 'b0', { trigger: 'manual' });
    expect(manual.backups.map((b) => b.status)).toEqual(['archived']);
    const listsBefore = emulator.stats.listRequests;

    // Act: the scheduled run (with all the time in the world: it still only queues)
    const report = await runScheduled(rt, {});

    // Assess: no graph was listed by the run itself; 301 planning messages, its report says so
    expect(report.mode).toBe('per-graph');
    expect(report.graphsPlanned).toBe(GRAPHS + 1);
    expect(report.backups).toEqual([]);
    expect(emulator.stats.listRequests).toBe(listsBefore);
    const stored = await getJson(rt, bucket, report.reportKey!) as RunReport;
    expect(stored).toMatchObject({ runId: report.runId, graphsPlanned: GRAPHS + 1, trigger: 'schedule' });

    // Act: the workers drain the queue (planning messages, then the fanned-out copy messages)
    const graphReports: RunReport[] = [];
    const drained = await drain(rt, queue.url, graphReports);

    // Assess: every planning message was handled once, without a failure
    expect(drained.failures).toBe(0);
    const kinds = drained.bodies.map((b) => parseQueueMessage(b).type);
    expect(kinds.filter((k) => k === 'plan-graph')).toHaveLength(GRAPHS + 1);
    // Graphs 7 and 151 (`all`, two backups: three files) fanned out
    expect(kinds.filter((k) => k === 'copy-file')).toHaveLength(2 * 3);
    expect(graphReports).toHaveLength(GRAPHS + 1);

    // Assess: everything archived; each graph's report stored next to the run's
    const manifests = (await listKeys(bucket, 'ges-backups/')).filter((k) => k.endsWith('/manifest.json') && !k.includes('_runs/')).sort();
    expect(manifests).toEqual(expectedManifests());
    const reportKeys = await listKeys(bucket, `ges-backups/_runs/${report.runId}.graph.`);
    expect(reportKeys).toHaveLength(GRAPHS + 1);

    const byGraph = new Map(graphReports.map((r) => [r.graphId, r]));
    // A graph with two backups and `all` (newest first), copied inline by its planning worker
    expect(byGraph.get(graphId(1))!.backups.map((b) => [b.backupId, b.status])).toEqual([['b1', 'archived'], ['b0', 'archived']]);
    expect(byGraph.get(graphId(1))!.reportKey).toBe(graphReportKey('ges-backups/', report.runId, graphId(1)));
    // Too large for the worker's budget: fanned out, then archived by the copy messages
    expect(byGraph.get(graphId(7))!.backups.map((b) => [b.backupId, b.status])).toEqual([['b1', 'queued'], ['b0', 'queued']]);
    // Archived by the manual run: skipped, and still the graph's newest archived backup
    const g0 = byGraph.get(graphId(0))!;
    expect(g0.backups.map((b) => [b.backupId, b.status, b.reason?.code])).toEqual([['b0', 'skipped', 'ALREADY_ARCHIVED']]);
    expect(g0.newestArchived).toEqual([{ graphId: graphId(0), backupId: 'b0', backupTime: expect.any(String) as string }]);
    expect(byGraph.get(graphId(2))!.newestArchived?.[0]?.backupId).toBe('b1');

    // Assess: the graph GES does not know is reported failed and alerted; the others are not
    const missing = await getJson(rt, bucket, graphReportKey('ges-backups/', report.runId, MISSING_GRAPH)) as RunReport;
    expect(missing.backups).toEqual([expect.objectContaining({ graphId: MISSING_GRAPH, backupId: 'latest', status: 'failed' })]);
    const received = (await alertsOn(sqs, alerts.queueUrl, 2)).map((a) => a.body);
    const failures = received.flatMap((a) => a.failures);
    expect(received.every((a) => a.runId === report.runId && a.source === 'copyWorker')).toBe(true);
    expect(failures).toEqual([expect.objectContaining({ graphId: MISSING_GRAPH, backupId: 'latest' })]);

    // Act: a planning message delivered again after it was handled
    const again = drained.bodies.find((b) => b.includes(`"graphId":"${graphId(4)}"`) && b.includes('plan-graph'))!;
    const listsAfter = emulator.stats.listRequests;
    const downloadsAfter = emulator.stats.downloadRequests;
    const keysAfter = (await listKeys(bucket)).length;
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: again }));
    const redelivered: RunReport[] = [];
    const second = await drain(rt, queue.url, redelivered);

    // Assess: no double work: GES not asked, nothing downloaded or written, no report replaced
    expect(second).toEqual({ bodies: [again], failures: 0 });
    expect(redelivered).toEqual([]);
    expect(emulator.stats.listRequests).toBe(listsAfter);
    expect(emulator.stats.downloadRequests).toBe(downloadsAfter);
    expect((await listKeys(bucket)).length).toBe(keysAfter);
  }, 600_000);

  it('a planning message delivered again before its graph\'s report was stored plans again without copying twice, and fans out again what this run fanned out', async () => {
    // Prepare: one graph planned per graph (PLAN_PER_GRAPH_MIN_GRAPHS=1) whose newest backup fans out
    const bucket = await createTestBucket('plan-redelivery');
    const queue = await createQueue(sqs, 'plan-redelivery');
    const rt = runtime(bucket, {
      COPY_QUEUE_URL: queue.url, MANIFEST_URI: `s3://${bucket}/config/manifest.json`, INLINE_THROUGHPUT_MBPS: '1', PLAN_PER_GRAPH_MIN_GRAPHS: '1',
    });
    await putJson(rt, bucket, 'config/manifest.json', { version: 1, graphs: [{ graphId: graphId(7), backups: 'all' }, { graphId: graphId(8), backups: 'latest' }] });
    const report = await runScheduled(rt, {});
    expect(report.mode).toBe('per-graph');
    const planBodies = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }))).Messages!;
    expect(planBodies).toHaveLength(2);

    // Act: both planning messages are handled, then (the first worker died before storing its
    // reports) delivered once more with the reports gone
    const records = planBodies.map((m) => ({ messageId: m.MessageId!, body: m.Body! }));
    const first = await handleCopyMessages(rt, records, { deadline: Date.now() + 30_000, handoverMarginMs: 0 });
    const downloadsAfterFirst = emulator.stats.downloadRequests;
    for (const g of [graphId(7), graphId(8)]) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: graphReportKey('ges-backups/', report.runId, g) }));
    const replanned: RunReport[] = [];
    const second = await handleCopyMessages(rt, records, { deadline: Date.now() + 30_000, handoverMarginMs: 0, onGraphReport: (r) => replanned.push(r) });

    // Assess: graph-008 (archived inline the first time) is skipped; graph-007's backups, fanned
    // out by this very run, are queued again rather than skipped as FANOUT_IN_PROGRESS
    expect(first.batchItemFailures).toEqual([]);
    expect(second.batchItemFailures).toEqual([]);
    expect(emulator.stats.downloadRequests).toBe(downloadsAfterFirst);
    const status = new Map(replanned.map((r) => [r.graphId, r.backups.map((b) => [b.backupId, b.status, b.reason?.code])]));
    expect(status.get(graphId(8))).toEqual([['b1', 'skipped', 'ALREADY_ARCHIVED']]);
    expect(status.get(graphId(7))).toEqual([['b1', 'queued', undefined], ['b0', 'queued', undefined]]);

    // Act: the copy messages of both fan-outs (duplicates included) are consumed
    const drained = await drain(rt, queue.url);

    // Assess: archived once; the duplicate copy messages changed nothing
    expect(drained.failures).toBe(0);
    expect(drained.bodies.length).toBe(2 * 3);
    expect((await listKeys(bucket, `ges-backups/${graphId(7)}/`)).filter((k) => k.endsWith('manifest.json')).sort())
      .toEqual([`ges-backups/${graphId(7)}/b0/manifest.json`, `ges-backups/${graphId(7)}/b1/manifest.json`]);
  }, 120_000);
});
