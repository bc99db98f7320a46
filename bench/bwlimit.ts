// The --bwlimit case: the archiver's download rate, read from its --stats-json lines, against
// the limit. No I/O here (tested in test/unit/bench.test.ts); run.ts runs the archiver.
import type { BwlimitCase } from './cases.js';
import { median, MiB } from './stats.js';

export interface StatsSample {
  elapsedSeconds: number;
  bytes: number;
  final: boolean;
}

/** The `"msg":"stats"` lines of the archiver's stderr (other lines, logs included, are skipped). */
export function statsSamples(stderr: string): StatsSample[] {
  const samples: StatsSample[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    const rec = JSON.parse(line) as { msg?: unknown; stats?: { elapsedSeconds?: unknown; bytes?: unknown; final?: unknown } };
    const s = rec.stats;
    if (rec.msg === 'stats' && typeof s?.elapsedSeconds === 'number' && typeof s.bytes === 'number') {
      samples.push({ elapsedSeconds: s.elapsedSeconds, bytes: s.bytes, final: s.final === true });
    }
  }
  return samples;
}

/**
 * Bytes per second while bytes were arriving: from the first sample that has any to the last
 * one before the final line (the final one also counts the last upload and start-up's end, which
 * the limit does not govern). Undefined with fewer than two such samples.
 */
export function downloadRate(samples: readonly StatsSample[]): number | undefined {
  const moving = samples.filter((s) => !s.final && s.bytes > 0);
  const first = moving[0];
  const last = moving.at(-1);
  if (!first || !last || last.elapsedSeconds <= first.elapsedSeconds) return undefined;
  return (last.bytes - first.bytes) / (last.elapsedSeconds - first.elapsedSeconds);
}

export interface BwlimitRound {
  /** Download rate while copying ÷ the limit. */
  ratio: number;
  rateMiBps: number;
  /** Whole process (spawn to exit, start-up and the GES calls included), MiB/s. */
  wallMiBps: number;
}

export function bwlimitRound(c: BwlimitCase, m: { bytes: number; seconds: number; stderr: string }): BwlimitRound {
  const rate = downloadRate(statsSamples(m.stderr));
  if (rate === undefined) throw new Error(`${c.title}: the archiver printed too few --stats-json lines to measure its rate (is the file too small?)`);
  return { ratio: rate / c.limitBytesPerSecond, rateMiBps: rate / MiB, wallMiBps: m.bytes / MiB / m.seconds };
}

export function formatBwlimitRound(round: number, c: BwlimitCase, r: BwlimitRound): string {
  return `round ${round}  ${c.title}  download rate ${r.rateMiBps.toFixed(2)} MiB/s = ${r.ratio.toFixed(3)} × the limit`
    + `  (whole process: ${r.wallMiBps.toFixed(2)} MiB/s = ${(r.wallMiBps * MiB / c.limitBytesPerSecond).toFixed(3)} ×)`;
}

/** The median ratio over the rounds against the case's tolerance (PASS within ±tolerance). */
export function formatBwlimitTarget(c: BwlimitCase, rounds: readonly BwlimitRound[]): string {
  const ratio = median(rounds.map((r) => r.ratio));
  const pass = Math.abs(ratio - 1) <= c.tolerance;
  return `${pass ? 'PASS' : 'MISS'}  (bwlimit) download rate ÷ limit within 1 ± ${c.tolerance}: ${ratio.toFixed(3)} (median of ${rounds.length}; `
    + `${(ratio * c.limitBytesPerSecond / MiB).toFixed(2)} MiB/s for --bwlimit ${c.flag})`;
}
