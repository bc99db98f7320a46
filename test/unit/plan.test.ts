import { PutObjectCommand } from '@aws-sdk/client-s3';
import { planRun } from '../../lib/archive/plan.js';
import type { ArchiveDeps } from '../../lib/archive/types.js';
import { ArchiverError } from '../../lib/errors.js';
import { ListingIncompleteError, type GesClient } from '../../lib/ges/client.js';
import type { GesBackup } from '../../lib/ges/types.js';
import { silentLogger } from '../../lib/log.js';
import { createRetryPolicy } from '../../lib/retry.js';
import { createTestBucket, s3Client } from '../support/aws.js';

function backup(id: string, status: string, startTimestamp: number | undefined): GesBackup {
  return { id, name: `n-${id}`, graphId: 'g', status, startTimestamp, endTimestamp: undefined, sizeMb: 1, backupMethod: 'manual' };
}

/** A GES client over fixed lists; counts its calls (the real client is tested against the emulator). */
function fakeGes(lists: Record<string, GesBackup[] | ArchiverError>): GesClient & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    listBackups(graphId) {
      calls.push(`list:${graphId}`);
      const l = lists[graphId];
      if (l === undefined) return Promise.reject(new ArchiverError('GRAPH_NOT_FOUND', `no graph ${graphId}`));
      if (l instanceof ArchiverError) return Promise.reject(l);
      return Promise.resolve(l);
    },
    getBackupFiles(graphId, backupId) {
      calls.push(`links:${graphId}/${backupId}`);
      return Promise.reject(new Error('planning must not ask for links'));
    },
    projectId: () => Promise.resolve('p'),
  };
}

describe('planRun', () => {
  const s3 = s3Client();
  let bucket: string;

  beforeAll(async () => {
    bucket = await createTestBucket('plan');
  });

  function deps(ges: GesClient): ArchiveDeps {
    return {
      config: { archive: { bucket, prefix: 'p/' }, concurrency: { backups: 1, files: 1, parts: 1, streams: 1 }, download: { allowedHosts: [] } },
      s3,
      ges,
      copier: {} as ArchiveDeps['copier'],
      logger: silentLogger(),
      retry: createRetryPolicy({ baseDelayMs: 1, maxDelayMs: 5 }),
    };
  }

  it('picks the newest success backup for latest, every success backup for all, and never running or failed ones', async () => {
    // Prepare
    const ges = fakeGes({
      g1: [backup('old', 'success', 1000), backup('newest-running', 'backing_up', 9000), backup('new', 'success', 5000), backup('bad', 'failed', 8000)],
      g2: [backup('a', 'success', 1), backup('b', 'success', undefined), backup('c', 'failed', 3)],
    });
    // Act
    const plan = await planRun(deps(ges), { version: 1, graphs: [{ graphId: 'g1', backups: 'latest' }, { graphId: 'g2', backups: 'all' }] });
    // Assess
    expect(plan.targets.map((t) => `${t.graphId}/${t.backupId}`)).toEqual(['g1/new', 'g2/a', 'g2/b']);
    expect(plan.settled).toEqual([]);
    expect(ges.calls.filter((c) => c.startsWith('links'))).toEqual([]);
  });

  it('skips archived backups, and archived explicit ids without listing the graph', async () => {
    // Prepare
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'p/g3/done/manifest.json', Body: '{}' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'p/g4/x/manifest.json', Body: '{}' }));
    const ges = fakeGes({ g4: [backup('x', 'success', 2), backup('y', 'success', 1)] });
    // Act
    const plan = await planRun(deps(ges), { version: 1, graphs: [{ graphId: 'g3', backups: ['done'] }, { graphId: 'g4', backups: 'all' }] });
    // Assess
    expect(plan.settled.map((b) => [b.backupId, b.status])).toEqual([['done', 'skipped'], ['x', 'skipped']]);
    expect(plan.targets.map((t) => t.backupId)).toEqual(['y']);
    expect(ges.calls).toEqual(['list:g4']);
  });

  it('with force (archive --force), plans archived backups again, still only success ones that GES lists', async () => {
    // Prepare
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'p/g9/done/manifest.json', Body: '{}' }));
    const ges = fakeGes({ g9: [backup('done', 'success', 2), backup('busy', 'backing_up', 3)] });
    // Act
    const plan = await planRun(deps(ges), { version: 1, graphs: [{ graphId: 'g9', backups: ['done', 'busy'] }] }, undefined, { force: true });
    // Assess
    expect(plan.targets.map((t) => t.backupId)).toEqual(['done']);
    expect(plan.settled.map((b) => [b.backupId, b.status, b.error?.code])).toEqual([['busy', 'failed', 'BACKUP_NOT_READY']]);
    expect(ges.calls).toEqual(['list:g9']);
  });

  it('fails unknown, unfinished and unlisted-graph entries with stable codes, and keeps the rest', async () => {
    // Prepare
    const ges = fakeGes({ g5: [backup('ok', 'success', 1), backup('busy', 'backing_up', 2)], g7: [backup('f', 'failed', 1)] });
    // Act
    const plan = await planRun(deps(ges), {
      version: 1,
      graphs: [
        { graphId: 'g5', backups: ['ok', 'busy', 'nope'] },
        { graphId: 'missing', backups: 'latest' },
        { graphId: 'g7', backups: 'latest' },
      ],
    });
    // Assess
    expect(plan.targets.map((t) => t.backupId)).toEqual(['ok']);
    expect(plan.settled.map((b) => [b.graphId, b.backupId, b.error?.code])).toEqual([
      ['g5', 'busy', 'BACKUP_NOT_READY'],
      ['g5', 'nope', 'BACKUP_NOT_FOUND'],
      ['missing', 'latest', 'GRAPH_NOT_FOUND'],
      ['g7', 'latest', 'NO_BACKUP'],
    ]);
  });

  it('fails latest and all with LISTING_INCOMPLETE on a list short of its backup_count, but archives an explicit id GES did list', async () => {
    // Prepare: GES listed 2 of its 5 backups; the newest is among the missing
    const partial = [backup('listed-1', 'success', 1), backup('listed-2', 'success', 2)];
    const incomplete = () => new ListingIncompleteError('g9', partial, 5, 2);
    const ges = fakeGes({ g9: incomplete(), g10: incomplete(), g11: incomplete() });
    // Act
    const plan = await planRun(deps(ges), {
      version: 1,
      graphs: [
        { graphId: 'g9', backups: 'latest' },
        { graphId: 'g10', backups: 'all' },
        { graphId: 'g11', backups: ['listed-2', 'not-listed'] },
      ],
    });
    // Assess
    expect(plan.targets.map((t) => `${t.graphId}/${t.backupId}`)).toEqual(['g11/listed-2']);
    expect(plan.settled.map((b) => [b.graphId, b.backupId, b.error?.code])).toEqual([
      ['g9', 'latest', 'LISTING_INCOMPLETE'],
      ['g10', 'all', 'LISTING_INCOMPLETE'],
      ['g11', 'not-listed', 'LISTING_INCOMPLETE'],
    ]);
  });

  it('refuses a backup id from GES that is not a safe key segment', async () => {
    const ges = fakeGes({ g8: [backup('../../etc', 'success', 1)] });
    const plan = await planRun(deps(ges), { version: 1, graphs: [{ graphId: 'g8', backups: 'all' }] });
    expect(plan.targets).toEqual([]);
    expect(plan.settled[0]?.error?.code).toBe('GES_BAD_RESPONSE');
  });
});
