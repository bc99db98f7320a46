// The three cases of issue 7 ("How it is measured") and the targets the archiver must meet on
// each, plus the --bwlimit case (issue 12), run only when asked for: the archiver alone.
import { MiB, type Target } from './stats.js';

export const CASE_IDS = ['a', 'b', 'c', 'bwlimit'] as const;
export type CaseId = (typeof CASE_IDS)[number];
/** What `npm run bench` runs when no --case is given. */
export const DEFAULT_CASE_IDS: readonly CaseId[] = ['a', 'b', 'c'];

export interface BenchFile {
  name: string;
  bytes: number;
}

export interface BenchCase {
  id: CaseId;
  title: string;
  /** The emulator backup holding the case's files. */
  backupId: string;
  files: BenchFile[];
  /** Cap on each download response (so on each connection), bytes per second; none when absent. */
  throttleBytesPerSecond?: number;
  /**
   * How many files the peers move at once: rclone copyurl processes running side by side (each
   * taking its share of the files in turn), curl's --parallel-max and rclone copy's --transfers.
   */
  peerParallelism: number;
  targets: Target[];
}

/** Source cap of case (b): one connection can never go faster than this. */
export const THROTTLE_BYTES_PER_SECOND = 8 * MiB;
const RSS_CEILING: Target = { kind: 'peak-rss', atMostMiB: 300 };

function sizeLabel(bytes: number): string {
  return bytes >= 1024 * MiB ? `${bytes / (1024 * MiB)} GiB` : `${bytes / MiB} MiB`;
}

/** `quick` shrinks every case (same shapes, same targets) for a smoke check. */
export function benchCases(quick: boolean): BenchCase[] {
  const big = (quick ? 128 : 1024) * MiB;
  const throttled = (quick ? 32 : 256) * MiB;
  const manyCount = quick ? 16 : 100;
  const many = Array.from({ length: manyCount }, (_, i) => ({ name: `part-${String(i).padStart(3, '0')}.bin`, bytes: 8 * MiB }));
  return [
    {
      id: 'a', title: `(a) 1 × ${sizeLabel(big)}`, backupId: 'case-a', files: [{ name: 'big.bin', bytes: big }],
      peerParallelism: 1,
      targets: [{ kind: 'vs-rclone', atLeast: 1.0 }, { kind: 'vs-pipe', atLeast: 0.9 }, RSS_CEILING],
    },
    {
      id: 'b', title: `(b) 1 × ${sizeLabel(throttled)}, source ${THROTTLE_BYTES_PER_SECOND / MiB} MiB/s per connection`,
      backupId: 'case-b', files: [{ name: 'capped.bin', bytes: throttled }],
      throttleBytesPerSecond: THROTTLE_BYTES_PER_SECOND,
      peerParallelism: 1,
      targets: [{ kind: 'vs-rclone', atLeast: 4.0 }, RSS_CEILING],
    },
    {
      id: 'c', title: `(c) ${manyCount} × 8 MiB`, backupId: 'case-c', files: many,
      peerParallelism: 4,
      targets: [{ kind: 'vs-rclone', atLeast: 1.0 }],
    },
  ];
}

/**
 * `--case bwlimit`: one file archived with `--bwlimit`; the archiver's download rate while it
 * copies (from its --stats-json lines) must stay within `tolerance` of the limit.
 */
export interface BwlimitCase {
  id: 'bwlimit';
  title: string;
  backupId: string;
  files: BenchFile[];
  /** The flag's value, and the rate it means. */
  flag: string;
  limitBytesPerSecond: number;
  tolerance: number;
}

export function bwlimitCase(quick: boolean): BwlimitCase {
  const bytes = (quick ? 100 : 400) * MiB;
  return {
    id: 'bwlimit', title: `(bwlimit) 1 × ${sizeLabel(bytes)}, --bwlimit 20M`, backupId: 'case-bwlimit',
    files: [{ name: 'limited.bin', bytes }], flag: '20M', limitBytesPerSecond: 20 * MiB, tolerance: 0.1,
  };
}

export function totalBytes(c: Pick<BenchCase, 'files'>): number {
  return c.files.reduce((sum, f) => sum + f.bytes, 0);
}
