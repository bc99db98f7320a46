import { createBandwidthLimiter } from '../../../lib/copy/bandwidth.js';
import { RateFloor } from '../../../lib/copy/rate-floor.js';

const KiB = 1024;

describe('the bandwidth limiter (one token bucket for the run)', () => {
  it('lets a full bucket through at once, then charges every byte at the rate', () => {
    // Prepare: 100 KiB/s, a 64 KiB burst
    let t = 1_000_000;
    const limiter = createBandwidthLimiter(100 * KiB, { burstBytes: 64 * KiB, now: () => t });
    // Act / Assess: the burst is free, the next 100 KiB cost one second
    expect(limiter.take(64 * KiB)).toBe(0);
    expect(limiter.take(100 * KiB)).toBeCloseTo(1000);
    // A second reader queues behind the first: its bytes are paid after the first's.
    expect(limiter.take(50 * KiB)).toBeCloseTo(1500);
    t += 1500;
    expect(limiter.take(10 * KiB)).toBeCloseTo(100);
  });

  it('does not save up more than the burst while idle', () => {
    let t = 0;
    const limiter = createBandwidthLimiter(100 * KiB, { burstBytes: 10 * KiB, now: () => t });
    t += 60_000;
    expect(limiter.take(10 * KiB)).toBe(0);
    expect(limiter.take(100 * KiB)).toBeCloseTo(1000);
  });

  it('counts the time readers were held back, and only that time', () => {
    let t = 0;
    const limiter = createBandwidthLimiter(100 * KiB, { burstBytes: 0, now: () => t });
    limiter.take(100 * KiB); // in debt for 1 s
    t += 400;
    expect(limiter.heldMs()).toBeCloseTo(400);
    t += 5_000; // the debt was repaid at 1 s: 4.4 s idle
    expect(limiter.heldMs()).toBeCloseTo(1000);
    limiter.take(50 * KiB); // another 0.5 s
    t += 2_000;
    expect(limiter.heldMs()).toBeCloseTo(1500);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => createBandwidthLimiter(0)).toThrow(RangeError);
  });
});

describe('the rate floor under a bandwidth limit', () => {
  const floor = { bytesPerSecond: 64 * KiB, windowMs: 10_000 };

  it('leaves the time the limit held the stream out of its window', () => {
    // Prepare: 10 s pass at 20 KiB/s, 8 s of them held by the limit
    let t = 0;
    let held = 0;
    const f = new RateFloor({ ...floor, heldMs: () => held }, () => t);
    // Act: 2 s of free time brought 200 KiB (100 KiB/s): the window is not over yet, and not slow
    t = 10_000;
    held = 8_000;
    expect(f.add(200 * KiB)).toBeUndefined();
    // ... 8 more free seconds at 100 KiB/s: the window ends above the floor
    t = 18_000;
    expect(f.add(800 * KiB)).toBeUndefined();
  });

  it('still drops a source that trickles while the limit holds nothing', () => {
    let t = 0;
    const f = new RateFloor({ ...floor, heldMs: () => 0 }, () => t);
    t = 10_000;
    expect(f.add(100 * KiB)).toBeCloseTo(10 * KiB);
  });

  it('without the limit\'s clock, the same held stream counts as slow (what the clock prevents)', () => {
    let t = 0;
    const f = new RateFloor(floor, () => t);
    t = 10_000;
    expect(f.add(200 * KiB)).toBeCloseTo(20 * KiB);
  });
});
