import { DEFAULT_RETRY_VISIBILITY, retryVisibilitySeconds } from '../../lib/fanout/visibility.js';

describe('retryVisibilitySeconds', () => {
  it('doubles with each delivery from the base, up to the cap', () => {
    const top = () => 1 - Number.EPSILON;
    expect([1, 2, 3, 4, 5, 6].map((n) => retryVisibilitySeconds(n, DEFAULT_RETRY_VISIBILITY, top))).toEqual([60, 120, 240, 480, 900, 900]);
  });

  it('keeps at least half of each delay (equal jitter)', () => {
    expect([1, 2, 3].map((n) => retryVisibilitySeconds(n, DEFAULT_RETRY_VISIBILITY, () => 0))).toEqual([30, 60, 120]);
  });

  it('brings a message failing on every delivery to the 5th well before one 90-minute visibility timeout', () => {
    const total = [1, 2, 3, 4].reduce((sum, n) => sum + retryVisibilitySeconds(n, DEFAULT_RETRY_VISIBILITY, () => 1), 0);
    expect(total).toBeLessThan(5400);
  });
});
