/**
 * The one id rule: graph and backup ids become S3 key segments (docs/contract.md, "Layout"), so
 * they keep to a safe, boring alphabet: 1-128 letters, digits, '.', '_' and '-', starting with a
 * letter or digit (never `.` or `..`). The run manifest, the queue messages, the CLI's options,
 * the Lambda events and the planner (for ids GES returns) all check it here. No zod here: the
 * CLI checks its options with it before anything heavy loads; lib/archive/run-manifest.ts builds
 * the schema on it.
 */
export const MAX_ID_CHARS = 128;
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function isSafeId(value: string): boolean {
  return value.length <= MAX_ID_CHARS && SAFE_ID.test(value);
}

/** What is wrong with `value` as an id called `what`, in words that name the field; undefined when nothing is. */
export function idProblem(what: string, value: string): string | undefined {
  if (value.length === 0) return `${what} must not be empty`;
  if (value.length > MAX_ID_CHARS) return `${what} must be at most ${MAX_ID_CHARS} characters`;
  if (!SAFE_ID.test(value)) return `${what} must contain only letters, digits, '.', '_' and '-'`;
  return undefined;
}
