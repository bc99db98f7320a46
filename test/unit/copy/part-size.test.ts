import { copierMemoryBound } from '../../../lib/copy/copier.js';
import { choosePartSize, DEFAULT_PART_SIZE, MAX_PARTS, MiB, partCount } from '../../../lib/copy/part-size.js';
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

describe('copierMemoryBound', () => {
  it('is (partConcurrency + 1) × partSize', () => {
    expect(copierMemoryBound({})).toBe(5 * DEFAULT_PART_SIZE);
    expect(copierMemoryBound({ partConcurrency: 2, partSizeBytes: 8 * MiB })).toBe(3 * 8 * MiB);
    expect(copierMemoryBound({}, 200 * GiB)).toBe(5 * 21 * MiB);
  });
});
