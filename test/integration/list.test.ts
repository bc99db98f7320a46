import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { listArchivedBackups } from '../../lib/catalog/list.js';
import type { ArchivedBackupSummary } from '../../lib/catalog/types.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, listKeys, s3Client } from '../support/aws.js';
import { iamEnv, runCli, useLocalS3 } from '../support/cli.js';

const G1 = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const G2 = '9b9a05c2-0000-4000-8000-000000000001';
const B1 = '0f1e2d3c-4b5a-4697-8877-665544332211';
const B2_A = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
const B2_B = '11111111-2222-4333-8444-555555555555';
const B2_HALF = '22222222-3333-4444-8555-666666666666';
const PREFIX = 'ges-backups/';

interface ListJson {
  bucket: string;
  prefix: string;
  backups: ArchivedBackupSummary[];
}

function storageEnv(bucket: string): Record<string, string | undefined> {
  return { ARCHIVE_BUCKET: bucket, S3_FORCE_PATH_STYLE: 'true', LOG_LEVEL: 'warn' };
}

describe('ges-archiver list against archives in Swift', () => {
  let emulator: Emulator;
  let s3: S3Client;
  /** Three archived backups, one half-archived folder, one run report. */
  let bucket: string;

  beforeAll(async () => {
    useLocalS3();
    s3 = s3Client();
    emulator = await startEmulator({
      graphs: [
        { id: G1, backups: [{ id: B1, name: 'g1-nightly', startTimestamp: Date.UTC(2026, 10, 20, 1), files: [{ name: 'a.bin', bytes: 1000 }, { name: 'b.bin', bytes: 24 }] }] },
        {
          id: G2, backups: [
            { id: B2_A, name: 'g2-first', startTimestamp: Date.UTC(2026, 10, 2), files: [{ name: 'graph.bin', bytes: 2048 }] },
            { id: B2_B, name: 'g2-second', startTimestamp: Date.UTC(2026, 10, 3), files: [{ name: 'graph.bin', bytes: 4096 }, { name: 'meta.xml', bytes: 10 }] },
          ],
        },
      ],
    });
    bucket = await createTestBucket('list');
    const manifestPath = join(tmpdir(), `list-manifest-${Date.now()}.json`);
    await writeFile(manifestPath, JSON.stringify({ version: 1, graphs: [{ graphId: G1, backups: 'all' }, { graphId: G2, backups: 'all' }] }));
    const run = await runCli(['run', '--manifest', manifestPath, '--json'], iamEnv(emulator, bucket));
    if (run.code !== 0) throw new Error(`archiving failed: ${run.stdout}${run.stderr}`);
    // A backup whose copy was interrupted: files, but no manifest.json.
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}${G2}/${B2_HALF}/graph.bin`, Body: 'partial' }));
  });

  afterAll(async () => {
    await emulator.close();
    s3.destroy();
  });

  it('shows exactly the archived backups, not the half-archived folder nor the _runs/ reports, with only ARCHIVE_BUCKET set', async () => {
    // Prepare: the bucket does hold the distractors.
    expect((await listKeys(bucket, `${PREFIX}_runs/`)).length).toBe(1);
    expect((await listKeys(bucket, `${PREFIX}${G2}/${B2_HALF}/`)).length).toBe(1);

    // Act
    const result = await runCli(['list', '--json'], storageEnv(bucket));

    // Assess
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout) as ListJson;
    expect(doc).toMatchObject({ bucket, prefix: PREFIX });
    expect(doc.backups).toEqual([
      {
        valid: true, graphId: G1, backupId: B1, manifestKey: `${PREFIX}${G1}/${B1}/manifest.json`, sha256sumsKey: `${PREFIX}${G1}/${B1}/SHA256SUMS`,
        backupName: 'g1-nightly', backupTime: '2026-11-20T01:00:00.000Z', archivedAt: expect.any(String) as unknown, fileCount: 2, totalBytes: 1024,
        runId: expect.any(String) as unknown, runReportKey: expect.stringMatching(new RegExp(`^${PREFIX}_runs/.+\\.json$`)) as unknown,
      },
      {
        valid: true, graphId: G2, backupId: B2_A, manifestKey: `${PREFIX}${G2}/${B2_A}/manifest.json`, sha256sumsKey: `${PREFIX}${G2}/${B2_A}/SHA256SUMS`,
        backupName: 'g2-first', backupTime: '2026-11-02T00:00:00.000Z', archivedAt: expect.any(String) as unknown, fileCount: 1, totalBytes: 2048,
        runId: expect.any(String) as unknown, runReportKey: expect.any(String) as unknown,
      },
      {
        valid: true, graphId: G2, backupId: B2_B, manifestKey: `${PREFIX}${G2}/${B2_B}/manifest.json`, sha256sumsKey: `${PREFIX}${G2}/${B2_B}/SHA256SUMS`,
        backupName: 'g2-second', backupTime: '2026-11-03T00:00:00.000Z', archivedAt: expect.any(String) as unknown, fileCount: 2, totalBytes: 4106,
        runId: expect.any(String) as unknown, runReportKey: expect.any(String) as unknown,
      },
    ]);
    for (const b of doc.backups) if (b.valid) expect(new Date(b.archivedAt).toISOString()).toBe(b.archivedAt);
    // Each backup points at the report of the run that archived it, and that report exists.
    const runKeys = await listKeys(bucket, `${PREFIX}_runs/`);
    for (const b of doc.backups) if (b.valid) expect(runKeys).toContain((b as { runReportKey?: string }).runReportKey);
  });

  it('narrows to one graph, and prints a table for people', async () => {
    // Act
    const json = await runCli(['list', '--graph', G2, '--json'], storageEnv(bucket));
    const human = await runCli(['list', '--graph', G2], storageEnv(bucket));

    // Assess
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as ListJson).backups.map((b) => b.backupId)).toEqual([B2_A, B2_B]);
    expect(human.code).toBe(0);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^GRAPH\s+BACKUP\s+NAME\s+BACKUP TIME\s+FILES\s+SIZE\s+ARCHIVED AT\s+RUN$/);
    expect(lines[1]).toMatch(new RegExp(`^${G2}\\s+${B2_A}\\s+g2-first\\s+2026-11-02T00:00:00.000Z\\s+1\\s+2.0 KiB\\s+\\d{4}-`));
    expect(lines[2]).toContain('g2-second');
    expect(lines[3]).toBe('2 archived backups, 3 files, 6.0 KiB.');
    expect(human.stdout).not.toContain(B1);
    expect(human.stdout).not.toContain(B2_HALF);
  });

  it('follows ListObjectsV2 pagination', async () => {
    // Prepare
    const client = s3Client();
    let listCalls = 0;
    client.middlewareStack.add((next, context) => async (args) => {
      if (context.commandName === 'ListObjectsV2Command') listCalls += 1;
      return next(args);
    }, { step: 'initialize', name: 'countListObjectsV2' });
    const deps = { s3: client, config: { archive: { bucket, prefix: PREFIX } }, logger: silentLogger(), retry: createRetryPolicy() };

    try {
      // Act
      const paged = await listArchivedBackups(deps, { pageSize: 2 });

      // Assess: 10 objects in 2-key pages.
      expect(listCalls).toBeGreaterThanOrEqual(5);
      expect(paged.map((b) => b.backupId)).toEqual([B1, B2_A, B2_B]);
    } finally {
      client.destroy();
    }
  });

  it('reports an unusable manifest.json (exit 1) and still lists the others', async () => {
    // Prepare
    const damaged = await createTestBucket('list-invalid');
    const run = await runCli(['archive', '--graph', G2, '--backup', B2_A], iamEnv(emulator, damaged));
    expect(run.code).toBe(0);
    const good = await runCli(['archive', '--graph', G2, '--backup', B2_B], iamEnv(emulator, damaged));
    expect(good.code).toBe(0);
    const badKey = `${PREFIX}${G2}/${B2_A}/manifest.json`;
    await s3.send(new PutObjectCommand({ Bucket: damaged, Key: badKey, Body: JSON.stringify({ version: 1, graphId: G2, backupId: B2_A }) }));

    // Act
    const json = await runCli(['list', '--json'], storageEnv(damaged));
    const human = await runCli(['list'], storageEnv(damaged));

    // Assess
    expect(json.code).toBe(1);
    const backups = (JSON.parse(json.stdout) as ListJson).backups;
    expect(backups).toHaveLength(2);
    expect(backups.find((b) => b.backupId === B2_A)).toMatchObject({ valid: false, manifestKey: badKey, problem: expect.stringContaining('archivedAt') as unknown });
    expect(backups.find((b) => b.backupId === B2_B)).toMatchObject({ valid: true, fileCount: 2 });
    expect(human.code).toBe(1);
    expect(human.stdout).toContain(`INVALID  ${badKey}: `);
  });

  it('says so when the bucket holds no archived backup', async () => {
    const empty = await createTestBucket('list-empty');

    const human = await runCli(['list'], storageEnv(empty));
    const json = await runCli(['list', '--json'], storageEnv(empty));

    expect(human.code).toBe(0);
    expect(human.stdout).toBe(`No archived backups in s3://${empty}/${PREFIX}\n`);
    expect(JSON.parse(json.stdout)).toEqual({ bucket: empty, prefix: PREFIX, backups: [] });
  });
});
