import { createHash } from 'node:crypto';
import { createFileHasher } from '../../../lib/copy/hasher.js';
import { PartPool } from '../../../lib/copy/part-pool.js';

const SIZE = 64 * 1024;

/** Settles pending promise callbacks, so a waiter that can be served has been. */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A promise's state after the pending callbacks have run. */
async function settled(p: Promise<void>): Promise<boolean> {
  let done = false;
  void p.then(() => { done = true; }, () => { done = true; });
  await tick();
  return done;
}

describe('PartPool', () => {
  it('grows one slot per added stream, never past its limit', async () => {
    // Prepare: 2 slots, at most 3.
    const pool = new PartPool(2, await createFileHasher(false), 1, 0, { blockSize: SIZE, limit: 3, allocate: (size) => Buffer.alloc(size) });
    const signal = new AbortController().signal;
    await pool.acquire(signal);
    await pool.acquire(signal);
    const third = pool.acquire(signal);
    expect(await settled(third)).toBe(false);
    // Act
    pool.grow();
    const fourth = pool.acquire(signal);
    pool.grow();
    // Assess
    expect(await settled(third)).toBe(true);
    expect(await settled(fourth)).toBe(false);
    pool.release();
    expect(await settled(fourth)).toBe(true);
  });

  it('makes no more buffers than its slots, recycles them, and hashes parts in order whatever order they arrive in', async () => {
    // Prepare: 3 slots, a counting allocator, 12 parts filled and stored out of order (the last one short).
    const made: number[] = [];
    const hasher = await createFileHasher(false);
    const pool = new PartPool(3, hasher, 1, 0, {
      blockSize: SIZE,
      allocate: (size) => {
        made.push(size);
        return Buffer.alloc(size);
      },
    });
    const signal = new AbortController().signal;
    const sizes = Array.from({ length: 12 }, (_, i) => (i === 11 ? 1000 : SIZE));
    const whole = createHash('sha256');
    const expected = sizes.map((size, i) => Buffer.alloc(size, i + 1));
    for (const b of expected) whole.update(b);
    // Act: open parts in order (each after its slot); finish each window of 3 in reverse order.
    for (let first = 0; first < sizes.length; first += 3) {
      const window: { n: number; buf: Buffer }[] = [];
      for (let i = first; i < Math.min(first + 3, sizes.length); i++) {
        await pool.acquire(signal);
        const buf = pool.buffer(sizes[i] ?? 0);
        expected[i]?.copy(buf);
        window.push({ n: i + 1, buf });
      }
      for (const { n, buf } of window.reverse()) {
        pool.markStored(n);
        pool.markFilled(n, buf);
      }
    }
    // Assess
    expect(pool.frontier).toBe(13);
    expect(pool.hashedBytes).toBe(11 * SIZE + 1000);
    // Three blocks in all: the short last part is a view of a recycled one.
    expect(made).toEqual([SIZE, SIZE, SIZE]);
    expect(hasher.digestHex()).toBe(whole.digest('hex'));
  });

  it('reserves buffers for the first parts within its free slots, and hands them out without making more', async () => {
    // Prepare: 3 slots, one already taken; a counting allocator.
    const made: number[] = [];
    const pool = new PartPool(3, await createFileHasher(false), 1, 0, {
      blockSize: SIZE,
      allocate: (size) => {
        made.push(size);
        return Buffer.alloc(size);
      },
    });
    const signal = new AbortController().signal;
    await pool.acquire(signal);
    // Act: ask for more than there is room for.
    pool.reserve(5);
    const reserved = made.length;
    await pool.acquire(signal);
    await pool.acquire(signal);
    pool.buffer(SIZE);
    pool.buffer(SIZE);
    pool.buffer(SIZE);
    // Assess: two reserved (3 slots, 1 held), the third buffer made on demand.
    expect(reserved).toBe(2);
    expect(made).toEqual([SIZE, SIZE, SIZE]);
  });
});
