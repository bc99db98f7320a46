import { Writable } from 'node:stream';
import pretty from 'pino-pretty';
import { loadLogSettings, type LogLevel } from '../lib/config.js';
import { ArchiverError, ErrorCodes } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/log.js';
import { createProgress, type Progress, type ProgressMode, type ProgressOptions } from './progress.js';

/**
 * What every CLI command shares: the stderr logger (readable single lines, or JSON with
 * LOG_FORMAT=json; secrets removed by lib/log.ts either way), the progress display, and
 * Ctrl-C handling. LOG_LEVEL and LOG_FORMAT are validated first: a bad value is
 * CONFIG_INVALID (exit 2) naming the variable and its allowed values.
 */
export function createCliLogger(env: Record<string, string | undefined>, level: LogLevel, destination: Writable | NodeJS.WritableStream, colorize: boolean, verbose = false): Logger {
  const settings = loadLogSettings(env);
  const chosen = settings.level ?? level;
  // Stack traces only with -v; without, an error is one line of its type, code and message.
  if (settings.format === 'json') return createLogger({ level: chosen, destination, stacks: verbose });
  const stream = pretty({
    colorize,
    ignore: 'pid,hostname',
    ...(verbose ? {} : { errorLikeObjectKeys: [] }),
    translateTime: 'SYS:HH:MM:ss',
    singleLine: true,
    sync: true,
    destination,
  });
  return createLogger({ level: chosen, destination: stream, stacks: verbose });
}

export interface CliOutputOptions {
  /** -v: debug logs. */
  verbose?: boolean | undefined;
  /** False with --no-progress. */
  progress: boolean;
  /** The command's level without -v and LOG_LEVEL: `info` for a run, `warn` for quiet commands. */
  defaultLevel: LogLevel;
  progressOptions?: ProgressOptions;
}

export interface CliOutput {
  logger: Logger;
  progress: Progress;
}

/** A stream that hands every log line to the progress bar (which prints it above itself at once). */
export function progressSink(progress: Pick<Progress, 'log'>): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      progress.log(chunk.toString());
      callback();
    },
  });
}

/**
 * The logger and the progress display of one command, both on stderr: a bar on a terminal
 * (info lines give way to it: the level is at least `warn`), plain `progress:` lines
 * otherwise, JSON progress records with LOG_FORMAT=json, nothing with --no-progress.
 */
export function createCliOutput(io: { env: Record<string, string | undefined>; stderr: NodeJS.WriteStream }, options: CliOutputOptions): CliOutput {
  const { format } = loadLogSettings(io.env);
  const tty = io.stderr.isTTY === true;
  const bar = options.progress && tty && format === 'pretty';
  const level: LogLevel = options.verbose === true ? 'debug' : bar && options.defaultLevel === 'info' ? 'warn' : options.defaultLevel;
  if (bar) {
    const progress = createProgress(io.stderr, { kind: 'bar' }, options.progressOptions);
    return { progress, logger: createCliLogger(io.env, level, progressSink(progress), true, options.verbose === true) };
  }
  const logger = createCliLogger(io.env, level, io.stderr, tty, options.verbose === true);
  let mode: ProgressMode = { kind: 'off' };
  // Progress shows unless --no-progress, whatever the level (a quiet command's is `warn`).
  if (options.progress) mode = format === 'json' ? { kind: 'records', logger: logger.child({}, { level: 'info' }) } : { kind: 'lines' };
  return { logger, progress: createProgress(io.stderr, mode, options.progressOptions) };
}

/**
 * SIGINT/SIGTERM abort the returned signal (an ArchiverError ABORTED), so copies stop: a long
 * copy saves a checkpoint that the next run continues from, a short one is removed, and the run
 * reports its backups `cancelled` and exits 130. A second signal quits at once with status 130.
 */
export function onInterrupt(logger: Logger, what: string): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  let interrupts = 0;
  const handler = (sig: NodeJS.Signals): void => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    logger.warn({ signal: sig }, `interrupted: ${what} (again to force quit)`);
    controller.abort(new ArchiverError(ErrorCodes.Aborted, `Interrupted by ${sig}`));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
