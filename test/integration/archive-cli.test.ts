import { createHash } from 'node:crypto';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listInProgressUploads, listKeys } from '../support/aws.js';
import { iamEnv, runCli, tokenEnv, useLocalS3, writeManifest } from '../support/cli.js';

const MiB = 1024 * 1024;
const G1 = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const G2 = '9b9a05c2-0000-4000-8000-000000000001';
const B1_OLD = '7ed3f51d-816d-4651-9129-fe21b64b5c91';
const B1_NEW = '0f1e2d3c-4b5a-4697-8877-665544332211';
const B2_A = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
const B2_B = '11111111-2222-4333-8444-555555555555';
const B2_RUNNING = '22222222-3333-4444-8555-666666666666';

interface JsonReport {
  backups: { graphId: string; backupId: string; status: string; files: number; bytes: number; error?: { code: string; message: string } }[];
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

function graphs(): Parameters<typeof startEmulator>[0]['graphs'] {
  return [
    {
      id: G1,
      backups: [
        { id: B1_OLD, name: 'g1-old', startTimestamp: Date.UTC(2026, 10, 1), files: [{ name: 'old.bin', bytes: 1000 }] },
        {
          id: B1_NEW, name: 'g1-new', startTimestamp: Date.UTC(2026, 10, 20), files: [
            { name: 'metadata.xml', bytes: 3 * 1024 },
            { name: 'vertices.bin', bytes: 7 * MiB + 123 },
            { name: 'edges.tar', bytes: 12 * MiB + 5 },
            { name: 'empty.txt', bytes: 0 },
          ],
        },
      ],
    },
    {
      id: G2,
      backups: [
        { id: B2_A, name: 'g2-a', startTimestamp: Date.UTC(2026, 10, 2), files: [{ name: 'graph.bin', bytes: 2 * MiB }] },
        { id: B2_B, name: 'g2-b', startTimestamp: Date.UTC(2026, 10, 3), files: [{ name: 'graph.bin', bytes: 3 * MiB }] },
        { id: B2_RUNNING, status: 'backing_up', files: [{ name: 'graph.bin', bytes: 100 }] },
      ],
    },
  ];
}

const MANIFEST = { version: 1, graphs: [{ graphId: G1, backups: 'latest' }, { graphId: G2, backups: 'all' }] };

describe('ges-archiver run / archive against the emulator and Swift', () => {
  let emulator: Emulator;

  beforeAll(() => {
    useLocalS3();
  });

  beforeEach(async () => {
    emulator = await startEmulator({ graphs: graphs(), staticTokens: ['static-token-1'] });
  });

  afterEach(async () => {
    await emulator.close();
  });

  it('archives latest and all, byte for byte, writes manifest.json last, then skips everything on a re-run', async () => {
    // Prepare
    const bucket = await createTestBucket('happy');
    const env = iamEnv(emulator, bucket);
    const manifest = await writeManifest(MANIFEST);

    // Act
    const first = await runCli(['run', '--manifest', manifest, '--json'], env);

    // Assess
    expect(first.code).toBe(0);
    const report = JSON.parse(first.stdout) as JsonReport;
    expect(report.backups.map((b) => [b.backupId, b.status]).sort()).toEqual([
      [B1_NEW, 'archived'], [B2_A, 'archived'], [B2_B, 'archived'],
    ].sort());
    for (const [graphId, backupId] of [[G1, B1_NEW], [G2, B2_A], [G2, B2_B]] as const) {
      const m = JSON.parse((await getObjectBytes(bucket, `ges-backups/${graphId}/${backupId}/manifest.json`)).toString()) as {
        graphId: string; backupId: string; archivedAt: string; files: { name: string; key: string; bytes: number; sha256: string }[];
      };
      expect(m).toMatchObject({ graphId, backupId });
      expect(new Date(m.archivedAt).toISOString()).toBe(m.archivedAt);
      for (const f of m.files) {
        const body = await getObjectBytes(bucket, f.key);
        expect(f.key).toBe(`ges-backups/${graphId}/${backupId}/${f.name}`);
        expect(body.length).toBe(emulator.fileBytes(graphId, backupId, f.name));
        expect(f.bytes).toBe(body.length);
        expect(sha256(body)).toBe(emulator.fileSha256(graphId, backupId, f.name));
        expect(f.sha256).toBe(emulator.fileSha256(graphId, backupId, f.name));
      }
    }
    expect((await listKeys(bucket, `ges-backups/${G1}/${B1_OLD}/`))).toEqual([]);
    expect((await listKeys(bucket, `ges-backups/${G2}/${B2_RUNNING}/`))).toEqual([]);
    expect((await listKeys(bucket, 'ges-backups/_runs/')).length).toBe(1);
    expect(await listInProgressUploads(bucket)).toEqual([]);
    expect(emulator.stats.authHeadersSentToObs).toBe(0);

    // Act: the same run again
    const linksBefore = emulator.stats.linkRequests;
    const downloadsBefore = emulator.stats.downloadRequests;
    const second = await runCli(['run', '--manifest', manifest, '--json'], env);

    // Assess
    expect(second.code).toBe(0);
    expect((JSON.parse(second.stdout) as JsonReport).backups.every((b) => b.status === 'skipped')).toBe(true);
    expect(emulator.stats.linkRequests).toBe(linksBefore);
    expect(emulator.stats.downloadRequests).toBe(downloadsBefore);
  });

  it('never prints secrets: no password, token or link query string in stdout or stderr', async () => {
    const bucket = await createTestBucket('secrets');
    const env: Record<string, string | undefined> = { ...iamEnv(emulator, bucket), LOG_LEVEL: 'debug' };
    const manifest = await writeManifest({ version: 1, graphs: [{ graphId: G2, backups: [B2_A] }] });

    const result = await runCli(['run', '--manifest', manifest, '--verbose'], env);

    expect(result.code).toBe(0);
    const all = result.stdout + result.stderr;
    expect(all).not.toContain(env['HWC_PASSWORD']!);
    expect(all).not.toMatch(/Signature=|AccessKeyId=|X-Amz-Signature|Expires=\d/);
    expect(all).not.toMatch(/MII[A-Za-z0-9+/=]{20,}|tok-[0-9a-f]{8,}/);
  });

  it('archives one backup by hand, reports an unknown backup as failed (exit 1) while the others are archived', async () => {
    const bucket = await createTestBucket('unknown');
    const env = tokenEnv(emulator, bucket, 'static-token-1');

    const one = await runCli(['archive', '--graph', G2, '--backup', B2_A, '--json'], env);
    expect(one.code).toBe(0);
    expect((JSON.parse(one.stdout) as JsonReport).backups).toEqual([
      expect.objectContaining({ graphId: G2, backupId: B2_A, status: 'archived', files: 1, bytes: 2 * MiB }),
    ]);

    const manifest = await writeManifest({
      version: 1,
      graphs: [{ graphId: G2, backups: [B2_B, 'deadbeef-0000-4000-8000-000000000000', B2_RUNNING] }],
    });
    const run = await runCli(['run', '--manifest', manifest, '--json'], env);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as JsonReport;
    expect(report.backups.find((b) => b.backupId === B2_B)?.status).toBe('archived');
    expect(report.backups.find((b) => b.backupId.startsWith('deadbeef'))).toMatchObject({ status: 'failed', error: { code: 'BACKUP_NOT_FOUND' } });
    expect(report.backups.find((b) => b.backupId === B2_RUNNING)).toMatchObject({ status: 'failed', error: { code: 'BACKUP_NOT_READY' } });
    // The failed run's report is stored too, with each backup's outcome and error code.
    const stored = JSON.parse((await getObjectBytes(bucket, (JSON.parse(run.stdout) as { reportKey: string }).reportKey)).toString()) as JsonReport & { runId: string; startedAt: string; finishedAt: string };
    expect(stored.backups.map((b) => [b.backupId.slice(0, 8), b.status, b.error?.code]).sort()).toEqual([
      [B2_B.slice(0, 8), 'archived', undefined], ['deadbeef', 'failed', 'BACKUP_NOT_FOUND'], [B2_RUNNING.slice(0, 8), 'failed', 'BACKUP_NOT_READY'],
    ].sort());
    expect(Date.parse(stored.finishedAt)).toBeGreaterThanOrEqual(Date.parse(stored.startedAt));
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });

  it('dry run reports what would be archived and writes nothing', async () => {
    const bucket = await createTestBucket('dry');
    const manifest = await writeManifest(MANIFEST);

    const result = await runCli(['run', '--manifest', manifest, '--dry-run', '--json'], iamEnv(emulator, bucket));

    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as JsonReport;
    expect(report.backups.map((b) => b.status)).toEqual(['planned', 'planned', 'planned']);
    expect(report.backups.find((b) => b.backupId === B1_NEW)?.files).toBe(4);
    expect(emulator.stats.downloadRequests).toBe(0);
    expect(await listKeys(bucket)).toEqual([]);
  });

  it('exits 2 and writes nothing for a bad manifest, missing configuration or bad arguments', async () => {
    const bucket = await createTestBucket('invalid');
    const env = iamEnv(emulator, bucket);
    const bad = await writeManifest({ version: 1, graphs: [{ graphId: G1, backups: 'newest' }] });

    const badManifest = await runCli(['run', '--manifest', bad, '--json'], env);
    const missingFile = await runCli(['run', '--manifest', '/nonexistent/m.json'], env);
    const noConfig = await runCli(['run', '--manifest', bad], { ...env, ARCHIVE_BUCKET: undefined, GES_ENDPOINT: undefined });
    const badArgs = await runCli(['archive', '--graph', G1], env);
    const unsafeId = await runCli(['archive', '--graph', G1, '--backup', '../x'], env);
    const unknownCommand = await runCli(['frobnicate'], env);
    const noCommand = await runCli([], env);

    expect(badManifest.code).toBe(2);
    expect(JSON.parse(badManifest.stdout)).toMatchObject({ error: { code: 'MANIFEST_INVALID' } });
    expect(badManifest.stderr).toContain('graphs.0.backups');
    expect(missingFile.code).toBe(2);
    expect(missingFile.stderr).toContain('ENOENT');
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toMatch(/GES_ENDPOINT.*ARCHIVE_BUCKET|ARCHIVE_BUCKET.*GES_ENDPOINT/);
    expect(badArgs.code).toBe(2);
    expect(unsafeId.code).toBe(2);
    expect(unknownCommand.code).toBe(2);
    expect(noCommand.code).toBe(2);
    expect(noCommand.stderr).toContain('Usage: ges-archiver');
    expect(emulator.stats.linkRequests + emulator.stats.listRequests).toBe(0);
    expect(await listKeys(bucket)).toEqual([]);
  });

  it('survives transient GES faults and an IAM token revoked mid-run', async () => {
    const bucket = await createTestBucket('faults');
    const env = iamEnv(emulator, bucket);
    const manifest = await writeManifest(MANIFEST);
    emulator.faults.failGes('list', { status: 503, body: 'Service Unavailable' }, 2);
    emulator.faults.failGes('links', { status: 429, body: { error_code: 'APIGW.0308', error_msg: 'The throttling threshold has been reached' }, headers: { 'Retry-After': '0' } }, 1);
    emulator.faults.failGes('links', { status: 500, body: { error_code: 'GES.7006', error_msg: 'The underlying graph engine has internal error.' } }, 1);
    emulator.faults.failGes('links', { status: 408, body: { errorCode: 'GES.7005', errorMessage: 'The underlying service of the graph engine is unavailable.' } }, 1);

    const first = await runCli(['archive', '--graph', G2, '--backup', B2_A, '--json'], env);
    emulator.faults.invalidateTokens();
    const second = await runCli(['run', '--manifest', manifest, '--json'], env);

    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    expect((JSON.parse(second.stdout) as JsonReport).backups.map((b) => b.status).sort()).toEqual(['archived', 'archived', 'skipped']);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });

  it('resumes a file whose link expires mid-download and one whose body is truncated', async () => {
    const bucket = await createTestBucket('resume');
    const env = iamEnv(emulator, bucket);
    emulator.faults.expireLinksAfterBytes('edges.tar', 8 * MiB);
    emulator.faults.truncateDownload('vertices.bin', 6 * MiB);

    const result = await runCli(['archive', '--graph', G1, '--backup', B1_NEW, '--json'], env);

    expect(result.code).toBe(0);
    const edges = await getObjectBytes(bucket, `ges-backups/${G1}/${B1_NEW}/edges.tar`);
    expect(sha256(edges)).toBe(emulator.fileSha256(G1, B1_NEW, 'edges.tar'));
    const vertices = await getObjectBytes(bucket, `ges-backups/${G1}/${B1_NEW}/vertices.bin`);
    expect(sha256(vertices)).toBe(emulator.fileSha256(G1, B1_NEW, 'vertices.bin'));
    // Resumed from the last completed 5 MiB part, not from byte 0.
    const edgesSize = emulator.fileBytes(G1, B1_NEW, 'edges.tar');
    expect(emulator.stats.downloadBytes.get('edges.tar')! - edgesSize).toBeLessThan(edgesSize / 2);
    expect(emulator.stats.rangeRequests).toBeGreaterThanOrEqual(2);
  });

  it('fails a backup whose download keeps breaking, leaving no object and no multipart upload', async () => {
    const bucket = await createTestBucket('broken');
    emulator.faults.truncateDownload('graph.bin', 0, 1000);

    const result = await runCli(['archive', '--graph', G2, '--backup', B2_B, '--json'], { ...iamEnv(emulator, bucket), GES_REQUEST_TIMEOUT_MS: '5000' });

    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as JsonReport;
    expect(report.backups[0]).toMatchObject({ status: 'failed', error: { code: expect.stringMatching(/DOWNLOAD_/) as unknown } });
    expect(await listKeys(bucket, 'ges-backups/9b9a')).toEqual([]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });
  it.each([
    ['a value that is no date at all', 'not-a-date'],
    ['the documented 3-digit-day example', '2018-08-016T10:15:14+0800'],
    ['a time long past', '2001-01-01T00:00:00Z'],
    ['an empty string', ''],
  ])('archives byte for byte whatever link_expired_time says: %s', async (_what, value) => {
    const bucket = await createTestBucket('expiry');
    emulator.faults.malformedLinkExpiredTime(value);

    const result = await runCli(['archive', '--graph', G2, '--backup', B2_B, '--json'], iamEnv(emulator, bucket));

    expect(result.code).toBe(0);
    const body = await getObjectBytes(bucket, `ges-backups/${G2}/${B2_B}/graph.bin`);
    expect(sha256(body)).toBe(emulator.fileSha256(G2, B2_B, 'graph.bin'));
  });

  it('after a failed run, a re-run reuses the files that were completed and copies only the rest', async () => {
    const bucket = await createTestBucket('reuse');
    const env = iamEnv(emulator, bucket);
    emulator.faults.truncateDownload('edges.tar', 0, 1000);
    const failedRun = await runCli(['archive', '--graph', G1, '--backup', B1_NEW, '--json'], env);
    expect(failedRun.code).toBe(1);
    expect(await listKeys(bucket, `ges-backups/${G1}/${B1_NEW}/manifest.json`)).toEqual([]);
    const verticesBytes = emulator.stats.downloadBytes.get('vertices.bin') ?? 0;

    emulator.faults.reset();
    const rerun = await runCli(['archive', '--graph', G1, '--backup', B1_NEW, '--json'], env);

    expect(rerun.code).toBe(0);
    expect((JSON.parse(rerun.stdout) as JsonReport).backups[0]).toMatchObject({ status: 'archived', files: 4 });
    expect(emulator.stats.downloadBytes.get('vertices.bin') ?? 0).toBe(verticesBytes);
    const m = JSON.parse((await getObjectBytes(bucket, `ges-backups/${G1}/${B1_NEW}/manifest.json`)).toString()) as { files: { name: string; sha256: string }[] };
    for (const f of m.files) expect(f.sha256).toBe(emulator.fileSha256(G1, B1_NEW, f.name));
    expect(await listKeys(bucket, 'ges-backups/_state/')).toEqual([]);
    expect(await listInProgressUploads(bucket)).toEqual([]);
  });
});

describe('link and name guard, end to end', () => {
  beforeAll(() => {
    useLocalS3();
  });

  it('refuses a link to a host outside DOWNLOAD_ALLOWED_HOSTS before any request reaches it', async () => {
    const emulator = await startEmulator({ graphs: graphs(), linkHost: 'localhost' });
    try {
      const bucket = await createTestBucket('ssrf');
      const result = await runCli(['archive', '--graph', G2, '--backup', B2_A, '--json'], iamEnv(emulator, bucket));
      expect(result.code).toBe(1);
      expect((JSON.parse(result.stdout) as JsonReport).backups[0]).toMatchObject({ status: 'failed', error: { code: 'LINK_REFUSED' } });
      expect(emulator.stats.downloadRequests).toBe(0);
      expect(await listKeys(bucket, `ges-backups/${G2}/`)).toEqual([]);
    } finally {
      await emulator.close();
    }
  });

  it('refuses an unsafe file name with a clear error and writes nothing', async () => {
    const emulator = await startEmulator({
      graphs: [{ id: G2, backups: [{ id: B2_A, files: [{ name: 'ok.bin', bytes: 10 }, { name: '../../escape.bin', bytes: 10 }] }] }],
    });
    try {
      const bucket = await createTestBucket('unsafe');
      const result = await runCli(['archive', '--graph', G2, '--backup', B2_A, '--json'], iamEnv(emulator, bucket));
      expect(result.code).toBe(1);
      const backup = (JSON.parse(result.stdout) as JsonReport).backups[0];
      expect(backup).toMatchObject({ status: 'failed', error: { code: 'UNSAFE_FILE_NAME' } });
      expect(backup?.error?.message).toContain('escape.bin');
      expect(emulator.stats.downloadRequests).toBe(0);
      expect(await listKeys(bucket, `ges-backups/${G2}/`)).toEqual([]);
    } finally {
      await emulator.close();
    }
  });
});
