import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

/**
 * Structured logging. Every log line passes through `redact` here, at the logger, so no call
 * site has to remember it: secrets (passwords, tokens, signatures, credentials) are replaced
 * by a marker, and every URL loses its query string (a presigned link's query *is* the
 * credential). Messages are constant strings; the variable parts go in fields.
 */
export type Logger = PinoLogger;

export const REDACTED = '[REDACTED]';

const SECRET_KEY = /pass(word|wd)?$|secret|token|authorization|credential|signature|cookie|session|^(x-)?auth|api[-_]?key|private[-_]?key/i;
// A URL with a query string: keep scheme, host and path, drop the query (and fragment).
const URL_QUERY = /\b(https?:\/\/[^\s?#"'<>]+)\?[^\s"'<>]*/gi;
// Header-like "X-Auth-Token: abc" or "token=abc" fragments inside free text.
const INLINE_SECRET = /\b(x-auth-token|x-subject-token|x-security-token|authorization|password|token|signature|secret)(\s*[:=]\s*)("[^"]*"|[^\s,;&"]+)/gi;

export function redactString(text: string): string {
  return text.replace(URL_QUERY, `$1?${REDACTED}`).replace(INLINE_SECRET, `$1$2${REDACTED}`);
}

function serializeError(err: Error, seen: WeakSet<object>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.name, message: redactString(err.message) };
  const extra = err as Error & { code?: unknown; retryable?: unknown; details?: unknown; statusCode?: unknown };
  if (extra.code !== undefined) out['code'] = extra.code;
  if (extra.retryable !== undefined) out['retryable'] = extra.retryable;
  if (extra.statusCode !== undefined) out['statusCode'] = extra.statusCode;
  if (extra.details !== undefined) out['details'] = redactValue(extra.details, seen, depth + 1);
  if (err.stack) out['stack'] = redactString(err.stack);
  if (err.cause !== undefined) out['cause'] = redactValue(err.cause, seen, depth + 1);
  return out;
}

/** Deep copy of `value` with secrets removed. Safe on cycles and deep structures. */
export function redactValue(value: unknown, seen: WeakSet<object> = new WeakSet(), depth = 0): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8) return '[Truncated]';
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (value instanceof Error) return serializeError(value, seen, depth);
  if (value instanceof URL) return redactString(value.href);
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, seen, depth + 1));
  if (value instanceof Map) return redactValue(Object.fromEntries(value), seen, depth + 1);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) && v !== undefined && v !== null && typeof v !== 'boolean' && typeof v !== 'number'
      ? REDACTED
      : redactValue(v, seen, depth + 1);
  }
  return out;
}

const JSON_STRING_FIELD = /"((?:[^"\\]|\\.)*)":"((?:[^"\\]|\\.)*)"/g;

/** Redacts a serialised JSON log line: secret-named string fields, URL queries, inline secrets. */
export function redactJsonLine(line: string): string {
  return redactString(line.replace(JSON_STRING_FIELD, (whole, key: string) => (SECRET_KEY.test(key) ? `"${key}":"${REDACTED}"` : whole)));
}

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
