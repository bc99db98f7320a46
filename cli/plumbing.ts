import { Writable } from 'node:stream';
import pretty from 'pino-pretty';
import { ArchiverError, ErrorCodes } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/log.js';
import type { Progress } from './progress.js';

/**
 * What every CLI command shares: the stderr logger (readable single lines, or JSON with
 * LOG_FORMAT=json; secrets removed by lib/log.ts either way) and Ctrl-C handling.
 */
export function createCliLogger(env: Record<string, string | undefined>, level: string, destination: Writable, colorize: boolean): Logger {
  const chosen = env['LOG_LEVEL'] ?? level;
  if (env['LOG_FORMAT'] === 'json') return createLogger({ level: chosen, destination });
  const stream = pretty({
    colorize,
    ignore: 'pid,hostname',
    translateTime: 'SYS:HH:MM:ss',
    singleLine: true,
    sync: true,
    destination,
  });
  return createLogger({ level: chosen, destination: stream });
}

/**
 * SIGINT/SIGTERM abort the returned signal (an ArchiverError ABORTED), so copies stop and
 * clean up; a second one quits at once with status 130.
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

/** A stream that hands every log line to the progress display (which keeps its bar intact). */
export function progressSink(progress: Pick<Progress, 'log'>): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      progress.log(chunk.toString());
      callback();
    },
  });
}
