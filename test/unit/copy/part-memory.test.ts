// The process's part memory (lib/copy/part-memory.ts): blocks a copy is done with go to the next
// copy of that part size instead of new memory, and no more than SPARE_MAX_BYTES wait between copies.
import { giveBlock, SPARE_MAX_BYTES, spareBlockBytes, takeBlock } from '../../../lib/copy/part-memory.js';

const MiB = 1024 * 1024;

describe('part memory', () => {
  it('hands a block given back to the next copy that needs that size, and makes a new one for another size', () => {
    // Prepare: a block of an odd size, so no other test's block is in the way.
    const size = 3 * MiB + 4096;
    const first = takeBlock(size);
    const before = spareBlockBytes();
    // Act
    giveBlock(first);
    const again = takeBlock(size);
    const other = takeBlock(size + 4096);
    // Assess: the same memory again; shared, so the MD5 worker reads it in place.
    expect(spareBlockBytes()).toBe(before);
    expect(again.buffer).toBe(first.buffer);
    expect(again.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(other.buffer).not.toBe(first.buffer);
    expect(other.length).toBe(size + 4096);
  });

  it('keeps at most SPARE_MAX_BYTES between copies; the rest is let go', () => {
    // Prepare: more blocks than may be kept.
    const size = 64 * MiB;
    const blocks = Array.from({ length: SPARE_MAX_BYTES / size + 2 }, () => takeBlock(size));
    // Act
    for (const b of blocks) giveBlock(b);
    // Assess
    expect(spareBlockBytes()).toBeLessThanOrEqual(SPARE_MAX_BYTES);
    expect(spareBlockBytes()).toBeGreaterThanOrEqual(SPARE_MAX_BYTES - size);
  });
});
