import cliProgress from 'cli-progress';
import type { ArchiveEvent } from '../lib/archive/types.js';
import type { Logger } from '../lib/log.js';
import { formatBytes } from './format.js';

/**
 * Progress on stderr, in one of three forms:
 * - `bar`: a live bar (bytes, rate, files) when stderr is a terminal. Log lines go through
 *   `log()`, which prints them above the bar at once (never held for the next redraw), and
 *   straight to the terminal once the bar is stopped.
 * - `lines`: a plain `progress:` line every few seconds and after each file (not a terminal).
 * - `records`: the same, as JSON log records (`"msg":"progress"`) with LOG_FORMAT=json, so
 *   stderr holds nothing but JSON.
 * - `stats` (--stats-json): one JSON line every second and a final one (`"msg":"stats"`, the
 *   counts under `stats`, like rclone's --use-json-log --stats), whatever the log format.
 */
export interface Progress {
  /** A run's events (`run`, `archive`). */
  onEvent(event: ArchiveEvent): void;
  /** Adds to the counts; `milestone` (a file done) reports at once instead of every few seconds. */
  add(delta: Partial<ProgressCounts>, milestone?: boolean): void;
  /** Prints a log line without tearing the bar. */
  log(text: string): void;
  /** Final report; idempotent. Later `log()` lines still appear. */
  stop(): void;
}

export interface ProgressCounts {
  bytes: number;
  /** Bytes expected in all (GES's estimate for a run; exact for verify). */
  totalBytes: number;
  files: number;
  totalFiles: number;
}

export type ProgressMode = { kind: 'off' } | { kind: 'bar' } | { kind: 'lines' } | { kind: 'records'; logger: Logger } | { kind: 'stats'; intervalMs?: number };

export interface ProgressOptions {
  /** Totals are estimates (shown as `~`). Default true. */
  estimated?: boolean;
}

/** Time between two `lines`/`records` reports (a finished file reports at once). */
const REPORT_INTERVAL_MS = 5000;
/** Time between two `stats` lines. */
export const STATS_INTERVAL_MS = 1000;

/** Counts what a run's events say: files and estimated bytes as backups start, bytes as they arrive. */
function archiveDelta(event: ArchiveEvent): { delta: Partial<ProgressCounts>; milestone: boolean } | undefined {
  switch (event.type) {
    case 'backup-start':
      return { delta: { totalFiles: event.files, totalBytes: event.estimatedBytes }, milestone: false };
    case 'bytes':
      return { delta: { bytes: event.delta }, milestone: false };
    case 'file-done':
      // A file reused from an earlier run arrives all at once.
      return { delta: { files: 1, ...(event.reused ? { bytes: event.bytes } : {}) }, milestone: true };
    case 'backup-done':
      return { delta: {}, milestone: true };
    default:
      return undefined;
  }
}

const line = (text: string): string => (text.endsWith('\n') ? text : `${text}\n`);

/** One way of showing the counts. */
interface Display {
  /** The counts changed; `force`: report now, not at the next interval. */
  report(force: boolean): void;
  write(text: string): void;
  finish(): void;
}

interface Counter {
  counts: ProgressCounts;
  /** `12.3 MiB/s` since the start. */
  rate(): string;
  bytesPerSecond(): number;
  approx: string;
}

function barDisplay(stream: NodeJS.WritableStream, k: Counter): Display {
  const c = k.counts;
  const multi = new cliProgress.MultiBar({
    stream,
    format: ` {bar} {percentage}% | {done} of ${k.approx}{total_h} | {rate} | files {files}`,
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 50,
    fps: 5,
  });
  const bar = multi.create(1, 0, { done: '0 B', total_h: '?', rate: '-', files: '0/0' });
  let active = true;
  const report = (): void => {
    bar.setTotal(Math.max(c.totalBytes, c.bytes, 1));
    bar.update(c.bytes, { done: formatBytes(c.bytes), total_h: formatBytes(c.totalBytes), rate: k.rate(), files: `${c.files}/${c.totalFiles}` });
  };
  return {
    report,
    write(t) {
      if (!active) {
        stream.write(line(t));
        return;
      }
      // cli-progress only buffers a log line until its next redraw (and drops it once
      // stopped): redraw at once, so the line is on the terminal before anything else happens.
      multi.log(line(t));
      multi.update();
    },
    finish() {
      report();
      // GES's sizes are estimates: once every file is done, the true total is what arrived.
      if (c.totalFiles > 0 && c.files === c.totalFiles) {
        bar.setTotal(Math.max(c.bytes, 1));
        bar.update(c.bytes);
      }
      multi.stop();
      active = false;
    },
  };
}

/** `lines` and `records`: a report every few seconds and at each milestone. */
function periodicDisplay(stream: NodeJS.WritableStream, k: Counter, logger: Logger | undefined): Display {
  const c = k.counts;
  let lastReport = 0;
  const emit = logger
    ? () => logger.info({ bytes: c.bytes, totalBytes: c.totalBytes, bytesPerSecond: k.bytesPerSecond(), files: c.files, totalFiles: c.totalFiles }, 'progress')
    : () => stream.write(`progress: ${formatBytes(c.bytes)} of ${k.approx}${formatBytes(c.totalBytes)}, ${k.rate()}, files ${c.files}/${c.totalFiles}\n`);
  const report = (force: boolean): void => {
    if (c.totalFiles === 0 || (!force && Date.now() - lastReport < REPORT_INTERVAL_MS)) return;
    lastReport = Date.now();
    emit();
  };
  return { report, write: (t) => stream.write(line(t)), finish: () => report(true) };
}

/**
 * The `stats` line (README, "--stats-json"): field names are a stable interface. `etaSeconds` is
 * null while the rate or the remaining bytes are unknown.
 */
export function statsRecord(c: ProgressCounts, elapsedMs: number, final: boolean, now: Date): Record<string, unknown> {
  const elapsedSeconds = elapsedMs / 1000;
  const bytesPerSecond = elapsedSeconds > 0 ? Math.round(c.bytes / elapsedSeconds) : 0;
  const remaining = c.totalBytes - c.bytes;
  return {
    time: now.toISOString(),
    level: 'info',
    msg: 'stats',
    stats: {
      bytes: c.bytes,
      totalBytes: c.totalBytes,
      bytesPerSecond,
      files: c.files,
      totalFiles: c.totalFiles,
      elapsedSeconds: Math.round(elapsedSeconds * 1000) / 1000,
      etaSeconds: final ? 0 : bytesPerSecond > 0 && remaining > 0 ? Math.ceil(remaining / bytesPerSecond) : null,
      final,
    },
  };
}

/** `stats`: a line on a timer (unref'd: it never keeps the process alive) and a final one. Each line is one write. */
function statsDisplay(stream: NodeJS.WritableStream, k: Counter, intervalMs: number, startedAt: number): Display {
  const emit = (final: boolean): void => {
    stream.write(`${JSON.stringify(statsRecord(k.counts, Date.now() - startedAt, final, new Date()))}\n`);
  };
  const timer = setInterval(() => emit(false), intervalMs);
  timer.unref();
  return {
    report: () => undefined,
    write: (t) => stream.write(line(t)),
    finish() {
      clearInterval(timer);
      emit(true);
    },
  };
}

export function createProgress(stream: NodeJS.WritableStream, mode: ProgressMode, options: ProgressOptions = {}): Progress {
  const counts: ProgressCounts = { bytes: 0, totalBytes: 0, files: 0, totalFiles: 0 };
  const startedAt = Date.now();
  const bytesPerSecond = (): number => {
    const seconds = (Date.now() - startedAt) / 1000;
    return seconds > 0 ? Math.round(counts.bytes / seconds) : 0;
  };
  const k: Counter = {
    counts,
    bytesPerSecond,
    rate: () => (Date.now() > startedAt ? `${formatBytes(bytesPerSecond())}/s` : '-'),
    approx: options.estimated === false ? '' : '~',
  };
  const display: Display = mode.kind === 'bar'
    ? barDisplay(stream, k)
    : mode.kind === 'off'
      ? { report: () => undefined, write: (t) => stream.write(line(t)), finish: () => undefined }
      : mode.kind === 'stats'
        ? statsDisplay(stream, k, mode.intervalMs ?? STATS_INTERVAL_MS, startedAt)
        : periodicDisplay(stream, k, mode.kind === 'records' ? mode.logger : undefined);

  let stopped = false;
  const add = (delta: Partial<ProgressCounts>, milestone = false): void => {
    counts.bytes += delta.bytes ?? 0;
    counts.totalBytes += delta.totalBytes ?? 0;
    counts.files += delta.files ?? 0;
    counts.totalFiles += delta.totalFiles ?? 0;
    if (!stopped) display.report(milestone);
  };
  return {
    add,
    onEvent(event) {
      const d = archiveDelta(event);
      if (d) add(d.delta, d.milestone);
    },
    log: (t) => display.write(t),
    stop() {
      if (stopped) return;
      stopped = true;
      display.finish();
    },
  };
}
