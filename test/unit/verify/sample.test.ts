import { chooseSample, sampleSize, seededRandom } from '../../../lib/verify/sample.js';

describe('sampleSize', () => {
  it.each([
    [40, 50, 20],
    [40, 12.5, 5],
    [10, 1, 1],
    [3, 50, 2],
    [7, 100, 7],
    [0, 50, 0],
  ])('%i files at %d%% re-reads %i', (total, percent, expected) => {
    expect(sampleSize(total, percent)).toBe(expected);
  });
});

describe('chooseSample', () => {
  it('picks the requested number of distinct files, all in range', () => {
    // Act
    const picked = chooseSample(40, 50, seededRandom(1));
    // Assess
    expect(picked.size).toBe(20);
    for (const i of picked) {
      expect(Number.isInteger(i)).toBe(true);
      expect(i).toBeGreaterThanOrEqual(0);
      expect(i).toBeLessThan(40);
    }
  });

  it('repeats its choice for the same seed and varies it across seeds', () => {
    // Act
    const a = [...chooseSample(40, 50, seededRandom(7))].sort((x, y) => x - y);
    const again = [...chooseSample(40, 50, seededRandom(7))].sort((x, y) => x - y);
    const others = [1, 2, 3, 4, 5].map((s) => [...chooseSample(40, 50, seededRandom(s))].sort((x, y) => x - y).join(','));
    // Assess
    expect(again).toEqual(a);
    expect(new Set([a.join(','), ...others]).size).toBeGreaterThan(1);
  });

  it('reaches every file over repeated drills (no index is never chosen)', () => {
    // Prepare
    const random = seededRandom(42);
    const seen = new Set<number>();
    // Act
    for (let drill = 0; drill < 50; drill++) for (const i of chooseSample(40, 10, random)) seen.add(i);
    // Assess
    expect(seen.size).toBe(40);
  });

  it('takes every file at 100% without consulting the generator', () => {
    const picked = chooseSample(5, 100, () => {
      throw new Error('random() should not be called for a full check');
    });
    expect([...picked].sort()).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('seededRandom', () => {
  it('returns numbers in [0, 1)', () => {
    const random = seededRandom(123);
    const values = Array.from({ length: 1000 }, () => random());
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(new Set(values).size).toBeGreaterThan(990);
  });
});
