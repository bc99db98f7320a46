/**
 * `scripts/invoke-local stack`: starts the local stack the functions run against (OpenStack Swift
 * for S3, fauxqs for SQS + SNS, the GES + IAM + OBS emulator with two small demo backups), creates
 * the bucket, the run manifest, the copy and drill queues and the alert topic, and prints the
 * environment that points `scripts/invoke-local` at them (also written to
 * .local-stack/invoke-local.env, or `--out FILE`, for `source`). It runs until Ctrl-C, then
 * stops everything.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs, type FauxqsStack } from '../local-stack/fauxqs.js';
import { startSwift, swiftAwsEnv, type SwiftStack } from '../local-stack/swift.js';
import { DEFAULT_USER, startEmulator, type Emulator } from '../../test/emulator/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const MiB = 1024 * 1024;
const GRAPH = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const BUCKET = 'ges-archive-local';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const file = resolve(values.out ?? join(root, '.local-stack/invoke-local.env'));
  let swift: SwiftStack | undefined;
  let fauxqs: FauxqsStack | undefined;
  let emulator: Emulator | undefined;
  const stop = async (): Promise<void> => {
    await Promise.allSettled([swift?.stop(), fauxqs?.stop(), emulator?.close()]);
  };
  try {
    process.stderr.write('Starting OpenStack Swift (S3), fauxqs (SQS + SNS) and the GES emulator...\n');
    [swift, fauxqs, emulator] = await Promise.all([
      startSwift(),
      startFauxqs(),
      startEmulator({
        graphs: [{
          id: GRAPH, name: 'social',
          backups: [
            { id: '7ed3f51d-816d-4651-9129-fe21b64b5c91', name: 'social-20261129020000', status: 'success', startTimestamp: Date.UTC(2026, 10, 29, 2), files: [{ name: 'metadata.xml', bytes: 48 * 1024 }, { name: 'vertices.bin', bytes: 4 * MiB }] },
            { id: '0f1e2d3c-4b5a-4697-8877-665544332211', name: 'social-20261130020000', status: 'success', startTimestamp: Date.UTC(2026, 10, 30, 2), files: [{ name: 'metadata.xml', bytes: 52 * 1024 }, { name: 'edges.bin', bytes: 6 * MiB }] },
          ],
        }],
      }),
    ]);
    const aws = swiftAwsEnv(swift);
    const s3 = new S3Client({ endpoint: swift.endpoint, region: swift.region, forcePathStyle: true, credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey } });
    const sqs = new SQSClient({ endpoint: fauxqs.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    const sns = new SNSClient({ endpoint: fauxqs.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'config/manifest.json', Body: JSON.stringify({ version: 1, graphs: [{ graphId: GRAPH, backups: 'all' }] }) }));
    // fauxqs names its queues on sqs.<region>.localhost, which may not resolve: the same queue on the endpoint's host.
    const queue = async (name: string): Promise<string> => {
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '60' } }));
      return `${fauxqs!.endpoint}${new URL(QueueUrl!).pathname}`;
    };
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'ges-archiver-local-alerts' }));
    const env: Record<string, string> = {
      ...aws,
      AWS_ENDPOINT_URL_SQS: fauxqs.endpoint,
      AWS_ENDPOINT_URL_SNS: fauxqs.endpoint,
      ARCHIVE_BUCKET: BUCKET,
      ARCHIVE_PREFIX: 'ges-backups/',
      MANIFEST_URI: `s3://${BUCKET}/config/manifest.json`,
      COPY_QUEUE_URL: await queue('ges-archiver-local-copy'),
      DRILL_QUEUE_URL: await queue('ges-archiver-local-drill'),
      ALERT_TOPIC_ARN: TopicArn!,
      GES_ENDPOINT: emulator.gesEndpoint,
      HWC_IAM_ENDPOINT: emulator.iamEndpoint,
      HWC_USERNAME: DEFAULT_USER.name,
      HWC_PASSWORD: DEFAULT_USER.password,
      HWC_DOMAIN: DEFAULT_USER.domain,
      HWC_PROJECT: emulator.projectName,
      DOWNLOAD_ALLOWED_HOSTS: new URL(emulator.obsEndpoint).hostname,
    };
    s3.destroy();
    sqs.destroy();
    sns.destroy();
    const lines = Object.entries(env).map(([k, v]) => `export ${k}='${v}'`).join('\n');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${lines}\n`);
    process.stdout.write(`${lines}\n`);
    process.stderr.write(`\nLocal stack ready (written to ${file}). In another terminal:\n  source ${file}\n  npm run package\n  scripts/invoke-local scheduledRun\nCtrl-C stops it and deletes its data.\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`invoke-local stack: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
