import { copierMemoryBound } from '../../../lib/copy/copier.js';
import { choosePartSize, DEFAULT_PART_SIZE, filePartSize, MAX_PARTS, MiB, partCount } from '../../../lib/copy/part-size.js';
import { ErrorCodes, type ArchiverError } from '../../../lib/errors.js';

const GiB = 1024 * MiB;

describe('choosePartSize', () => {
  it('uses the minimum part size for small and empty files', () => {
    expect(choosePartSize(0)).toBe(DEFAULT_PART_SIZE);
    expect(choosePartSize(1)).toBe(DEFAULT_PART_SIZE);
    expect(choosePartSize(10 * GiB, 8 * MiB)).toBe(8 * MiB);
  });

  it('keeps a 200 GiB file within 10,000 parts, in whole MiB', () => {
    // Act
    const size = choosePartSize(200 * GiB);
    // Assess
    expect(size).toBe(21 * MiB);
    expect(size % MiB).toBe(0);
    expect(partCount(200 * GiB, size)).toBeLessThanOrEqual(MAX_PARTS);
  });

  it('switches to larger parts exactly past 10,000 × the minimum', () => {
    expect(choosePartSize(MAX_PARTS * DEFAULT_PART_SIZE)).toBe(DEFAULT_PART_SIZE);
    expect(choosePartSize(MAX_PARTS * DEFAULT_PART_SIZE + 1)).toBe(DEFAULT_PART_SIZE + MiB);
  });

  it('handles a 5 TiB file (S3 maximum)', () => {
    const total = 5 * 1024 * GiB;
    expect(partCount(total, choosePartSize(total))).toBeLessThanOrEqual(MAX_PARTS);
  });

  it('refuses a file no multipart upload can hold', () => {
    let code: string | undefined;
    try {
      choosePartSize(MAX_PARTS * 5 * GiB + 1);
    } catch (err) {
      code = (err as ArchiverError).code;
    }
    expect(code).toBe(ErrorCodes.S3Failed);
  });
});

describe('filePartSize', () => {
  it('keeps the minimum for files up to 32 × the minimum (256 MiB with 8 MiB parts)', () => {
    expect(filePartSize(0, 8 * MiB)).toBe(8 * MiB);
    expect(filePartSize(33 * MiB, 5 * MiB)).toBe(5 * MiB);
    expect(filePartSize(256 * MiB, 8 * MiB)).toBe(8 * MiB);
  });

  it('grows with the file, in whole MiB, up to 32 MiB parts at 1 GiB', () => {
    expect(filePartSize(256 * MiB + 1, 8 * MiB)).toBe(9 * MiB);
    expect(filePartSize(512 * MiB, 8 * MiB)).toBe(16 * MiB);
    expect(filePartSize(GiB, 8 * MiB)).toBe(32 * MiB);
    expect(filePartSize(10 * GiB, 8 * MiB)).toBe(32 * MiB);
  });

  it('never goes under the minimum, even when the minimum is above 32 MiB', () => {
    expect(filePartSize(GiB, 64 * MiB)).toBe(64 * MiB);
    expect(filePartSize(4 * GiB, 48 * MiB)).toBe(48 * MiB);
  });

  it('still keeps a huge file within 10,000 parts', () => {
    const total = 5 * 1024 * GiB;
    const size = filePartSize(total, 8 * MiB);
    expect(size).toBe(choosePartSize(total, 8 * MiB));
    expect(partCount(total, size)).toBeLessThanOrEqual(MAX_PARTS);
  });
});

describe('copierMemoryBound', () => {
  it('is (partConcurrency + streams) × partSize while that fits the budget', () => {
    expect(copierMemoryBound({})).toBe(5 * DEFAULT_PART_SIZE);
    expect(copierMemoryBound({ partConcurrency: 2, partSizeBytes: 8 * MiB })).toBe(3 * 8 * MiB);
    // Case (b) of the bench: 256 MiB, 8 streams, 8 MiB parts: 12 buffers.
    expect(copierMemoryBound({ streams: 8, partConcurrency: 4, partSizeBytes: 8 * MiB }, 256 * MiB)).toBe(12 * 8 * MiB);
  });

  it('caps bigger parts at the 128 MiB budget: 1 GiB → 4 buffers of 32 MiB, however many streams', () => {
    expect(copierMemoryBound({ streams: 8, partConcurrency: 4, partSizeBytes: 8 * MiB }, GiB)).toBe(4 * 32 * MiB);
    expect(copierMemoryBound({ streams: 1, partConcurrency: 4, partSizeBytes: 8 * MiB }, GiB)).toBe(4 * 32 * MiB);
    expect(copierMemoryBound({}, 200 * GiB)).toBe(4 * 32 * MiB);
  });

  it('takes a larger budget from a larger minimum, or the one given, and never under two buffers', () => {
    expect(copierMemoryBound({ streams: 8, partConcurrency: 4, partSizeBytes: 32 * MiB }, GiB)).toBe(12 * 32 * MiB);
    expect(copierMemoryBound({ streams: 8, partConcurrency: 4, partSizeBytes: 8 * MiB, partBufferBudgetBytes: 64 * MiB }, GiB)).toBe(2 * 32 * MiB);
    expect(copierMemoryBound({ streams: 8, partConcurrency: 4, partSizeBytes: 8 * MiB, partBufferBudgetBytes: 8 * MiB }, GiB)).toBe(2 * 32 * MiB);
  });
});
