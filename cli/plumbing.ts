import { Writable } from 'node:stream';
import pretty from 'pino-pretty';
import { LOG_FORMATS, LOG_LEVELS, loadLogSettings, type LogFormat, type LogLevel } from '../lib/config.js';
import { ArchiverError, ErrorCodes } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/log.js';
import { createProgress, type Progress, type ProgressMode, type ProgressOptions } from './progress.js';

/**
 * What every CLI command shares: the stderr logger (readable single lines, or JSON with
 * --log-format json / LOG_FORMAT=json; secrets removed by lib/log.ts either way), the progress
 * display, and Ctrl-C handling. The flags and LOG_LEVEL/LOG_FORMAT are validated first: a bad
 * flag is ARGS_INVALID, a bad variable CONFIG_INVALID (exit 2 either way), naming it and the
 * allowed values.
 */

/** The output options every command takes (global: before or after the command's name). */
export interface OutputFlags {
  /** --json: one JSON document on stdout. */
  json?: boolean | undefined;
  /** -v: debug logs and stack traces. */
  verbose?: boolean | undefined;
  /** -q: only errors, no progress display. */
  quiet?: boolean | undefined;
  /** False with --no-progress. */
  progress?: boolean | undefined;
  logLevel?: string | undefined;
  logFormat?: string | undefined;
  /** --stats-json: JSON-lines progress instead of the bar or the `progress:` lines. */
  statsJson?: boolean | undefined;
}

export interface ResolvedLogSettings {
  /** Asked for by a flag or LOG_LEVEL; undefined: the command's default. */
  level: LogLevel | undefined;
  format: LogFormat;
}

function argsError(message: string): ArchiverError {
  return new ArchiverError(ErrorCodes.ArgsInvalid, message);
}

function choice<T extends string>(value: string, flag: string, allowed: readonly T[]): T {
  const v = value.trim().toLowerCase();
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw argsError(`${flag} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
}

/** A flag over its variable: --log-level, then -q (error) or -v (debug), then LOG_LEVEL; --log-format, then LOG_FORMAT. */
export function resolveLogSettings(env: Record<string, string | undefined>, flags: OutputFlags): ResolvedLogSettings {
  const fromEnv = loadLogSettings(env);
  if (flags.quiet === true && flags.verbose === true) throw argsError('-q/--quiet and -v/--verbose cannot be used together: pick one');
  const level = flags.logLevel !== undefined ? choice(flags.logLevel, '--log-level', LOG_LEVELS)
    : flags.quiet === true ? 'error' : flags.verbose === true ? 'debug' : fromEnv.level;
  const format = flags.logFormat !== undefined ? choice(flags.logFormat, '--log-format', LOG_FORMATS) : fromEnv.format;
  return { level, format };
}

export function createCliLogger(settings: { level: LogLevel; format: LogFormat }, destination: Writable | NodeJS.WritableStream, colorize: boolean, stacks = false): Logger {
  // Stack traces only with -v; without, an error is one line of its type, code and message.
  if (settings.format === 'json') return createLogger({ level: settings.level, destination, stacks });
  const stream = pretty({
    colorize,
    ignore: 'pid,hostname',
    ...(stacks ? {} : { errorLikeObjectKeys: [] }),
    translateTime: 'SYS:HH:MM:ss',
    singleLine: true,
    sync: true,
    destination,
  });
  return createLogger({ level: settings.level, destination: stream, stacks });
}

export interface CliOutputOptions {
  flags: OutputFlags;
  /** The command reports progress at all (`list`, `prune` do not); the flags decide how. */
  progress: boolean;
  /** The command's level without flags and LOG_LEVEL: `info` for a run, `warn` for quiet commands. */
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
 * otherwise, JSON progress records with the json log format, JSON stats lines with
 * --stats-json (which -q and --no-progress do not silence: they were asked for), nothing with
 * -q or --no-progress. Every line is one write to stderr, so log lines and stats lines never
 * mix within a line.
 */
export function createCliOutput(io: { env: Record<string, string | undefined>; stderr: NodeJS.WriteStream }, options: CliOutputOptions): CliOutput {
  const { flags } = options;
  const settings = resolveLogSettings(io.env, flags);
  const stacks = flags.verbose === true;
  const tty = io.stderr.isTTY === true;
  const shown = options.progress && flags.quiet !== true && flags.progress !== false;
  const stats = options.progress && flags.statsJson === true;
  const bar = shown && !stats && tty && settings.format === 'pretty';
  const level: LogLevel = settings.level ?? (bar && options.defaultLevel === 'info' ? 'warn' : options.defaultLevel);
  if (bar) {
    const progress = createProgress(io.stderr, { kind: 'bar' }, options.progressOptions);
    return { progress, logger: createCliLogger({ level, format: settings.format }, progressSink(progress), true, stacks) };
  }
  const logger = createCliLogger({ level, format: settings.format }, io.stderr, tty, stacks);
  let mode: ProgressMode = { kind: 'off' };
  // Progress shows unless -q or --no-progress, whatever the level (a quiet command's is `warn`).
  if (stats) mode = { kind: 'stats' };
  else if (shown) mode = settings.format === 'json' ? { kind: 'records', logger: logger.child({}, { level: 'info' }) } : { kind: 'lines' };
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
