import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';
import { redactJsonLine, redactValue } from './redact.js';

/**
 * Structured logging. Every log line passes through `redact` here, at the logger, so no call
 * site has to remember it: secrets (passwords, tokens, signatures, credentials) are replaced
 * by a marker, and every URL loses its query string (a presigned link's query *is* the
 * credential). Messages are constant strings; the variable parts go in fields.
 */
export type Logger = PinoLogger;

export { REDACTED, redactJsonLine, redactString, redactValue } from './redact.js';

export interface LoggerOptions {
  level?: string;
  /** Where lines go; default stderr (the CLI keeps stdout for its JSON report). */
  destination?: DestinationStream;
  /** Human-readable lines (a terminal) instead of JSON. */
  pretty?: boolean;
  /** Fields on every line (service, runId, Lambda request id...). */
  base?: Record<string, unknown>;
  /** Errors keep their stack traces (default true; the CLI shows them only with -v). */
  stacks?: boolean;
}

/** `value` (already redacted) without the `stack` of any error in it. */
function withoutStacks(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || depth > 10) return value;
  if (Array.isArray(value)) return value.map((v) => withoutStacks(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) if (key !== 'stack') out[key] = withoutStacks(v, depth + 1);
  return out;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const pinoOptions = {
    level: options.level ?? 'info',
    base: options.base ?? {},
    messageKey: 'msg',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label: string) => ({ level: label }),
      log: (object: Record<string, unknown>) => (options.stacks === false ? withoutStacks(redactValue(object)) : redactValue(object)) as Record<string, unknown>,
    },
    // Errors are serialised by redactValue in `formatters.log`.
    serializers: { err: (e: unknown) => e },
    // Child-logger bindings bypass `formatters.log` (pino resets the bindings formatter for
    // children), so every finished line also passes a last, string-level filter.
    hooks: { streamWrite: redactJsonLine },
  };
  const destination = options.destination ?? pino.destination({ fd: 2, sync: true });
  return pino(pinoOptions, destination);
}

/** A logger that drops everything (tests, quiet runs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
