// `ges-archiver run` / `archive` with AK/SK credentials (HWC_AK / HWC_SK, or the Huawei SDK's
// HUAWEICLOUD_SDK_* names) against the emulator, which checks every signature as the API
// gateway does, and Swift.
import { DEFAULT_ACCESS_KEY, startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, listKeys } from '../support/aws.js';
import { akskEnv, runCli, useLocalS3, writeManifest } from '../support/cli.js';

const G1 = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const G2 = '9b9a05c2-0000-4000-8000-000000000001';
const B1 = '0f1e2d3c-4b5a-4697-8877-665544332211';
const B2 = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
const B3 = '11111111-2222-4333-8444-555555555555';

interface JsonReport {
  backups: { graphId: string; backupId: string; status: string; error?: { code: string; message: string } }[];
}

describe('ges-archiver with AK/SK credentials', () => {
  let emulator: Emulator;

  beforeAll(() => {
    useLocalS3();
  });

  beforeEach(async () => {
    emulator = await startEmulator({
      graphs: [
        { id: G1, backups: [{ id: B1, files: [{ name: 'graph.bin', bytes: 6 * 1024 * 1024 + 7 }, { name: 'meta.xml', bytes: 300 }] }] },
        { id: G2, backups: [{ id: B2, files: [{ name: 'a.bin', bytes: 1000 }] }, { id: B3, files: [{ name: 'b.bin', bytes: 2000 }] }] },
      ],
    });
  });

  afterEach(async () => {
    await emulator.close();
  });

  it('archives a backup with signed GES requests only, from the Huawei SDK\'s variable names, and prints no secret', async () => {
    // Prepare
    const bucket = await createTestBucket('aksk');
    const { HWC_AK: _ak, HWC_SK: _sk, GES_PROJECT_ID: _p, ...rest } = akskEnv(emulator, bucket);
    const env = {
      ...rest, LOG_LEVEL: 'debug',
      HUAWEICLOUD_SDK_AK: DEFAULT_ACCESS_KEY.accessKey, HUAWEICLOUD_SDK_SK: DEFAULT_ACCESS_KEY.secretKey, HUAWEICLOUD_SDK_PROJECT_ID: emulator.projectId,
    };

    // Act
    const result = await runCli(['archive', '--graph', G1, '--backup', B1, '--json', '--verbose'], env);

    // Assess
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as JsonReport).backups).toEqual([expect.objectContaining({ backupId: B1, status: 'archived' })]);
    expect((await listKeys(bucket)).filter((k) => k.endsWith('manifest.json'))).toEqual([`ges-backups/${G1}/${B1}/manifest.json`]);
    expect(emulator.stats.signedRequests).toBeGreaterThanOrEqual(2);
    expect(emulator.stats).toMatchObject({ refusedSignatures: 0, tokenHeaderRequests: 0, tokenRequests: 0 });
    expect(result.stdout + result.stderr).not.toContain(DEFAULT_ACCESS_KEY.secretKey);
    expect(result.stdout + result.stderr).not.toMatch(/SDK-HMAC-SHA256 Access|Signature=[0-9a-f]/);
  });

  it('fails every backup of a run with GES_AUTH_FAILED after one refused signature when the SK is wrong (exit 1)', async () => {
    // Prepare
    const bucket = await createTestBucket('aksk-wrong');
    const env = { ...akskEnv(emulator, bucket), HWC_SK: 'not-the-secret-key-0000000000000000000000' };
    const manifest = await writeManifest({ version: 1, graphs: [{ graphId: G1, backups: 'latest' }, { graphId: G2, backups: 'all' }] });

    // Act
    const result = await runCli(['run', '--manifest', manifest, '--json'], env);

    // Assess
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as JsonReport;
    expect(report.backups.length).toBeGreaterThan(0);
    for (const b of report.backups) {
      expect(b).toMatchObject({ status: 'failed', error: { code: 'GES_AUTH_FAILED', message: expect.stringMatching(/AK\/SK signature.*Check HWC_AK and HWC_SK/) as unknown } });
    }
    expect(emulator.stats.refusedSignatures).toBe(1);
    expect(emulator.stats.signedRequests).toBe(0);
    expect(result.stdout + result.stderr).not.toContain('not-the-secret-key');
    expect((await listKeys(bucket)).filter((k) => !k.startsWith('ges-backups/_runs/'))).toEqual([]);
  });

  it('exits 2 naming the variable for half an AK/SK, AK/SK mixed with a token, and disagreeing names', async () => {
    // Prepare
    const bucket = await createTestBucket('aksk-config');
    const env = akskEnv(emulator, bucket);

    // Act
    const half = await runCli(['archive', '--graph', G1, '--backup', B1], { ...env, HWC_SK: undefined });
    const mixed = await runCli(['archive', '--graph', G1, '--backup', B1], { ...env, GES_AUTH_TOKEN: 'tok-secret' });
    const disagree = await runCli(['archive', '--graph', G1, '--backup', B1], { ...env, HUAWEICLOUD_SDK_AK: 'OTHERAK' });

    // Assess
    expect([half.code, mixed.code, disagree.code]).toEqual([2, 2, 2]);
    expect(half.stderr).toContain('HWC_SK (or HUAWEICLOUD_SDK_SK) is required');
    expect(mixed.stderr).toMatch(/\(GES_AUTH_TOKEN for a token; HWC_AK, HWC_SK for an AK\/SK\)/);
    expect(disagree.stderr).toContain('HWC_AK and HUAWEICLOUD_SDK_AK are set to different values');
    expect(mixed.stderr + disagree.stderr).not.toContain(DEFAULT_ACCESS_KEY.secretKey);
    expect(emulator.stats.signedRequests + emulator.stats.refusedSignatures).toBe(0);
  });
});
