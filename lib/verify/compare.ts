import type { VerifyProblemKind } from './types.js';

/**
 * What is wrong with a stored object, if anything: shorter is `truncated`, longer is
 * `size-mismatch`, the same length with another SHA-256 is `altered`. Without a hash
 * (the file was not in the sample) only the length is judged.
 */
export function compareObject(
  expected: { bytes: number; sha256: string },
  actual: { bytes: number; sha256?: string | undefined },
): Extract<VerifyProblemKind, 'truncated' | 'size-mismatch' | 'altered'> | undefined {
  if (actual.bytes < expected.bytes) return 'truncated';
  if (actual.bytes > expected.bytes) return 'size-mismatch';
  if (actual.sha256 !== undefined && actual.sha256 !== expected.sha256) return 'altered';
  return undefined;
}
