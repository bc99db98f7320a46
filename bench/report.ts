// What `npm run bench` prints: one line per round and case, then the medians, ratios and targets.
import type { BenchCase } from './cases.js';
import { checkTarget, MiB, mibPerSecond, PROGRAMS, type CaseSummary, type Program, type Round, type TargetResult } from './stats.js';

const f1 = (n: number): string => n.toFixed(1);
const rssMiB = (bytes: number): string => `${(bytes / MiB).toFixed(0)} MiB`;

/** `titleWidth`: the longest case title of the run, so the columns line up. */
export function formatRound(round: number, c: BenchCase, r: Round, order: readonly Program[], titleWidth: number): string {
  const speeds = PROGRAMS.map((p) => `${p} ${f1(mibPerSecond(r[p])).padStart(7)}`).join('  ');
  return `round ${round}  ${c.title.padEnd(titleWidth)}  ${speeds} MiB/s  archiver RSS ${rssMiB(r.archiver.peakRssBytes).padStart(8)}  (order: ${order.join(', ')})`;
}

export function formatSummary(rows: readonly { c: BenchCase; s: CaseSummary }[]): string[] {
  const head = ['case', ...PROGRAMS, 'pipe limit', '÷ rclone', '÷ pipe', 'archiver peak RSS (max)'];
  const body = rows.map(({ c, s }) => [
    c.title,
    ...PROGRAMS.map((p) => f1(s.medians[p])),
    f1(s.pipeLimit),
    s.archiverVsRclone.toFixed(2),
    s.archiverVsPipe.toFixed(2),
    rssMiB(s.archiverPeakRssBytes),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [line(head), ...body.map(line)];
}

export function targetResults(c: BenchCase, s: CaseSummary): TargetResult[] {
  return c.targets.map((t) => checkTarget(t, s));
}

export function formatTargets(rows: readonly { c: BenchCase; s: CaseSummary }[]): string[] {
  return rows.flatMap(({ c, s }) => targetResults(c, s).map((t) => `${t.pass ? 'PASS' : 'MISS'}  ${c.title.slice(0, 3)} ${t.label}: ${t.measured}`));
}
