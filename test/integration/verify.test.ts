import { createHash, randomBytes } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import type { VerifyReport } from '../../lib/verify/types.js';
import { seededRandom } from '../../lib/verify/sample.js';
import { verifyArchive } from '../../lib/verify/verify.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, s3Client } from '../support/aws.js';
import { iamEnv, runCli, useLocalS3 } from '../support/cli.js';

const MiB = 1024 * 1024;
const G1 = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const G2 = '9b9a05c2-0000-4000-8000-000000000001';
const B1 = '0f1e2d3c-4b5a-4697-8877-665544332211';
const B2 = '604bfb46-04dd-45fc-a9ae-df24a0705b9d';
const MANY = '11111111-2222-4333-8444-555555555555';
const PREFIX = 'ges-backups/';
const MANY_NAMES = Array.from({ length: 40 }, (_, i) => `part-${String(i).padStart(2, '0')}.bin`);

function key(graphId: string, backupId: string, name: string): string {
  return `${PREFIX}${graphId}/${backupId}/${name}`;
}

/** Only the storage settings: verify must not need GES or Huawei credentials. */
function storageEnv(bucket: string): Record<string, string | undefined> {
  return { ARCHIVE_BUCKET: bucket, S3_FORCE_PATH_STYLE: 'true', LOG_LEVEL: 'warn' };
}

describe('ges-archiver verify against archives in Swift', () => {
  let emulator: Emulator;
  let s3: S3Client;

  beforeAll(async () => {
    useLocalS3();
    s3 = s3Client();
    emulator = await startEmulator({
      graphs: [
        {
          id: G1,
          backups: [{
            id: B1, name: 'g1-b1', files: [
              { name: 'altered.bin', bytes: 3000 },
              { name: 'truncated.bin', bytes: 2000 },
              { name: 'deleted.bin', bytes: 1500 },
              { name: 'longer.bin', bytes: 1000 },
              { name: 'empty.txt', bytes: 0 },
              { name: 'big.bin', bytes: 6 * MiB + 7 },
            ],
          }],
        },
        {
          id: G2,
          backups: [
            { id: B2, name: 'g2-b2', files: [{ name: 'graph.bin', bytes: 4096 }] },
            { id: MANY, name: 'g2-many', files: MANY_NAMES.map((name, i) => ({ name, bytes: 50 + i })) },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await emulator.close();
    s3.destroy();
  });

  async function archive(bucket: string, graphId: string, backupId: string): Promise<void> {
    const result = await runCli(['archive', '--graph', graphId, '--backup', backupId, '--json'], iamEnv(emulator, bucket));
    if (result.code !== 0) throw new Error(`archiving ${graphId}/${backupId} failed: ${result.stdout}${result.stderr}`);
  }

  async function put(bucket: string, objectKey: string, body: Buffer | string): Promise<void> {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: objectKey, Body: body }));
  }

  function problemsOf(report: VerifyReport): string[] {
    return report.problems.map((p) => `${p.kind} ${p.key}`).sort();
  }

  it('passes a fresh archive, with only ARCHIVE_BUCKET set (no GES settings)', async () => {
    // Prepare
    const bucket = await createTestBucket('verify-fresh');
    await archive(bucket, G1, B1);
    await archive(bucket, G2, B2);

    // Act
    const json = await runCli(['verify', '--json'], storageEnv(bucket));
    const human = await runCli(['verify'], storageEnv(bucket));

    // Assess
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as VerifyReport;
    expect(report).toMatchObject({ files: 7, checked: 7, matched: 7, problems: [], incomplete: [] });
    expect(report.backups.map((b) => [b.graphId, b.backupId, b.files, b.matched])).toEqual([[G1, B1, 6, 6], [G2, B2, 1, 1]]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('Verified 2 archived backups: 7 files listed, 7 re-read and hashed, 7 matched; no problems.');
  });

  it('names every altered, truncated, longer, deleted, unlisted and phantom file', async () => {
    // Prepare: archive, then damage the stored copy in every way the issue names.
    const bucket = await createTestBucket('verify-damage');
    await archive(bucket, G1, B1);
    const original = await getObjectBytes(bucket, key(G1, B1, 'altered.bin'));
    const other = Buffer.from(original);
    other[1234] = (other[1234]! + 1) % 256; // one byte flipped, same length
    await put(bucket, key(G1, B1, 'altered.bin'), other);
    await put(bucket, key(G1, B1, 'truncated.bin'), (await getObjectBytes(bucket, key(G1, B1, 'truncated.bin'))).subarray(0, 1999));
    await put(bucket, key(G1, B1, 'longer.bin'), Buffer.concat([await getObjectBytes(bucket, key(G1, B1, 'longer.bin')), Buffer.from('x')]));
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key(G1, B1, 'deleted.bin') }));
    await put(bucket, key(G1, B1, 'stray.bin'), 'not part of the backup');
    const manifest = JSON.parse((await getObjectBytes(bucket, key(G1, B1, 'manifest.json'))).toString()) as {
      fileCount: number; totalBytes: number; files: { name: string; key: string; bytes: number; sha256: string }[];
    };
    manifest.files.push({ name: 'ghost.bin', key: key(G1, B1, 'ghost.bin'), bytes: 10, sha256: createHash('sha256').update('ghost').digest('hex') });
    manifest.fileCount += 1;
    manifest.totalBytes += 10;
    await put(bucket, key(G1, B1, 'manifest.json'), JSON.stringify(manifest));

    // Act
    const json = await runCli(['verify', '--graph', G1, '--json'], storageEnv(bucket));
    const human = await runCli(['verify', '--graph', G1], storageEnv(bucket));

    // Assess
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as VerifyReport;
    expect(problemsOf(report)).toEqual([
      `altered ${key(G1, B1, 'altered.bin')}`,
      `extra ${key(G1, B1, 'stray.bin')}`,
      `missing ${key(G1, B1, 'deleted.bin')}`,
      `missing ${key(G1, B1, 'ghost.bin')}`,
      `size-mismatch ${key(G1, B1, 'longer.bin')}`,
      `truncated ${key(G1, B1, 'truncated.bin')}`,
      // The edited manifest.json lists ghost.bin, which SHA256SUMS (written with the archive) does not.
      `sha256sums-mismatch ${key(G1, B1, 'SHA256SUMS')}`,
    ].sort());
    expect(report.problems.find((p) => p.kind === 'truncated')).toMatchObject({ expected: { bytes: 2000 }, actual: { bytes: 1999 } });
    expect(report.problems.find((p) => p.kind === 'altered')).toMatchObject({
      expected: { bytes: 3000, sha256: emulator.fileSha256(G1, B1, 'altered.bin') },
      actual: { bytes: 3000, sha256: createHash('sha256').update(other).digest('hex') },
    });
    // empty.txt and big.bin are intact.
    expect(report).toMatchObject({ files: 7, checked: 7, matched: 2 });
    expect(human.code).toBe(1);
    for (const name of ['altered.bin', 'truncated.bin', 'longer.bin', 'deleted.bin', 'stray.bin', 'ghost.bin']) {
      expect(human.stdout).toContain(key(G1, B1, name));
    }
    expect(human.stdout).toMatch(/^ALTERED\s+\S+altered\.bin/m);
    expect(human.stdout).toContain('7 problems.');
  });

  it('reports an unusable manifest.json as manifest-invalid and still verifies the other backups', async () => {
    // Prepare
    const bucket = await createTestBucket('verify-badmanifest');
    await archive(bucket, G1, B1);
    await archive(bucket, G2, B2);
    await put(bucket, key(G1, B1, 'manifest.json'), '{"version": 1, "graphId": ');

    // Act
    const result = await runCli(['verify', '--json'], storageEnv(bucket));

    // Assess
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as VerifyReport;
    expect(problemsOf(report)).toEqual([`manifest-invalid ${key(G1, B1, 'manifest.json')}`]);
    expect(report.problems[0]?.message).toContain('not valid JSON');
    expect(report.backups.find((b) => b.backupId === B2)).toMatchObject({ files: 1, checked: 1, matched: 1, problems: 0 });
  });

  it('still checks every readable file entry of an inconsistent manifest.json, and reports it manifest-invalid', async () => {
    // Prepare: a wrong fileCount (inconsistent), one entry with an unreadable sha256, one altered file
    const bucket = await createTestBucket('verify-inconsistent');
    await archive(bucket, G1, B1);
    const manifest = JSON.parse((await getObjectBytes(bucket, key(G1, B1, 'manifest.json'))).toString()) as {
      fileCount: number; files: { name: string; sha256: string }[];
    };
    manifest.fileCount += 3;
    manifest.files.find((f) => f.name === 'empty.txt')!.sha256 = 'not-a-digest';
    await put(bucket, key(G1, B1, 'manifest.json'), JSON.stringify(manifest));
    const altered = await getObjectBytes(bucket, key(G1, B1, 'altered.bin'));
    altered[7] = (altered[7]! + 1) % 256;
    await put(bucket, key(G1, B1, 'altered.bin'), altered);

    // Act
    const result = await runCli(['verify', '--json'], storageEnv(bucket));

    // Assess: the five readable entries were re-read; empty.txt's object is listed, so not `extra`
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as VerifyReport;
    expect(problemsOf(report)).toEqual([`altered ${key(G1, B1, 'altered.bin')}`, `manifest-invalid ${key(G1, B1, 'manifest.json')}`]);
    expect(report.problems.find((p) => p.kind === 'manifest-invalid')?.message).toContain('files.');
    expect(report.backups).toEqual([expect.objectContaining({ backupId: B1, files: 5, checked: 5, matched: 4, problems: 2 })]);
  });

  it('fails when nothing is archived under the prefix (a mistyped ARCHIVE_PREFIX), naming the bucket and prefix', async () => {
    // Prepare
    const bucket = await createTestBucket('verify-empty');
    await archive(bucket, G2, B2);

    // Act
    const typo = await runCli(['verify', '--json'], { ...storageEnv(bucket), ARCHIVE_PREFIX: 'ges-backup/' });
    const human = await runCli(['verify'], { ...storageEnv(bucket), ARCHIVE_PREFIX: 'ges-backup/' });
    const empty = await runCli(['verify'], storageEnv(await createTestBucket('verify-empty2')));

    // Assess
    expect(typo.code).toBe(1);
    const report = JSON.parse(typo.stdout) as VerifyReport;
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'missing', key: 'ges-backup/' })]);
    expect(report.problems[0]?.message).toContain(`nothing is archived under s3://${bucket}/ges-backup/`);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(new RegExp(`^MISSING\\s+ges-backup/: nothing is archived under s3://${bucket}/ges-backup/`, 'm'));
    expect(human.stdout).toContain('Verified 0 archived backups');
    expect(empty.code).toBe(1);
  });

  it('shows progress on stderr: plain lines, or JSON records with LOG_FORMAT=json; nothing with --no-progress', async () => {
    // Prepare
    const bucket = await createTestBucket('verify-progress');
    await archive(bucket, G1, B1);

    // Act
    const plain = await runCli(['verify', '--json'], storageEnv(bucket));
    const json = await runCli(['verify', '--json'], { ...storageEnv(bucket), LOG_FORMAT: 'json' });
    const quiet = await runCli(['verify', '--json', '--no-progress'], storageEnv(bucket));

    // Assess
    expect([plain.code, json.code, quiet.code]).toEqual([0, 0, 0]);
    const total = (6 * MiB + 7) + 3000 + 2000 + 1500 + 1000;
    expect(plain.stderr).toMatch(/^progress: 6\.0 MiB of 6\.0 MiB, .+\/s, files 6\/6$/m);
    const records = json.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((r) => r['msg'] === 'progress')).toBe(true);
    expect(records.at(-1)).toMatchObject({ level: 'info', bytes: total, totalBytes: total, files: 6, totalFiles: 6 });
    expect(quiet.stderr).toBe('');
  });

  it('checks SHA256SUMS against manifest.json (never reported as extra) and names where they disagree', async () => {
    // Prepare
    const bucket = await createTestBucket('verify-sums');
    await archive(bucket, G1, B1);
    await archive(bucket, G2, B2);
    const sumsKey = key(G1, B1, 'SHA256SUMS');
    const sums = (await getObjectBytes(bucket, sumsKey)).toString();
    const clean = await runCli(['verify', '--json'], storageEnv(bucket));
    await put(bucket, sumsKey, sums.replace(emulator.fileSha256(G1, B1, 'big.bin'), 'f'.repeat(64)));
    await put(bucket, key(G2, B2, 'SHA256SUMS'), 'not a checksum file\n');

    // Act
    const result = await runCli(['verify', '--json'], storageEnv(bucket));
    const human = await runCli(['verify'], storageEnv(bucket));

    // Assess
    expect(clean.code).toBe(0);
    expect(sums.split('\n').filter((l) => l !== '')).toHaveLength(6);
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as VerifyReport;
    expect(problemsOf(report)).toEqual([`sha256sums-mismatch ${sumsKey}`, `sha256sums-mismatch ${key(G2, B2, 'SHA256SUMS')}`].sort());
    expect(report.problems.find((p) => p.key === sumsKey)?.message).toMatch(/^big\.bin: SHA256SUMS says f{64}, manifest\.json says [0-9a-f]{64}$/);
    expect(report.problems.find((p) => p.backupId === B2)?.message).toMatch(/not in sha256sum format/);
    expect(human.stdout).toContain(`SHA256SUMS-MISMATCH ${sumsKey}: big.bin`);
  });

  it('--sample 50 re-reads 20 of 40 files, chosen by the seeded generator, yet still finds a deleted file outside the sample', async () => {
    // Prepare
    const bucket = await createTestBucket('verify-sample');
    await archive(bucket, G2, MANY);
    const client = s3Client();
    const reads: string[] = [];
    client.middlewareStack.add((next, context) => async (args) => {
      if (context.commandName === 'GetObjectCommand') reads.push((args.input as { Key: string }).Key);
      return next(args);
    }, { step: 'initialize', name: 'recordGetObject' });
    const deps = { s3: client, config: { archive: { bucket, prefix: PREFIX } }, logger: silentLogger(), retry: createRetryPolicy() };
    // manifest.json and SHA256SUMS are read for every backup; the sample is about the files.
    const dataReads = (): string[] => reads.filter((k) => !k.endsWith('/manifest.json') && !k.endsWith('/SHA256SUMS')).sort();

    try {
      // Act
      const first = await verifyArchive(deps, { samplePercent: 50, random: seededRandom(1) });
      const firstReads = dataReads();
      reads.length = 0;
      const again = await verifyArchive(deps, { samplePercent: 50, random: seededRandom(1) });
      const againReads = dataReads();
      reads.length = 0;
      const other = await verifyArchive(deps, { samplePercent: 50, random: seededRandom(2) });
      const otherReads = dataReads();
      const unread = MANY_NAMES.map((n) => key(G2, MANY, n)).find((k) => !firstReads.includes(k))!;
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: unread }));
      reads.length = 0;
      const damaged = await verifyArchive(deps, { samplePercent: 50, random: seededRandom(1) });

      // Assess
      expect(first).toMatchObject({ files: 40, checked: 20, matched: 20, samplePercent: 50, problems: [] });
      expect(firstReads).toHaveLength(20);
      expect(new Set(firstReads).size).toBe(20);
      expect(againReads).toEqual(firstReads);
      expect(again.checked).toBe(20);
      expect(other.checked).toBe(20);
      expect(otherReads).not.toEqual(firstReads);
      expect(damaged.problems).toEqual([expect.objectContaining({ kind: 'missing', key: unread })]);
      expect(damaged.checked).toBe(20);
      expect(dataReads()).not.toContain(unread);
    } finally {
      client.destroy();
    }
  });

  it('--sample on the command line: 25% of 40 files re-reads 10', async () => {
    // Prepare
    const bucket = await createTestBucket('verify-sample-cli');
    await archive(bucket, G2, MANY);

    // Act
    const result = await runCli(['verify', '--sample', '25%', '--seed', '7', '--json'], storageEnv(bucket));
    const human = await runCli(['verify', '--sample', '25'], storageEnv(bucket));

    // Assess
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ files: 40, checked: 10, matched: 10, samplePercent: 25, problems: [] });
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('40 files listed, 10 re-read and hashed (sample 25%), 10 matched');
  });

  it('narrows to one backup, calls a backup that is not archived missing, and leaves half-archived folders out', async () => {
    // Prepare
    const bucket = await createTestBucket('verify-scope');
    await archive(bucket, G1, B1);
    await archive(bucket, G2, B2);
    const halfDone = `${PREFIX}${G2}/${MANY}/`;
    await put(bucket, `${halfDone}part-00.bin`, randomBytes(50));

    // Act
    const one = await runCli(['verify', '--graph', G2, '--backup', B2, '--json'], storageEnv(bucket));
    const byBackupOnly = await runCli(['verify', '--backup', B2, '--json'], storageEnv(bucket));
    const all = await runCli(['verify', '--json'], storageEnv(bucket));
    const notArchived = await runCli(['verify', '--graph', G2, '--backup', MANY, '--json'], storageEnv(bucket));
    const unknown = await runCli(['verify', '--graph', 'no-such-graph', '--json'], storageEnv(bucket));

    // Assess
    expect(one.code).toBe(0);
    expect((JSON.parse(one.stdout) as VerifyReport).backups.map((b) => b.backupId)).toEqual([B2]);
    expect(byBackupOnly.code).toBe(0);
    expect((JSON.parse(byBackupOnly.stdout) as VerifyReport).backups.map((b) => b.backupId)).toEqual([B2]);
    expect(all.code).toBe(0);
    const allReport = JSON.parse(all.stdout) as VerifyReport;
    expect(allReport.backups.map((b) => b.backupId).sort()).toEqual([B1, B2].sort());
    expect(allReport.incomplete).toEqual([{ graphId: G2, backupId: MANY, prefix: halfDone }]);
    expect(notArchived.code).toBe(1);
    expect(problemsOf(JSON.parse(notArchived.stdout) as VerifyReport)).toEqual([`missing ${halfDone}manifest.json`]);
    expect(unknown.code).toBe(1);
    expect(problemsOf(JSON.parse(unknown.stdout) as VerifyReport)).toEqual([`missing ${PREFIX}no-such-graph/`]);
  });

  it('exits 2 for bad arguments or configuration, before reading anything', async () => {
    const bucket = await createTestBucket('verify-args');
    const env = storageEnv(bucket);

    const results = await Promise.all([
      runCli(['verify', '--sample', '0'], env),
      runCli(['verify', '--sample', '101'], env),
      runCli(['verify', '--sample', 'half'], env),
      runCli(['verify', '--seed', '-1'], env),
      runCli(['verify', '--concurrency', '0'], env),
      runCli(['verify', '--graph', '../x'], env),
      runCli(['verify', '--backup', 'a/b'], env),
      runCli(['verify', '--bogus'], env),
      runCli(['verify'], { ...env, ARCHIVE_BUCKET: undefined }),
    ]);
    const json = await runCli(['verify', '--sample', '0', '--json'], env);

    expect(results.map((r) => r.code)).toEqual(results.map(() => 2));
    expect(results[0]?.stderr).toContain('--sample');
    expect(results[8]?.stderr).toContain('ARCHIVE_BUCKET');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'ARGS_INVALID' } });
  });
});
