import { compareObject } from '../../../lib/verify/compare.js';

const expected = { bytes: 100, sha256: 'a'.repeat(64) };

describe('compareObject', () => {
  it('calls a shorter object truncated, even when its hash is unknown', () => {
    expect(compareObject(expected, { bytes: 99 })).toBe('truncated');
    expect(compareObject(expected, { bytes: 0, sha256: 'b'.repeat(64) })).toBe('truncated');
  });

  it('calls a longer object a size mismatch', () => {
    expect(compareObject(expected, { bytes: 101, sha256: expected.sha256 })).toBe('size-mismatch');
  });

  it('calls an object of the same length with another hash altered', () => {
    expect(compareObject(expected, { bytes: 100, sha256: 'b'.repeat(64) })).toBe('altered');
  });

  it('accepts the same length and hash, and the same length when the hash was not read', () => {
    expect(compareObject(expected, { bytes: 100, sha256: expected.sha256 })).toBeUndefined();
    expect(compareObject(expected, { bytes: 100 })).toBeUndefined();
  });
});
