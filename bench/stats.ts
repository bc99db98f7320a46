// The benchmark's arithmetic: medians over rounds, ratios of medians, and the targets of
// issue 7 checked against them. No I/O here, so it is tested on its own (test/unit/bench.test.ts).

export const MiB = 1024 * 1024;

/** The programs measured on every case, in the order they are printed. */
export const PROGRAMS = ['download', 'upload', 'rclone', 'archiver'] as const;
export type Program = (typeof PROGRAMS)[number];

/** One program's run on one case: wall clock from spawn to exit, and the largest peak RSS of its processes. */
export interface Measurement {
  bytes: number;
  seconds: number;
  peakRssBytes: number;
}

export type Round = Record<Program, Measurement>;

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  const upper = sorted[mid] as number;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] as number) + upper) / 2;
}

export function mibPerSecond(m: Measurement): number {
  return m.bytes / MiB / m.seconds;
}

export interface CaseSummary {
  /** Median MiB/s of each program over the rounds. */
  medians: Record<Program, number>;
  /** min(median plain download, median plain upload): what a copy through this machine can reach at best. */
  pipeLimit: number;
  archiverVsRclone: number;
  archiverVsPipe: number;
  /** The archiver's largest peak RSS over the rounds (the memory target is a ceiling, so the worst round counts). */
  archiverPeakRssBytes: number;
}

export function summarize(rounds: readonly Round[]): CaseSummary {
  if (rounds.length === 0) throw new RangeError('no rounds to summarize');
  const medians = Object.fromEntries(PROGRAMS.map((p) => [p, median(rounds.map((r) => mibPerSecond(r[p])))])) as Record<Program, number>;
  const pipeLimit = Math.min(medians.download, medians.upload);
  return {
    medians,
    pipeLimit,
    archiverVsRclone: medians.archiver / medians.rclone,
    archiverVsPipe: medians.archiver / pipeLimit,
    archiverPeakRssBytes: Math.max(...rounds.map((r) => r.archiver.peakRssBytes)),
  };
}

export type Target =
  | { kind: 'vs-rclone'; atLeast: number }
  | { kind: 'vs-pipe'; atLeast: number }
  | { kind: 'peak-rss'; atMostMiB: number };

export interface TargetResult {
  /** What is compared, e.g. "archiver ÷ rclone ≥ 1.0". */
  label: string;
  /** The measured value, formatted. */
  measured: string;
  pass: boolean;
}

export function checkTarget(target: Target, s: CaseSummary): TargetResult {
  switch (target.kind) {
    case 'vs-rclone':
      return { label: `archiver ÷ rclone ≥ ${target.atLeast.toFixed(1)}`, measured: s.archiverVsRclone.toFixed(2), pass: s.archiverVsRclone >= target.atLeast };
    case 'vs-pipe':
      return { label: `archiver ÷ pipe limit ≥ ${target.atLeast.toFixed(1)}`, measured: s.archiverVsPipe.toFixed(2), pass: s.archiverVsPipe >= target.atLeast };
    case 'peak-rss': {
      const mib = s.archiverPeakRssBytes / MiB;
      return { label: `archiver peak RSS ≤ ${target.atMostMiB} MiB`, measured: `${mib.toFixed(0)} MiB`, pass: mib <= target.atMostMiB };
    }
  }
}
