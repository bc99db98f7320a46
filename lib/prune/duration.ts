import { ArchiverError, ErrorCodes } from '../errors.js';

/**
 * `--keep-within` durations: one or more `<whole number><unit>` with units `y` (365 days),
 * `w` (7 days), `d` and `h`, e.g. `90d`, `12h`, `2w`, `1y6w`. No `m`: minutes or months would
 * be a guess. Returns milliseconds; refuses anything else (ARGS_INVALID, naming the option).
 */
const UNIT_MS: Readonly<Record<string, number>> = { y: 365 * 86_400_000, w: 7 * 86_400_000, d: 86_400_000, h: 3_600_000 };
const WHOLE = /^(?:\d+[ywdh])+$/;
const PART = /(\d+)([ywdh])/g;

export function parseDuration(text: string, option = '--keep-within'): number {
  const value = text.trim().toLowerCase();
  if (!WHOLE.test(value)) {
    throw new ArchiverError(ErrorCodes.ArgsInvalid,
      `${option} must be a duration like 90d, 12h, 2w or 1y (units y, w, d, h), got ${JSON.stringify(text)}`);
  }
  let ms = 0;
  for (const [, n, unit] of value.matchAll(PART)) ms += Number(n) * UNIT_MS[unit!]!;
  if (ms <= 0 || !Number.isSafeInteger(ms)) {
    throw new ArchiverError(ErrorCodes.ArgsInvalid, `${option} must be longer than zero and at most a few thousand years, got ${JSON.stringify(text)}`);
  }
  return ms;
}
