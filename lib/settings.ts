/**
 * The copy settings a user may tune both in the environment and on the command line: each
 * one's default, range and parser live here, once. lib/config.ts parses the environment with
 * them (CONFIG_INVALID naming the variable); cli/ parses the flags with them (ARGS_INVALID
 * naming the flag) and shows the ranges in --help. No zod and nothing heavy here: --help loads
 * this file.
 */
const KiB = 1024;
const MiB = 1024 * KiB;

export interface WholeSetting {
  readonly variable: string;
  readonly flag: string;
  readonly min: number;
  readonly max: number;
  readonly default: number;
}

/** Files copied at once across the run. */
export const FILE_CONCURRENCY: WholeSetting = { variable: 'ARCHIVE_FILE_CONCURRENCY', flag: '--transfers', min: 1, max: 64, default: 4 };

/**
 * Download connections per file. The default was chosen by measurement with `npm run bench`:
 * see the README's Benchmark section for the runs behind it.
 */
export const STREAMS: WholeSetting = { variable: 'ARCHIVE_STREAMS', flag: '--streams', min: 1, max: 32, default: 8 };

/** Minimum multipart part size, in MiB (ARCHIVE_PART_SIZE_MB; --part-size takes a size with a unit); parts grow with the file from there. */
export const PART_SIZE_MIB: WholeSetting = { variable: 'ARCHIVE_PART_SIZE_MB', flag: '--part-size', min: 5, max: 512, default: 8 };

/** Total download rate of a run, bytes per second (ARCHIVE_BWLIMIT, --bwlimit); unlimited by default. */
export const BWLIMIT = { variable: 'ARCHIVE_BWLIMIT', flag: '--bwlimit', min: KiB, max: 1024 * 1024 * MiB } as const;

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const UNITS: Record<string, number> = { b: 1, k: KiB, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB };

/**
 * rclone's size syntax: a number and a binary unit, `16M`, `64MiB`, `512k`, `1.5G`, `100B`
 * (K, M, G, T are KiB, MiB, GiB, TiB whatever the case, with or without `iB`/`B`). A number
 * alone is in `bareUnit`. Returns whole bytes, or undefined when `text` is not a size.
 */
export function parseSize(text: string, bareUnit: keyof typeof UNITS): number | undefined {
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*(?:([bkmgt])(?:i?b)?)?$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = UNITS[(m[2] ?? bareUnit).toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.floor(Number(m[1]) * unit);
}

/** `12 MiB`, `1.5 GiB`, `512 KiB`: for messages and --help. */
export function describeSize(bytes: number): string {
  for (const [unit, size] of [['TiB', UNITS['t']!], ['GiB', UNITS['g']!], ['MiB', MiB], ['KiB', KiB]] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(2))} ${unit}`;
  }
  return `${bytes} B`;
}

const got = (value: string): string => ` (got ${JSON.stringify(value)})`;

/** A whole number within the setting's range. `name`: the variable or the flag, for the message. */
export function parseWhole(value: string, setting: WholeSetting, name: string): Parsed<number> {
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isInteger(n) || n < setting.min || n > setting.max) {
    return { ok: false, message: `${name} must be a whole number from ${setting.min} to ${setting.max}${got(value)}` };
  }
  return { ok: true, value: n };
}

/** `--part-size`: a size from 5 MiB to 512 MiB (a number alone is MiB, like ARCHIVE_PART_SIZE_MB); bytes. */
export function parsePartSize(value: string, name: string): Parsed<number> {
  const bytes = parseSize(value, 'm');
  const { min, max } = PART_SIZE_MIB;
  if (bytes === undefined || bytes < min * MiB || bytes > max * MiB) {
    return { ok: false, message: `${name} must be a size from ${min} MiB to ${max} MiB, e.g. 16M or 64MiB (a number alone is MiB)${got(value)}` };
  }
  return { ok: true, value: bytes };
}

/**
 * rclone's --bwlimit syntax: `10M` is 10 MiB/s, also `512k`, `1.5G`; `off` or `0` for no limit
 * (returned as 0). A number alone other than 0 is refused: rclone reads it as KiB/s, which is
 * too easy to mistake for MiB/s.
 */
export function parseBwlimit(value: string, name: string): Parsed<number> {
  const v = value.trim().toLowerCase();
  if (v === 'off' || (v !== '' && Number(v) === 0)) return { ok: true, value: 0 };
  const bytes = /[a-z]$/.test(v) ? parseSize(v, 'b') : undefined;
  if (bytes === undefined || bytes < BWLIMIT.min || bytes > BWLIMIT.max) {
    return {
      ok: false,
      message: `${name} must be a rate from 1k to 1T per second with a unit, e.g. 10M (MiB/s), 512k (KiB/s) or 1G, or off/0 for no limit${got(value)}`,
    };
  }
  return { ok: true, value: bytes };
}
