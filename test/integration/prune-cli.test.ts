// Retention against Swift: `ges-archiver prune` through the CLI, and pruneArchive with an S3
// client that gives Swift AWS's Object Lock behaviour (Swift has none): HeadObject reports the
// retention or legal hold of chosen keys and DeleteObject on them answers 403 AccessDenied.
import { randomBytes } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { fileKey, manifestKey, runReportKey } from '../../lib/store/keys.js';
import { ErrorCodes } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { pruneArchive, pruneExitCode } from '../../lib/prune/prune.js';
import type { PruneDeps, PruneReport } from '../../lib/prune/types.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { writeArchivedBackup } from '../support/archive-fixture.js';
import { createTestBucket, listKeys, s3Client } from '../support/aws.js';
import { runCli, useLocalS3 } from '../support/cli.js';

const PREFIX = 'ges-backups/';
const DAY = 86_400_000;
const G1 = '4c5f882d-a813-4d78-a8e3-6d3212ddd121';
const G2 = '9b9a05c2-0000-4000-8000-000000000001';
const fastRetry = createRetryPolicy({ maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 2_000 });

/** Backup ids that sort by age: b-<days ago>. */
const id = (daysAgo: number): string => `b-${String(daysAgo).padStart(3, '0')}`;

function storageEnv(bucket: string): Record<string, string | undefined> {
  return { ARCHIVE_BUCKET: bucket, S3_FORCE_PATH_STYLE: 'true', LOG_LEVEL: 'warn' };
}

describe('ges-archiver prune', () => {
  let s3: S3Client;
  const now = Date.now();

  beforeAll(() => {
    useLocalS3();
    s3 = s3Client();
  });

  afterAll(() => {
    s3.destroy();
  });

  async function put(bucket: string, key: string, body: Buffer | string): Promise<void> {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }

  /** An archived backup as the archiver lays it out (and optional _state/ leftovers). */
  async function archived(bucket: string, graphId: string, daysAgo: number, options: { backupTime?: boolean; state?: boolean } = {}): Promise<void> {
    const at = now - daysAgo * DAY;
    await writeArchivedBackup(s3, bucket, PREFIX, {
      graphId, backupId: id(daysAgo), archivedAt: new Date(at + 3_600_000),
      files: { 'a.bin': randomBytes(100 + daysAgo), 'b.bin': randomBytes(100 + daysAgo) },
      ...(options.backupTime === false ? {} : { backupTimestamp: at }),
    });
    if (options.state) await put(bucket, `${PREFIX}_state/${graphId}/${id(daysAgo)}/files/a.bin.json`, '{}');
  }

  async function runReport(bucket: string, daysAgo: number): Promise<string> {
    const stamp = new Date(now - daysAgo * DAY).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const key = runReportKey(PREFIX, `${stamp}-${randomBytes(4).toString('hex')}`);
    await put(bucket, key, '{}');
    return key;
  }

  /** G1: 1, 3, 8, 20 and 40 days old (20 with _state/ leftovers); G2: 2 and 30 days old. */
  async function archive(prefix: string): Promise<string> {
    const bucket = await createTestBucket(prefix);
    for (const d of [1, 3, 8, 40]) await archived(bucket, G1, d);
    await archived(bucket, G1, 20, { state: true });
    await archived(bucket, G2, 2);
    await archived(bucket, G2, 30, { backupTime: false });
    return bucket;
  }

  const backupKeys = async (bucket: string, graphId: string, daysAgo: number): Promise<string[]> => [
    ...await listKeys(bucket, `${PREFIX}${graphId}/${id(daysAgo)}/`),
    ...await listKeys(bucket, `${PREFIX}_state/${graphId}/${id(daysAgo)}/`),
  ];

  it('refuses to run without --keep-last, or with 0, and deletes nothing (exit 2)', async () => {
    // Prepare
    const bucket = await createTestBucket('prune-refuse');
    await archived(bucket, G1, 50);
    const before = await listKeys(bucket);

    // Act
    const none = await runCli(['prune', '--json'], storageEnv(bucket));
    const zero = await runCli(['prune', '--keep-last', '0'], storageEnv(bucket));
    const badWithin = await runCli(['prune', '--keep-last', '1', '--keep-within', '3 months'], storageEnv(bucket));

    // Assess
    expect([none.code, zero.code, badWithin.code]).toEqual([2, 2, 2]);
    expect(none.stderr).toMatch(/--keep-last/);
    expect(badWithin.stderr).toMatch(/--keep-within/);
    expect(await listKeys(bucket)).toEqual(before);
  });

  it('keeps the newest N per graph and deletes the others completely: manifest.json, files, SHA256SUMS and _state/', async () => {
    // Prepare
    const bucket = await archive('prune-last');
    const incomplete = `${PREFIX}${G1}/b-copying/a.bin`;
    await put(bucket, incomplete, 'half');

    // Act
    const res = await runCli(['prune', '--keep-last', '2', '--json'], storageEnv(bucket));

    // Assess
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout) as PruneReport;
    expect(report.kept.map((k) => [k.graphId, k.backupId])).toEqual([[G1, id(1)], [G1, id(3)], [G2, id(2)], [G2, id(30)]]);
    expect(report.deleted.map((d) => [d.graphId, d.backupId, d.files])).toEqual([[G1, id(8), 2], [G1, id(20), 2], [G1, id(40), 2]]);
    expect(report.deleted.find((d) => d.backupId === id(8))!.bytes).toBe(2 * 108);
    for (const d of [8, 20, 40]) expect(await backupKeys(bucket, G1, d)).toEqual([]);
    for (const d of [1, 3]) expect((await backupKeys(bucket, G1, d)).map((k) => k.slice(k.lastIndexOf('/') + 1)).sort()).toEqual(['SHA256SUMS', 'a.bin', 'b.bin', 'manifest.json']);
    expect(await listKeys(bucket, incomplete)).toEqual([incomplete]);
    const list = JSON.parse((await runCli(['list', '--json'], storageEnv(bucket))).stdout) as { backups: { backupId: string }[] };
    expect(list.backups.map((b) => b.backupId).sort()).toEqual([id(1), id(2), id(3), id(30)]);
  });

  it('--dry-run reports the same plan and deletes nothing', async () => {
    // Prepare
    const bucket = await archive('prune-dry');
    const before = await listKeys(bucket);

    // Act
    const dry = await runCli(['prune', '--keep-last', '2', '--dry-run', '--json'], storageEnv(bucket));
    const afterDry = await listKeys(bucket);
    const real = await runCli(['prune', '--keep-last', '2', '--json'], storageEnv(bucket));

    // Assess
    expect(dry.code).toBe(0);
    const planned = JSON.parse(dry.stdout) as PruneReport;
    const done = JSON.parse(real.stdout) as PruneReport;
    expect(planned.dryRun).toBe(true);
    expect(planned.deleted).toEqual(done.deleted);
    expect(planned.kept).toEqual(done.kept);
    expect(afterDry).toEqual(before);
    expect(planned.deleted.length).toBe(3);
    // Three backups of four objects each, plus the _state/ leftover of one of them.
    expect((await listKeys(bucket)).length).toBe(before.length - 3 * 4 - 1);
  });

  it('--keep-within keeps every younger backup and deletes older run reports; --graph limits it to one graph', async () => {
    // Prepare
    const bucket = await archive('prune-within');
    const oldRun = await runReport(bucket, 15);
    const newRun = await runReport(bucket, 5);

    // Act
    const onlyG2 = await runCli(['prune', '--keep-last', '1', '--keep-within', '10d', '--graph', G2, '--json'], storageEnv(bucket));
    const all = await runCli(['prune', '--keep-last', '1', '--keep-within', '1w2d', '--json'], storageEnv(bucket));

    // Assess
    expect(onlyG2.code).toBe(0);
    const g2 = JSON.parse(onlyG2.stdout) as PruneReport;
    expect(g2.deleted.map((d) => d.backupId)).toEqual([id(30)]);
    expect(g2.kept.map((k) => [k.backupId, k.reasons])).toEqual([[id(2), ['last', 'within']]]);
    expect(g2.runReports).toBeUndefined();
    expect(all.code).toBe(0);
    const report = JSON.parse(all.stdout) as PruneReport;
    expect(report.kept.map((k) => [k.backupId, k.reasons])).toEqual([[id(1), ['last', 'within']], [id(3), ['within']], [id(8), ['within']], [id(2), ['last', 'within']]]);
    expect(report.deleted.map((d) => d.backupId)).toEqual([id(20), id(40)]);
    expect(report.runReports).toEqual({ deleted: 1, kept: 1 });
    expect(await listKeys(bucket, `${PREFIX}_runs/`)).toEqual([newRun]);
    expect(oldRun).not.toBe(newRun);
  });

  describe('with Object Lock (AWS behaviour emulated in front of Swift)', () => {
    /** A client whose HeadObject reports a lock on `locked` keys and whose DeleteObject refuses them (403), recording every delete. */
    function lockingClient(locked: { keys: Set<string>; visible: boolean }, deletes: string[]): S3Client {
      const client = s3Client();
      client.middlewareStack.add((next, context) => async (args) => {
        const input = args.input as { Key?: string };
        const isLocked = input.Key !== undefined && locked.keys.has(input.Key);
        if (context.commandName === 'DeleteObjectCommand') {
          if (isLocked) {
            throw Object.assign(new Error('Access Denied because object protected by object lock.'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
          }
          deletes.push(input.Key!);
        }
        const result = await next(args);
        if (context.commandName === 'HeadObjectCommand' && isLocked && locked.visible) {
          Object.assign(result.output as object, { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: new Date(now + 30 * DAY), ObjectLockLegalHoldStatus: 'OFF' });
        }
        return result;
      }, { step: 'initialize', name: 'awsObjectLock' });
      return client;
    }

    function deps(bucket: string, client: S3Client): PruneDeps {
      return { s3: client, config: { archive: { bucket, prefix: PREFIX } }, logger: silentLogger(), retry: fastRetry };
    }

    it('reports a backup with a locked object as LOCKED and deletes nothing of it; the others are pruned', async () => {
      // Prepare
      const bucket = await archive('prune-locked');
      const lockedKey = fileKey(PREFIX, G1, id(20), 'b.bin');
      const deletes: string[] = [];
      const client = lockingClient({ keys: new Set([lockedKey]), visible: true }, deletes);
      const before = await backupKeys(bucket, G1, 20);

      // Act
      const dry = await pruneArchive(deps(bucket, client), { keepLast: 2, dryRun: true });
      const report = await pruneArchive(deps(bucket, client), { keepLast: 2 });

      // Assess
      expect(dry.locked.map((l) => l.backupId)).toEqual([id(20)]);
      expect(report.locked).toEqual([expect.objectContaining({ graphId: G1, backupId: id(20), code: ErrorCodes.Locked, keys: [lockedKey] })]);
      expect(report.locked[0]!.message).toMatch(/GOVERNANCE retention until/);
      expect(report.deleted.map((d) => d.backupId)).toEqual([id(8), id(40)]);
      expect(await backupKeys(bucket, G1, 20)).toEqual(before);
      expect(deletes.some((k) => k.includes(`/${id(20)}/`))).toBe(false);
      expect(pruneExitCode(report)).toBe(1);
      // manifest.json goes first, the _state/ marker last.
      const ofB8 = deletes.filter((k) => k.includes(`/${id(8)}/`));
      expect(ofB8[0]).toBe(manifestKey(PREFIX, G1, id(8)));
      expect(ofB8.at(-1)).toBe(`${PREFIX}_state/${G1}/${id(8)}/prune.json`);
      client.destroy();
    });

    it('treats a 403 on manifest.json (a lock HeadObject does not show) as LOCKED: nothing deleted, no marker left', async () => {
      // Prepare
      const bucket = await archive('prune-hidden-lock');
      const deletes: string[] = [];
      const client = lockingClient({ keys: new Set([manifestKey(PREFIX, G1, id(40))]), visible: false }, deletes);
      const before = await backupKeys(bucket, G1, 40);

      // Act
      const report = await pruneArchive(deps(bucket, client), { keepLast: 3 });

      // Assess
      expect(report.locked.map((l) => [l.backupId, l.code])).toEqual([[id(40), ErrorCodes.Locked]]);
      expect(report.failed).toEqual([]);
      expect(await backupKeys(bucket, G1, 40)).toEqual(before);
      client.destroy();
    });

    it('finishes, on the next prune, a backup whose deletion stopped part way (manifest.json already gone)', async () => {
      // Prepare: a file of the 40-day backup refuses deletion once
      const bucket = await archive('prune-finish');
      const stuck = fileKey(PREFIX, G1, id(40), 'a.bin');
      const client = lockingClient({ keys: new Set([stuck]), visible: false }, []);
      const first = await pruneArchive(deps(bucket, client), { keepLast: 4 });
      client.destroy();

      // Act
      const second = await pruneArchive(deps(bucket, s3), { keepLast: 4 });

      // Assess
      expect(first.failed.map((f) => [f.backupId, f.code])).toEqual([[id(40), ErrorCodes.Locked]]);
      expect(first.failed[0]!.message).toMatch(/next prune finishes/);
      expect(await listKeys(bucket, manifestKey(PREFIX, G1, id(40)))).toEqual([]);
      expect(second.finished).toEqual([{ graphId: G1, backupId: id(40) }]);
      expect(second.failed).toEqual([]);
      expect(await backupKeys(bucket, G1, 40)).toEqual([]);
      expect(pruneExitCode(second)).toBe(0);
    });
  });
});
