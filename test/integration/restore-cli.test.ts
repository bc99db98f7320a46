// The way back, end to end with the built CLI against the GES emulator and Swift:
// archive → verify → restore (to a directory, to a second S3 store) → import into GES; and the
// repair path (archive --force) for a damaged object.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { RestoreReport } from '../../lib/restore/types.js';
import { startEmulator, type Emulator } from '../emulator/index.js';
import { createTestBucket, getObjectBytes, listInProgressUploads, listKeys, s3Client, s3Endpoint } from '../support/aws.js';
import { iamEnv, runCli, useLocalS3 } from '../support/cli.js';

const MiB = 1024 * 1024;
const G = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const B = '0f1e2d3c-4b5a-4697-8877-665544332211';
const PREFIX = 'ges-backups/';
/** Restore uses 8 MiB parts: edges.tar is a multipart upload, the others single PUTs. */
const FILES = [
  { name: 'metadata.xml', bytes: 3 * 1024 },
  { name: 'vertices.bin', bytes: 3 * MiB + 123 },
  { name: 'edges.tar', bytes: 17 * MiB + 5 },
  { name: 'empty.txt', bytes: 0 },
];
const NAMES = FILES.map((f) => f.name).sort();

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A copy of `body` with the byte at `at` (negative: from the end) flipped. */
function flipped(body: Buffer, at: number): Buffer {
  const copy = Buffer.from(body);
  const i = at < 0 ? copy.length + at : at;
  copy.writeUInt8(copy.readUInt8(i) ^ 0xff, i);
  return copy;
}
const key = (name: string): string => `${PREFIX}${G}/${B}/${name}`;

describe('ges-archiver restore', () => {
  let emulator: Emulator;
  let s3: S3Client;
  let bucket: string;
  let env: Record<string, string | undefined>;
  const dirs: string[] = [];
  /** What the emulated GES import checks: the folder holds exactly the backup's files, byte for byte. */
  let importChecks: string[] = [];

  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'restore-'));
    dirs.push(dir);
    return dir;
  }

  async function overwrite(name: string, body: Buffer): Promise<void> {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key(name), Body: body }));
  }

  async function original(name: string): Promise<Buffer> {
    return getObjectBytes(bucket, key(name));
  }

  /** The second store: the same Swift through its own client and the RESTORE_S3_* settings. */
  function targetEnv(): Record<string, string | undefined> {
    return {
      ...env,
      RESTORE_S3_ENDPOINT: s3Endpoint(),
      RESTORE_S3_REGION: process.env.AWS_REGION ?? 'us-east-1',
      RESTORE_S3_FORCE_PATH_STYLE: 'true',
      RESTORE_S3_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'test:tester',
      RESTORE_S3_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
    };
  }

  beforeAll(async () => {
    useLocalS3();
    s3 = s3Client();
    emulator = await startEmulator({
      graphs: [{ id: G, backups: [{ id: B, name: 'g-b', files: FILES }] }],
      importPollsUntilDone: 3,
      verifyImport: async (importPath) => {
        const [importBucket, ...rest] = importPath.split('/');
        const folder = `${rest.join('/')}/`;
        const keys = (await listKeys(importBucket!, folder)).map((k) => k.slice(folder.length)).sort();
        importChecks.push(importPath);
        if (JSON.stringify(keys) !== JSON.stringify(NAMES)) return `unexpected objects in ${importPath}: ${keys.join(', ')}`;
        for (const f of FILES) {
          if (sha256(await getObjectBytes(importBucket!, `${folder}${f.name}`)) !== emulator.fileSha256(G, B, f.name)) return `${f.name} differs`;
        }
        return undefined;
      },
    });
    bucket = await createTestBucket('restore');
    env = iamEnv(emulator, bucket);
    const archived = await runCli(['archive', '--graph', G, '--backup', B, '--json'], env);
    expect(archived.code).toBe(0);
  });

  afterAll(async () => {
    await emulator.close();
    s3.destroy();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(() => {
    emulator.faults.reset();
    importChecks = [];
  });

  describe('to a directory', () => {
    it('restores every file verified, writes SHA256SUMS that the system sha256sum -c accepts, and keeps matching files on a re-run', async () => {
      // Prepare
      const dir = join(tempDir(), 'new-subdir');

      // Act
      const first = await runCli(['restore', '--graph', G, '--backup', B, '--to', dir, '--json'], env);
      const mtimes = NAMES.map((n) => statSync(join(dir, n)).mtimeMs);
      const again = await runCli(['restore', '--graph', G, '--backup', B, '--to', dir, '--json'], env);

      // Assess
      expect(first.code).toBe(0);
      const report = JSON.parse(first.stdout) as RestoreReport;
      expect(report).toMatchObject({ graphId: G, backupId: B, target: dir });
      expect(report.error).toBeUndefined();
      expect(report.files.map((f) => [f.name, f.status]).sort()).toEqual(NAMES.map((n) => [n, 'restored']));
      for (const f of FILES) {
        const body = readFileSync(join(dir, f.name));
        expect(body.length).toBe(f.bytes);
        expect(sha256(body)).toBe(emulator.fileSha256(G, B, f.name));
        expect(report.files.find((x) => x.name === f.name)).toMatchObject({ bytes: f.bytes, sha256: emulator.fileSha256(G, B, f.name) });
      }
      expect(readdirSync(dir).sort()).toEqual([...NAMES, 'SHA256SUMS'].sort());
      const check = execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
      expect(check.trim().split('\n').sort()).toEqual(NAMES.map((n) => `${n}: OK`));

      expect(again.code).toBe(0);
      expect((JSON.parse(again.stdout) as RestoreReport).files.map((f) => f.status)).toEqual(NAMES.map(() => 'kept'));
      expect(NAMES.map((n) => statSync(join(dir, n)).mtimeMs)).toEqual(mtimes);
    });

    it('refuses a file that differs (exit 2, nothing written) unless --force, which replaces it', async () => {
      // Prepare
      const dir = tempDir();
      expect((await runCli(['restore', '--graph', G, '--backup', B, '--to', dir], env)).code).toBe(0);
      writeFileSync(join(dir, 'vertices.bin'), 'local edit');
      rmSync(join(dir, 'metadata.xml'));

      // Act
      const refused = await runCli(['restore', '--graph', G, '--backup', B, '--to', dir, '--json'], env);
      const afterRefusal = readFileSync(join(dir, 'vertices.bin'), 'utf8');
      const metadataAfterRefusal = readdirSync(dir).includes('metadata.xml');
      const forced = await runCli(['restore', '--graph', G, '--backup', B, '--to', dir, '--force', '--json'], env);

      // Assess
      expect(refused.code).toBe(2);
      const refusal = JSON.parse(refused.stdout) as RestoreReport;
      expect(refusal.error?.code).toBe('ARGS_INVALID');
      expect(refusal.error?.message).toMatch(/vertices\.bin .*--force/);
      expect(afterRefusal).toBe('local edit');
      expect(metadataAfterRefusal).toBe(false);
      expect(forced.code).toBe(0);
      const statuses = Object.fromEntries((JSON.parse(forced.stdout) as RestoreReport).files.map((f) => [f.name, f.status]));
      expect(statuses).toEqual({ 'metadata.xml': 'restored', 'vertices.bin': 'restored', 'edges.tar': 'kept', 'empty.txt': 'kept' });
      expect(sha256(readFileSync(join(dir, 'vertices.bin')))).toBe(emulator.fileSha256(G, B, 'vertices.bin'));
    });

    it('refuses a directory holding anything but the backup\'s files (exit 2)', async () => {
      const dir = tempDir();
      writeFileSync(join(dir, 'notes.txt'), 'mine');
      const res = await runCli(['restore', '--graph', G, '--backup', B, '--to', dir], env);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/notes\.txt/);
      expect(readdirSync(dir)).toEqual(['notes.txt']);
    });

    it('fails a tampered object with VERIFY_FAILED (exit 1) and leaves nothing at its name, nor a temporary file', async () => {
      // Prepare: same length, other bytes (altered) for one file; one byte short for another
      const vertices = await original('vertices.bin');
      const metadata = await original('metadata.xml');
      await overwrite('vertices.bin', flipped(vertices, -1));
      await overwrite('metadata.xml', metadata.subarray(1));
      const dir = tempDir();

      try {
        // Act
        const res = await runCli(['restore', '--graph', G, '--backup', B, '--to', dir, '--json', '--concurrency', '1'], env);

        // Assess
        expect(res.code).toBe(1);
        const report = JSON.parse(res.stdout) as RestoreReport;
        expect(report.error?.code).toBe('VERIFY_FAILED');
        expect(report.failed?.[0]?.code).toBe('VERIFY_FAILED');
        const entries = readdirSync(dir);
        expect(entries).not.toContain('vertices.bin');
        expect(entries).not.toContain('metadata.xml');
        expect(entries).not.toContain('SHA256SUMS');
        expect(entries.filter((e) => e.startsWith('.'))).toEqual([]);
        for (const f of report.files) expect(sha256(readFileSync(join(dir, f.name)))).toBe(f.sha256);
      } finally {
        await overwrite('vertices.bin', vertices);
        await overwrite('metadata.xml', metadata);
      }
    });

    it('answers NOT_ARCHIVED (exit 1) for a backup that is not archived', async () => {
      const res = await runCli(['restore', '--graph', G, '--backup', 'ada3e720-ab87-48cb-bff7-3ec5ae1a9652', '--to', tempDir(), '--json'], env);
      expect(res.code).toBe(1);
      expect((JSON.parse(res.stdout) as RestoreReport).error?.code).toBe('NOT_ARCHIVED');
    });

    it('refuses --import with a directory, and bad arguments, with exit 2', async () => {
      expect((await runCli(['restore', '--graph', G, '--backup', B, '--to', tempDir(), '--import'], env)).code).toBe(2);
      expect((await runCli(['restore', '--graph', '../x', '--backup', B, '--to', tempDir()], env)).code).toBe(2);
      expect((await runCli(['restore', '--graph', G, '--backup', B], env)).code).toBe(2);
    });
  });

  describe('to a second S3 store, then into GES', () => {
    it('uploads only the backup\'s files, verified, then imports import_path bucket/prefix and follows the job to success', async () => {
      // Prepare
      const target = await createTestBucket('restore-target');

      // Act
      const res = await runCli(['restore', '--graph', G, '--backup', B, '--to', `s3://${target}/restored/b1/`, '--import', '--poll-interval', '0.05', '--json'], targetEnv());

      // Assess
      expect(res.code).toBe(0);
      const report = JSON.parse(res.stdout) as RestoreReport;
      expect(report.target).toBe(`s3://${target}/restored/b1/`);
      expect(report.files.map((f) => f.status)).toEqual(NAMES.map(() => 'restored'));
      expect(report.import).toMatchObject({ importPath: `${target}/restored/b1`, status: 'success', jobId: emulator.stats.imports.at(-1)?.jobId });
      expect(importChecks).toEqual([`${target}/restored/b1`]);
      expect((await listKeys(target)).sort()).toEqual(NAMES.map((n) => `restored/b1/${n}`));
      expect(await listInProgressUploads(target)).toEqual([]);
      expect(res.stderr).toMatch(/import: GES job [0-9a-f]+ (pending|running)/);

      // Act: again, into the same folder: every file is kept (its recorded digest matches)
      const again = await runCli(['restore', '--graph', G, '--backup', B, '--to', `s3://${target}/restored/b1/`, '--json'], targetEnv());

      // Assess
      expect(again.code).toBe(0);
      expect((JSON.parse(again.stdout) as RestoreReport).files.map((f) => f.status)).toEqual(NAMES.map(() => 'kept'));
    });

    it('reports IMPORT_FAILED (exit 1) with GES\'s reason when the import job fails; the files stay in place', async () => {
      const target = await createTestBucket('restore-import-fails');
      emulator.faults.failImport('The graph is not running.');
      const res = await runCli(['restore', '--graph', G, '--backup', B, '--to', `s3://${target}/x/`, '--import', '--poll-interval', '0.05', '--json'], targetEnv());
      expect(res.code).toBe(1);
      const report = JSON.parse(res.stdout) as RestoreReport;
      expect(report.error?.code).toBe('IMPORT_FAILED');
      expect(report.error?.message).toContain('The graph is not running.');
      expect(report.import?.status).toBe('failed');
      expect((await listKeys(target)).length).toBe(FILES.length);
    });

    it('never completes an upload of a tampered object: nothing at its key, no multipart upload left, no import', async () => {
      // Prepare: the multipart file altered in its last byte; the single-PUT file truncated
      const edges = await original('edges.tar');
      const vertices = await original('vertices.bin');
      await overwrite('edges.tar', flipped(edges, -1));
      await overwrite('vertices.bin', vertices.subarray(0, vertices.length - 10));
      const target = await createTestBucket('restore-tampered');
      const importsBefore = emulator.stats.importRequests;

      try {
        // Act
        const res = await runCli(['restore', '--graph', G, '--backup', B, '--to', `s3://${target}/t/`, '--import', '--poll-interval', '0.05', '--json'], targetEnv());

        // Assess
        expect(res.code).toBe(1);
        const report = JSON.parse(res.stdout) as RestoreReport;
        expect(report.error?.code).toBe('VERIFY_FAILED');
        // Both started (4 at once) and both were refused by the verification, the multipart one at its end.
        expect(report.failed?.map((f) => [f.name, f.code]).sort()).toEqual([['edges.tar', 'VERIFY_FAILED'], ['vertices.bin', 'VERIFY_FAILED']]);
        const keys = await listKeys(target);
        expect(keys).not.toContain('t/edges.tar');
        expect(keys).not.toContain('t/vertices.bin');
        expect(await listInProgressUploads(target)).toEqual([]);
        expect(emulator.stats.importRequests).toBe(importsBefore);
        for (const k of keys) {
          const head = await s3.send(new HeadObjectCommand({ Bucket: target, Key: k }));
          expect(head.Metadata?.['ges-sha256']).toBe(emulator.fileSha256(G, B, k.slice('t/'.length)));
        }
      } finally {
        await overwrite('edges.tar', edges);
        await overwrite('vertices.bin', vertices);
      }
    });

    it('writes with the archive\'s own S3 settings without RESTORE_S3_ENDPOINT, and with the RESTORE_S3_* credentials when it is set', async () => {
      // Prepare
      const target = await createTestBucket('restore-own-settings');
      const wrongSecret = { ...targetEnv(), RESTORE_S3_SECRET_ACCESS_KEY: 'not-the-secret' };

      // Act
      const own = await runCli(['restore', '--graph', G, '--backup', B, '--to', `s3://${target}/own/`, '--json'], env);
      const refused = await runCli(['restore', '--graph', G, '--backup', B, '--to', `s3://${target}/other/`, '--json'], wrongSecret);

      // Assess
      expect(own.code).toBe(0);
      expect((await listKeys(target, 'own/')).sort()).toEqual(NAMES.map((n) => `own/${n}`));
      expect(refused.code).toBe(2);
      expect((JSON.parse(refused.stdout) as RestoreReport).error?.message).toMatch(/cannot be listed \(HTTP 403\)/);
      expect(refused.stdout).not.toContain('not-the-secret');
      expect(await listKeys(target, 'other/')).toEqual([]);
    });

    it('refuses a folder that holds other objects (exit 2): GES would import them too', async () => {
      const target = await createTestBucket('restore-busy');
      await s3.send(new PutObjectCommand({ Bucket: target, Key: 'f/other.bin', Body: 'x' }));
      const res = await runCli(['restore', '--graph', G, '--backup', B, '--to', `s3://${target}/f/`], targetEnv());
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/other\.bin/);
      expect(await listKeys(target)).toEqual(['f/other.bin']);
    });
  });

  describe('the repair path', () => {
    it('verify finds an altered object, archive skips it, archive --force archives it again with SHA256SUMS and manifest.json last, verify is clean', async () => {
      // Prepare
      const vertices = await original('vertices.bin');
      await overwrite('vertices.bin', flipped(vertices, 0));
      const manifestBefore = JSON.parse((await original('manifest.json')).toString()) as { archivedAt: string };

      // Act
      const damaged = await runCli(['verify', '--graph', G, '--backup', B, '--json'], env);
      const skipped = await runCli(['archive', '--graph', G, '--backup', B, '--json'], env);
      const forced = await runCli(['archive', '--graph', G, '--backup', B, '--force', '--json'], env);
      const clean = await runCli(['verify', '--graph', G, '--backup', B, '--json'], env);

      // Assess
      expect(damaged.code).toBe(1);
      expect((JSON.parse(damaged.stdout) as { problems: { kind: string; key: string }[] }).problems).toEqual([expect.objectContaining({ kind: 'altered', key: key('vertices.bin') })]);
      expect((JSON.parse(skipped.stdout) as { backups: { status: string }[] }).backups[0]!.status).toBe('skipped');
      expect(forced.code).toBe(0);
      expect((JSON.parse(forced.stdout) as { backups: { status: string }[] }).backups[0]!.status).toBe('archived');
      expect(sha256(await original('vertices.bin'))).toBe(emulator.fileSha256(G, B, 'vertices.bin'));
      const manifestAfter = JSON.parse((await original('manifest.json')).toString()) as { archivedAt: string };
      expect(manifestAfter.archivedAt > manifestBefore.archivedAt).toBe(true);
      expect(clean.code).toBe(0);
      expect((JSON.parse(clean.stdout) as { problems: unknown[] }).problems).toEqual([]);
      expect((await original('SHA256SUMS')).toString()).toBe(NAMES.map((n) => `${emulator.fileSha256(G, B, n)}  ${n}\n`).join(''));
    });
  });
});
