// The benchmark's argument parsing and arithmetic (bench/). Nothing here times anything: speed
// is measured by `npm run bench`, never by a test.
import { parseBenchArgs } from '../../bench/args.js';
import { bwlimitRound, downloadRate, formatBwlimitTarget, statsSamples } from '../../bench/bwlimit.js';
import { benchCases, bwlimitCase, totalBytes } from '../../bench/cases.js';
import { redactLinks } from '../../bench/measure.js';
import { checkTarget, median, MiB, summarize, type Measurement, type Round } from '../../bench/stats.js';

const m = (mibPerSecond: number, rssMiB = 100): Measurement => ({ bytes: 100 * MiB, seconds: 100 / mibPerSecond, peakRssBytes: rssMiB * MiB });
const round = (download: number, upload: number, rclone: number, archiver: number, rssMiB = 100): Round => ({
  download: m(download), upload: m(upload), rclone: m(rclone), archiver: m(archiver, rssMiB),
});

describe('bench arguments', () => {
  it('defaults to 3 rounds of every case; --quick to 1 round; --rounds wins over --quick', () => {
    expect(parseBenchArgs([])).toEqual({ rounds: 3, cases: ['a', 'b', 'c'], quick: false, help: false });
    expect(parseBenchArgs(['--quick'])).toMatchObject({ rounds: 1, quick: true });
    expect(parseBenchArgs(['--quick', '--rounds', '2'])).toMatchObject({ rounds: 2, quick: true });
  });

  it('--case picks cases (repeatable), kept in a, b, c order', () => {
    expect(parseBenchArgs(['--case', 'c', '--case', 'A']).cases).toEqual(['a', 'c']);
  });

  it('runs the bwlimit case only when asked for', () => {
    expect(parseBenchArgs(['--case', 'bwlimit', '--case', 'b']).cases).toEqual(['b', 'bwlimit']);
    expect(parseBenchArgs([]).cases).not.toContain('bwlimit');
  });

  it.each([
    [['--rounds', '0'], '--rounds must be at least 1'],
    [['--rounds', '2.5'], '--rounds must be a whole number'],
    [['--case', 'd'], '--case must be one of a, b, c'],
    [['--fast'], "Unknown option '--fast'"],
  ])('rejects %p naming the problem', (argv, message) => {
    expect(() => parseBenchArgs(argv)).toThrow(message);
  });
});

describe('bench statistics', () => {
  it('median: middle value, or the mean of the two middle ones; none is an error', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 10])).toBe(3.5);
    expect(() => median([])).toThrow(RangeError);
  });

  it('summarize: medians per program, pipe limit = min(download, upload), ratios of medians, worst RSS', () => {
    // Prepare: the archiver's best and worst rounds must not decide its median
    const rounds = [round(800, 120, 90, 100, 210), round(700, 140, 80, 300, 250), round(900, 130, 100, 10, 230)];
    // Act
    const s = summarize(rounds);
    // Assess
    expect(s.medians).toEqual({ download: 800, upload: 130, rclone: 90, archiver: 100 });
    expect(s.pipeLimit).toBe(130);
    expect(s.archiverVsRclone).toBeCloseTo(100 / 90, 10);
    expect(s.archiverVsPipe).toBeCloseTo(100 / 130, 10);
    expect(s.archiverPeakRssBytes).toBe(250 * MiB);
  });

  it('targets: PASS at the bound, MISS below it; the RSS ceiling passes at the bound, misses above', () => {
    const s = summarize([round(800, 100, 100, 90, 300)]);
    expect(checkTarget({ kind: 'vs-pipe', atLeast: 0.9 }, s)).toEqual({ label: 'archiver ÷ pipe limit ≥ 0.9', measured: '0.90', pass: true });
    expect(checkTarget({ kind: 'vs-rclone', atLeast: 1.0 }, s)).toEqual({ label: 'archiver ÷ rclone ≥ 1.0', measured: '0.90', pass: false });
    expect(checkTarget({ kind: 'peak-rss', atMostMiB: 300 }, s).pass).toBe(true);
    expect(checkTarget({ kind: 'peak-rss', atMostMiB: 300 }, summarize([round(1, 1, 1, 1, 301)])).pass).toBe(false);
  });
});

describe('bench cases', () => {
  it('are the issue\'s sizes and targets; --quick keeps the shapes with smaller files', () => {
    const [a, b, c] = benchCases(false);
    expect([a?.files.length, a && totalBytes(a)]).toEqual([1, 1024 * MiB]);
    expect([b?.files.length, b && totalBytes(b), b?.throttleBytesPerSecond]).toEqual([1, 256 * MiB, 8 * MiB]);
    expect([c?.files.length, c?.files.every((f) => f.bytes === 8 * MiB), c?.peerParallelism]).toEqual([100, true, 4]);
    expect(b?.targets).toEqual([{ kind: 'vs-rclone', atLeast: 4 }, { kind: 'peak-rss', atMostMiB: 300 }]);
    const quick = benchCases(true);
    expect(quick.map((q, i) => totalBytes(q) < totalBytes(benchCases(false)[i] as typeof q))).toEqual([true, true, true]);
    expect(quick.map((q) => q.targets)).toEqual(benchCases(false).map((f) => f.targets));
  });
});

describe('bench output', () => {
  it('never prints a signed link\'s query string', () => {
    const text = 'curl: (22) http://127.0.0.1:4000/bucket/g/b/f.bin?AccessKeyId=K&Expires=1&Signature=abc%2B returned 403';
    expect(redactLinks(text)).toBe('curl: (22) http://127.0.0.1:4000/bucket/g/b/f.bin?… returned 403');
  });
});

describe('the bwlimit case', () => {
  const stats = (elapsedSeconds: number, bytes: number, final = false): string =>
    JSON.stringify({ time: 't', level: 'info', msg: 'stats', stats: { bytes, totalBytes: 100 * MiB, bytesPerSecond: 0, files: 0, totalFiles: 1, elapsedSeconds, etaSeconds: null, final } });

  it('reads the stats lines among other stderr lines, and measures the rate while bytes arrived', () => {
    // Prepare: start-up with no bytes, 20 MiB/s for 4 s, then a final line after the upload's tail
    const stderr = [stats(1, 0), '[12:00:00] WARN: something', stats(2, 10 * MiB), stats(3, 30 * MiB), stats(4, 50 * MiB), stats(6, 90 * MiB), stats(9, 100 * MiB, true), ''].join('\n');
    // Act
    const samples = statsSamples(stderr);
    // Assess
    expect(samples).toHaveLength(6);
    expect(downloadRate(samples)).toBeCloseTo(20 * MiB, 6);
  });

  it('cannot measure with fewer than two moving samples', () => {
    expect(downloadRate(statsSamples([stats(1, 5), stats(2, 100 * MiB, true)].join('\n')))).toBeUndefined();
    const c = bwlimitCase(true);
    expect(() => bwlimitRound(c, { bytes: 1, seconds: 1, stderr: '' })).toThrow(/too few --stats-json lines/);
  });

  it('passes within the tolerance of the limit, on the median round', () => {
    const c = bwlimitCase(false);
    const r = (ratio: number) => ({ ratio, rateMiBps: 20 * ratio, wallMiBps: 18 });
    expect(formatBwlimitTarget(c, [r(0.95), r(0.5), r(1.02)])).toMatch(/^PASS .*: 0\.950 /);
    expect(formatBwlimitTarget(c, [r(0.85), r(0.89), r(1.3)])).toMatch(/^MISS .*: 0\.890 /);
    expect(formatBwlimitTarget(c, [r(1.11)])).toMatch(/^MISS/);
  });
});
