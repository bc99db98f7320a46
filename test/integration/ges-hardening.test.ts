// The CLI against a misbehaving GES and IAM (the emulator's fault switches) and Swift: a backup
// list that cannot be trusted fails its graph, and a wrong password costs one IAM login per run.
import { startEmulator, type Emulator, type EmulatorGraphSpec } from '../emulator/index.js';
import { createTestBucket, listKeys } from '../support/aws.js';
import { iamEnv, runCli, tokenEnv, useLocalS3, writeManifest } from '../support/cli.js';

interface JsonReport {
  backups: { graphId: string; backupId: string; status: string; error?: { code: string; message: string } }[];
}

const graphId = (i: number): string => `9b9a05c2-0000-4000-8000-${String(i).padStart(12, '0')}`;
const backupId = (g: number, b: number): string => `0000${String(g).padStart(4, '0')}-0000-4000-8000-${String(b).padStart(12, '0')}`;

function graph(i: number, backups: number): EmulatorGraphSpec {
  return { id: graphId(i), backups: Array.from({ length: backups }, (_, b) => ({ id: backupId(i, b), files: [{ name: 'data.bin', bytes: 10 }] })) };
}

describe('the CLI against an untrustworthy GES listing and a wrong IAM password', () => {
  let emulator: Emulator | undefined;

  beforeAll(() => {
    useLocalS3();
  });

  afterEach(async () => {
    await emulator?.close();
    emulator = undefined;
  });

  it('fails latest and all with LISTING_INCOMPLETE when GES ignores offset, and archives nothing of those graphs', async () => {
    // Prepare: 120 backups per graph, the newest last (beyond the first page of 100)
    emulator = await startEmulator({ graphs: [graph(1, 120), graph(2, 120)], staticTokens: ['tok'] });
    emulator.faults.ignoreListOffset();
    const bucket = await createTestBucket('listing');
    const manifest = await writeManifest({ version: 1, graphs: [{ graphId: graphId(1), backups: 'latest' }, { graphId: graphId(2), backups: 'all' }] });

    // Act
    const result = await runCli(['run', '--manifest', manifest, '--json'], tokenEnv(emulator, bucket, 'tok'));

    // Assess
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as JsonReport;
    expect(report.backups.map((b) => [b.graphId, b.backupId, b.status, b.error?.code])).toEqual([
      [graphId(1), 'latest', 'failed', 'LISTING_INCOMPLETE'],
      [graphId(2), 'all', 'failed', 'LISTING_INCOMPLETE'],
    ]);
    expect(report.backups[0]?.error?.message).toContain('although its backup_count is 120');
    expect((await listKeys(bucket)).filter((k) => !k.startsWith('ges-backups/_runs/'))).toEqual([]);
    expect(emulator.stats.linkRequests).toBe(0);
  });

  it('asks IAM once for a wrong password in a run of eight graphs; every graph fails with GES_AUTH_FAILED', async () => {
    // Prepare
    emulator = await startEmulator({ graphs: Array.from({ length: 8 }, (_, i) => graph(i, 1)) });
    const bucket = await createTestBucket('wrong-password');
    const manifest = await writeManifest({ version: 1, graphs: Array.from({ length: 8 }, (_, i) => ({ graphId: graphId(i), backups: 'all' })) });

    // Act
    const result = await runCli(['run', '--manifest', manifest, '--json'], { ...iamEnv(emulator, bucket), HWC_PASSWORD: 'a-typo' });

    // Assess
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as JsonReport;
    expect(report.backups).toHaveLength(8);
    expect(report.backups.every((b) => b.status === 'failed' && b.error?.code === 'GES_AUTH_FAILED')).toBe(true);
    expect(emulator.stats.tokenRequests).toBe(1);
    expect(emulator.stats.failedLogins).toBe(1);
    expect(emulator.stats.listRequests).toBe(0);
    expect(result.stdout + result.stderr).not.toContain('a-typo');
  });
});
