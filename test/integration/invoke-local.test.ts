// scripts/invoke-local against the local stack: the bundles `sls package` builds (of a temporary
// copy of the service), run by the script in its own process, with Swift for S3, fauxqs for SQS and
// SNS, and the GES emulator; the archive and the alert queue show what the handlers did.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { fileKey, manifestKey } from '../../lib/store/keys.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { alertQueue, alertsOn, createQueue } from '../support/alert-queue.js';
import { createTestBucket, listKeys, s3Client, s3Endpoint, snsClient, sqsClient, sqsEndpoint } from '../support/aws.js';
import { copyService, packageService } from '../support/sls-package.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B1 = '0f1e2d3c-4b5a-4697-8877-665544332211';
const TOKEN = 'invoke-local-token';
const PREFIX = 'ges-backups/';

let serviceDir: string;
let packageDir: string;
let emulator: Emulator;
let s3: S3Client;
let sqs: SQSClient;
let sns: SNSClient;
let bucket: string;
let env: NodeJS.ProcessEnv;
let alerts: { topicArn: string; queueUrl: string };

/** The same queue on the endpoint's host (fauxqs names queues on sqs.<region>.localhost, which does not resolve here). */
const onEndpoint = (url: string): string => `${sqsEndpoint()}${new URL(url).pathname}`;

/** Runs the script in its own process (asynchronously: the GES emulator answers from this one). */
function invokeLocal(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(root, 'scripts/invoke-local'), ...args], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

beforeAll(async () => {
  serviceDir = copyService();
  packageDir = join(serviceDir, '.package');
  packageService(serviceDir, packageDir);
  s3 = s3Client();
  sqs = sqsClient();
  sns = snsClient();
  emulator = await startEmulator({
    staticTokens: [TOKEN],
    graphs: [{ id: G, backups: [{ id: B1, name: 'b1', files: [{ name: 'metadata.xml', bytes: 4096 }, { name: 'vertices.bin', bytes: 3 * 1024 * 1024 + 7 }] }] }],
  });
  bucket = await createTestBucket('invoke-local');
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'config/manifest.json', Body: JSON.stringify({ version: 1, graphs: [{ graphId: G, backups: 'all' }] }) }));
  alerts = await alertQueue(sqs, sns, 'invoke-local');
  // What serverless.yml gives the functions, pointed at the local stack (the script adds path-style S3 and checksums).
  env = {
    PATH: process.env['PATH'], HOME: process.env['HOME'],
    AWS_ACCESS_KEY_ID: process.env['AWS_ACCESS_KEY_ID'], AWS_SECRET_ACCESS_KEY: process.env['AWS_SECRET_ACCESS_KEY'], AWS_REGION: process.env['AWS_REGION'],
    AWS_ENDPOINT_URL_S3: s3Endpoint(), AWS_ENDPOINT_URL_SQS: sqsEndpoint(),
    ARCHIVE_BUCKET: bucket, ARCHIVE_PREFIX: PREFIX, MANIFEST_URI: `s3://${bucket}/config/manifest.json`,
    COPY_QUEUE_URL: onEndpoint((await createQueue(sqs, 'invoke-local-copy')).url),
    DRILL_QUEUE_URL: onEndpoint((await createQueue(sqs, 'invoke-local-drill')).url),
    ALERT_TOPIC_ARN: alerts.topicArn,
    GES_ENDPOINT: emulator.gesEndpoint, GES_PROJECT_ID: emulator.projectId, GES_AUTH_TOKEN: TOKEN,
    DOWNLOAD_ALLOWED_HOSTS: '127.0.0.1', INLINE_THROUGHPUT_MBPS: '1000', LOG_LEVEL: 'warn',
  };
}, 300_000);

afterAll(async () => {
  s3.destroy();
  sqs.destroy();
  sns.destroy();
  await emulator?.close();
  if (serviceDir) rmSync(serviceDir, { recursive: true, force: true });
});

describe('scripts/invoke-local', () => {
  it('runs the built scheduledRun, then the drill (restoreDrill, drillWorker --drain) against the local stack', async () => {
    // Act: the scheduled run archives the backup
    const run = await invokeLocal(['scheduledRun', '--package', packageDir]);

    // Assess: its report on stdout (logs on stderr), the backup in the bucket
    expect({ status: run.status, stderr: run.status === 0 ? '' : run.stderr }).toEqual({ status: 0, stderr: '' });
    const report = JSON.parse(run.stdout) as { totals: { archived: number; failed: number } };
    expect(report.totals).toMatchObject({ archived: 1, failed: 0 });
    expect((await listKeys(bucket, `${PREFIX}${G}/${B1}/`)).sort()).toEqual([
      fileKey(PREFIX, G, B1, 'SHA256SUMS'), manifestKey(PREFIX, G, B1), fileKey(PREFIX, G, B1, 'metadata.xml'), fileKey(PREFIX, G, B1, 'vertices.bin'),
    ].sort());

    // Act: the drill plans (one message for the one backup); the archived file is then damaged; the worker drains the queue
    const plan = await invokeLocal(['restoreDrill', '--package', packageDir]);
    expect(plan.status).toBe(0);
    expect(JSON.parse(plan.stdout)).toMatchObject({ archived: 1, queuedCount: 1, queued: [{ graphId: G, backupId: B1 }] });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: fileKey(PREFIX, G, B1, 'metadata.xml'), Body: Buffer.alloc(4096, 1) }));
    const drill = await invokeLocal(['drillWorker', '--drain', '--package', packageDir]);

    // Assess: one invocation, its message done (not failed), and the alert naming the damaged file
    expect(drill.status).toBe(0);
    expect(drill.stdout).toContain('"batchItemFailures": []');
    expect(drill.stderr).toContain('DrillFilesChecked');
    const received = await alertsOn(sqs, alerts.queueUrl, 5);
    expect(received).toHaveLength(1);
    expect(received[0]!.body.failures).toEqual([expect.objectContaining({ backupId: B1, file: 'metadata.xml', code: 'VERIFY_FAILED', message: expect.stringContaining('altered') as unknown })]);
  }, 240_000);

  it('`stack` starts a local stack, prints the environment that points at it, and stops it on Ctrl-C', async () => {
    // Act: start it, wait for the environment it prints
    const child = spawn('bash', [join(root, 'scripts/invoke-local'), 'stack', '--out', join(serviceDir, 'stack.env')], { env: { PATH: process.env['PATH'], HOME: process.env['HOME'] }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    for (let i = 0; i < 120 && !stderr.includes('Local stack ready'); i++) await new Promise((r) => setTimeout(r, 500));
    const printed = Object.fromEntries([...stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1]!, m[2]!]));

    // Assess: every endpoint it printed answers; after SIGINT none does
    expect(stderr).toContain('Local stack ready');
    expect(readFileSync(join(serviceDir, 'stack.env'), 'utf8')).toBe(stdout);
    for (const name of ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_SQS', 'GES_ENDPOINT']) expect(new URL(printed[name]!).hostname).toBe('127.0.0.1');
    expect(printed).toMatchObject({ ARCHIVE_BUCKET: 'ges-archive-local', DRILL_QUEUE_URL: expect.stringContaining(printed['AWS_ENDPOINT_URL_SQS']!) as unknown });
    const answers = async (url: string): Promise<boolean> => fetch(url, { signal: AbortSignal.timeout(3_000) }).then(async (r) => { await r.body?.cancel(); return true; }, () => false);
    expect(await answers(`${printed['AWS_ENDPOINT_URL_S3']!}/healthcheck`)).toBe(true);
    expect(await answers(printed['GES_ENDPOINT']!)).toBe(true);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(await answers(`${printed['AWS_ENDPOINT_URL_S3']!}/healthcheck`)).toBe(false);
    expect(await answers(printed['AWS_ENDPOINT_URL_SQS']!)).toBe(false);
  }, 120_000);

  it('refuses without a bundle or without the local stack, naming the fix, and never runs against AWS', async () => {
    const noBundle = await invokeLocal(['restoreDrill', '--package', join(serviceDir, 'nowhere')]);
    expect(noBundle.status).toBe(2);
    expect(noBundle.stderr).toContain('run `npm run package` first');

    const noStack = await invokeLocal(['restoreDrill', '--package', packageDir], { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' });
    expect(noStack.status).toBe(2);
    expect(noStack.stderr).toContain('nothing answers at http://127.0.0.1:9 (AWS_ENDPOINT_URL_S3');
    expect(noStack.stderr).toContain('scripts/invoke-local stack');

    const aws = await invokeLocal(['restoreDrill', '--package', packageDir], { AWS_ENDPOINT_URL_S3: '' });
    expect(aws.status).toBe(2);
    expect(aws.stderr).toContain('AWS_ENDPOINT_URL_S3 is not set');
  }, 120_000);
});
