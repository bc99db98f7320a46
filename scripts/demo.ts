/**
 * The embedded local default (README, first command): starts a local S3 store (OpenStack
 * Swift) and the GES + IAM + OBS emulator, archives demo/manifest.yaml with the real CLI in
 * its own process, runs it a second time to show that archived backups are skipped, lists
 * and verifies the archive, prints where the objects are, and stops every server it started.
 */
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { startSwift, swiftAwsEnv, type SwiftStack } from './local-stack/swift.js';
import { DEFAULT_USER, startEmulator, type Emulator } from '../test/emulator/index.js';

const MiB = 1024 * 1024;
const DAY = 86_400_000;
const t0 = Date.UTC(2026, 10, 20, 2, 0, 0);

function backup(id: string, name: string, daysAgo: number, files: { name: string; bytes: number }[], status: 'success' | 'backing_up' | 'failed' = 'success') {
  return { id, name, status, startTimestamp: t0 - daysAgo * DAY, files };
}

function runCli(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/ges-archiver.js', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

async function main(): Promise<void> {
  let swift: SwiftStack | undefined;
  let emulator: Emulator | undefined;
  try {
    console.error('Starting the local S3 store (OpenStack Swift) and the GES emulator...');
    swift = await startSwift({ dir: await mkdtemp(join(tmpdir(), 'ges-archiver-demo-')) });
    emulator = await startEmulator({
      graphs: [
        {
          id: '4c5f882d-a813-4d78-a8e3-6d3212ddd121',
          name: 'social',
          backups: [
            backup('7ed3f51d-816d-4651-9129-fe21b64b5c91', 'social_20261118100000_auto', 2, [
              { name: 'metadata.xml', bytes: 48 * 1024 },
              { name: 'vertices.bin', bytes: 40 * MiB },
            ]),
            backup('0f1e2d3c-4b5a-4697-8877-665544332211', 'social-20261120020000', 0, [
              { name: 'metadata.xml', bytes: 52 * 1024 },
              { name: 'schema.xml', bytes: 6 * 1024 },
              { name: 'vertices.bin', bytes: 48 * MiB },
              { name: 'edges.tar', bytes: 220 * MiB },
            ]),
          ],
        },
        {
          id: '9b9a05c2-0000-4000-8000-000000000001',
          name: 'fraud',
          backups: [
            backup('604bfb46-04dd-45fc-a9ae-df24a0705b9d', 'fraud-20261115020000', 5, [
              { name: 'metadata.xml', bytes: 20 * 1024 },
              { name: 'graph.bin', bytes: 12 * MiB },
            ]),
            backup('11111111-2222-4333-8444-555555555555', 'fraud-20261119020000', 1, [
              { name: 'metadata.xml', bytes: 21 * 1024 },
              { name: 'graph.bin', bytes: 14 * MiB },
            ]),
            backup('22222222-3333-4444-8555-666666666666', 'fraud-20261120010000', 0, [], 'backing_up'),
            backup('33333333-4444-4555-8666-777777777777', 'fraud-20261117020000', 3, [], 'failed'),
          ],
        },
        {
          id: '9b9a05c2-0000-4000-8000-000000000002',
          name: 'knowledge',
          backups: [
            backup('ada3e720-ab87-48cb-bff7-3ec5ae1a9652', 'knowledge-20261110020000', 10, [
              { name: 'metadata.xml', bytes: 9 * 1024 },
              { name: 'data.tar', bytes: 24 * MiB },
            ]),
          ],
        },
      ],
    });

    const bucket = 'ges-archive-demo';
    const s3 = new S3Client({
      endpoint: swift.endpoint,
      region: swift.region,
      forcePathStyle: true,
      credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));

    const env = {
      GES_ENDPOINT: emulator.gesEndpoint,
      HWC_IAM_ENDPOINT: emulator.iamEndpoint,
      HWC_USERNAME: DEFAULT_USER.name,
      HWC_PASSWORD: DEFAULT_USER.password,
      HWC_DOMAIN: DEFAULT_USER.domain,
      HWC_PROJECT: 'cn-north-4',
      ARCHIVE_BUCKET: bucket,
      DOWNLOAD_ALLOWED_HOSTS: new URL(emulator.obsEndpoint).hostname,
      ...swiftAwsEnv(swift),
    };

    console.error('\n== First run: archive everything demo/manifest.yaml names ==');
    const first = await runCli(['run', '--manifest', 'demo/manifest.yaml'], env);
    console.error('\n== Second run: every backup is already archived, so nothing is downloaded ==');
    const linksBefore = emulator.stats.linkRequests;
    const second = await runCli(['run', '--manifest', 'demo/manifest.yaml'], env);
    const linksAsked = emulator.stats.linkRequests - linksBefore;

    console.error('\n== What the bucket holds, and proof that it is byte for byte what GES served ==');
    const list = await runCli(['list'], env);
    const verify = await runCli(['verify'], env);

    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    console.log(`\nObjects in the local S3 store (endpoint ${swift.endpoint}, bucket ${bucket}):`);
    for (const o of listed.Contents ?? []) {
      console.log(`  s3://${bucket}/${o.Key}  ${(o.Size ?? 0).toLocaleString('en')} bytes`);
    }
    console.log(`\nFirst run exit status ${first}; second run exit status ${second}, download links requested: ${linksAsked}; list ${list}, verify ${verify}.`);
    console.log('The local store and the emulator are stopped now; their data is deleted.');
    s3.destroy();
    process.exitCode = first === 0 && second === 0 && linksAsked === 0 && list === 0 && verify === 0 ? 0 : 1;
  } finally {
    await emulator?.close();
    await swift?.stop();
  }
}

await main();
