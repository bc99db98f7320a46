import { ErrorCodes } from '../../../lib/errors.js';
import { parseDuration } from '../../../lib/prune/duration.js';
import { planPrune, type PruneCandidate } from '../../../lib/prune/plan.js';
import { thrown } from '../../support/thrown.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 30);

function backup(graphId: string, backupId: string, daysAgo: number | undefined): PruneCandidate {
  return { graphId, backupId, time: daysAgo === undefined ? undefined : NOW - daysAgo * DAY };
}

describe('planPrune', () => {
  const backups = [
    backup('g1', 'd1', 1), backup('g1', 'd5', 5), backup('g1', 'd2', 2), backup('g1', 'd40', 40), backup('g1', 'd9', 9),
    backup('g2', 'only', 400),
  ];

  it('keeps the newest N per graph and deletes the rest', () => {
    const plan = planPrune(backups, { keepLast: 2, now: NOW });
    expect(plan.keep.map((k) => [k.backupId, k.reasons])).toEqual([['d1', ['last']], ['d2', ['last']], ['only', ['last']]]);
    expect(plan.remove.map((r) => r.backupId)).toEqual(['d5', 'd9', 'd40']);
  });

  it('also keeps everything younger than keepWithin', () => {
    const plan = planPrune(backups, { keepLast: 1, keepWithinMs: 7 * DAY, now: NOW });
    expect(plan.keep.map((k) => [k.backupId, k.reasons])).toEqual([['d1', ['last', 'within']], ['d2', ['within']], ['d5', ['within']], ['only', ['last']]]);
    expect(plan.remove.map((r) => r.backupId)).toEqual(['d9', 'd40']);
  });

  it('always keeps a backup with an unknown time, without counting it towards N', () => {
    const plan = planPrune([backup('g', 'bad', undefined), backup('g', 'new', 1), backup('g', 'old', 2)], { keepLast: 1, now: NOW });
    expect(plan.keep.map((k) => [k.backupId, k.reasons])).toEqual([['bad', ['unreadable']], ['new', ['last']]]);
    expect(plan.remove.map((r) => r.backupId)).toEqual(['old']);
  });
});

describe('parseDuration', () => {
  it.each([['90d', 90 * DAY], ['12h', 12 * 3_600_000], ['2w', 14 * DAY], ['1y', 365 * DAY], ['1w2d', 9 * DAY], [' 3D ', 3 * DAY]])('%s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '90', 'd', '5m', '1.5d', '-1d', '0d', '90 d', 'P90D'])('refuses %j, naming the option', (text) => {
    expect(thrown(() => parseDuration(text))).toMatchObject({ code: ErrorCodes.ArgsInvalid, message: expect.stringContaining('--keep-within') as string });
  });
});
